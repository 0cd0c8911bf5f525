"""``ocsps.shapes.convert``: typed conversion, and one error line that names the key to fix."""

from __future__ import annotations

from typing import Literal

import msgspec
import pytest

from ocsps.errors import UsageError
from ocsps.shapes import FieldError, convert, join_path


class Profile(msgspec.Struct, forbid_unknown_fields=True):
    host: str = ""
    port: int = 5986
    services: list[str] = []

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise FieldError("port", f"must be 1-65535, got {self.port}")


class Config(msgspec.Struct, forbid_unknown_fields=True):
    profiles: dict[str, Profile] = {}
    default: Profile | None = None
    name: str = "x"


CASES = [
    ({"profiles": {"ok": {}, "lab": {"port": "5986"}}}, "profiles.lab.port: expected int, got str '5986'"),
    ({"profiles": {"lab": {"port": True}}}, "profiles.lab.port: expected int, got bool"),
    ({"profiles": {"lab": {"port": 0}}}, "profiles.lab.port: must be 1-65535, got 0"),
    ({"profiles": {"lab": {"hots": "a"}}}, "profiles.lab: unknown key 'hots' (did you mean host?)"),
    ({"profiles": {"a.b": {"services": ["x", 7]}}}, 'profiles."a.b".services[1]: expected str, got int 7'),
    ({"profiles": 3}, "profiles: expected table, got int"),
    ({"default": {"port": 1.5}}, "default.port: expected int, got float 1.5"),
    ({"bogus": 1}, "unknown key 'bogus'; valid keys: profiles, default, name"),
    ({"name": "a\nb", "profiles": {"lab": {"port": -1}}}, "profiles.lab.port: must be 1-65535, got -1"),
]


@pytest.mark.parametrize(("data", "message"), CASES)
def test_errors_name_the_key(data: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        convert(data, Config)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_prefix_path_is_prepended() -> None:
    with pytest.raises(UsageError, match=r"^c\.toml profiles\.lab\.port: expected int"):
        convert({"port": "x"}, Profile, path="c.toml profiles.lab")


def test_valid_data_converts() -> None:
    config = convert({"profiles": {"lab": {"host": "h", "port": 5985}}}, Config)
    assert config.profiles["lab"] == Profile(host="h", port=5985)


def test_join_path_quotes_odd_keys() -> None:
    assert join_path("hosts", "fe01.contoso.com", "services", 2) == 'hosts."fe01.contoso.com".services[2]'
    assert join_path("", "a", 0) == "a[0]"


def test_a_document_prefix_is_followed_by_the_first_key() -> None:
    with pytest.raises(UsageError, match=r"^c\.toml: profiles\.lab\.port: expected int"):
        convert({"profiles": {"lab": {"port": "x"}}}, Config, path="c.toml: ")
    with pytest.raises(UsageError, match=r"^c\.toml: unknown key 'x'"):
        convert({"x": 1}, Config, path="c.toml: ")


def test_hostile_keys_cannot_break_the_line() -> None:
    with pytest.raises(UsageError) as caught:
        convert({"profiles": {"a\n\x1b[31mb": {"port": "x"}}}, Config)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    assert str(caught.value).startswith('profiles."a\\n\\u001b[31mb".port: expected int')


class Mode(msgspec.Struct, forbid_unknown_fields=True):
    mode: Literal["auto", "always", "never"] = "auto"
    steps: tuple[Profile, ...] = ()


def test_a_value_outside_a_literal_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError, match=r"^mode: 'sometimes' is not one of auto, always, never$"):
        convert({"mode": "sometimes"}, Mode)


def test_a_check_in_a_list_entry_names_the_entry() -> None:
    with pytest.raises(UsageError, match=r"^plan: steps\[1\]\.port: must be 1-65535, got 0$"):
        convert({"steps": [{}, {"port": 0}]}, Mode, path="plan: ")
