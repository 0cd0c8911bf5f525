"""Config files: data-driven cases from tests/data/config_files, the starter file, location and writing."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsps.errors import UsageError
from ocsps.remote.profiles import (
    config_path,
    default_config_text,
    find_config,
    load_config,
    parse_config,
    resolve_settings,
    write_default_config,
)
from ocsps.remote.settings import OPTIONS

CASES = Path(__file__).parent.parent / "data" / "config_files"
CASE_NAMES = sorted(p.name.removesuffix(".toml") for p in CASES.glob("*.toml"))


def _expand(value: object, directory: Path) -> object:
    if isinstance(value, str):
        return value.replace("{dir}", str(directory))
    if isinstance(value, dict):
        return {k: _expand(v, directory) for k, v in value.items()}
    return value


def test_cases_exist() -> None:
    assert len(CASE_NAMES) >= 30
    for name in CASE_NAMES:
        assert (CASES / f"{name}.expected.json").is_file(), name


@pytest.mark.parametrize("name", CASE_NAMES)
def test_config_file_case(name: str) -> None:
    path = CASES / f"{name}.toml"
    expected = json.loads((CASES / f"{name}.expected.json").read_text(encoding="utf-8"))
    if "error" in expected:
        with pytest.raises(UsageError) as caught:
            load_config(path)
        message = str(caught.value)
        assert message.startswith(str(path)), message
        assert expected["error"] in message
        assert "\n" not in message
    else:
        config = load_config(path)
        directory = path.resolve().parent
        assert dict(config.default) == _expand(expected["default"], directory)
        assert {k: dict(v) for k, v in config.profiles.items()} == _expand(expected["profiles"], directory)


def test_password_in_config_error_does_not_echo_the_password() -> None:
    with pytest.raises(UsageError) as caught:
        load_config(CASES / "password_in_default.toml")
    assert "Winter2024!" not in str(caught.value)
    assert "OCSPS_PASSWORD" in str(caught.value)


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(UsageError) as caught:
        load_config(CASES / "unknown_key_typo.toml")
    for key in OPTIONS:
        assert key in str(caught.value)


def test_paths_stay_as_written_without_base_dir() -> None:
    config = parse_config('[default]\nca_bundle = "ca.pem"\n', source="inline")
    assert config.default["ca_bundle"] == "ca.pem"


def test_home_is_expanded_in_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = parse_config('[default]\nca_bundle = "~/ca.pem"\n', source="inline", base_dir=Path("/elsewhere"))
    assert config.default["ca_bundle"] == str(tmp_path / "ca.pem")


def test_layers_and_values() -> None:
    config = parse_config(
        '[default]\nauth = "kerberos"\nssl = true\n[profiles.lab]\nhost = "127.0.0.1"\nssl = false\n',
        source="c.toml",
    )
    assert config.profile_names == ("lab",)
    assert config.values("lab") == {"auth": "kerberos", "ssl": False, "host": "127.0.0.1"}
    assert config.values(None) == {"auth": "kerberos", "ssl": True}
    assert config.values("default") == config.values(None)
    labels = [label for label, _, _ in config.layers("lab")]
    assert labels == ["c.toml [profiles.lab]", "c.toml [default]"]
    with pytest.raises(UsageError, match=r"c\.toml: no profile 'prod' \(profiles: lab\)"):
        config.layers("prod")


# ------------------------------------------------------------------------------------------ starter file


def test_default_config_text_parses_and_has_a_lab_profile() -> None:
    config = parse_config(default_config_text(), source="starter")
    lab = config.profiles["lab"]
    assert lab["host"] == "127.0.0.1"
    assert lab["ssl"] is False
    assert lab["auth"] == "ntlm"
    settings = resolve_settings({}, {"OCSPS_PASSWORD": "pw"}, config, "lab", None)
    assert settings.endpoint == "http://127.0.0.1:5985/wsman"


def test_default_config_text_explains_every_key() -> None:
    text = default_config_text()
    for key in OPTIONS:
        lines = [line for line in text.splitlines() if line.lstrip("# ").startswith(f"{key} =")]
        assert lines, f"{key} is not documented in the starter file"
        assert any("#" in line.split("=", 1)[1] for line in lines), f"{key} has no explaining comment"
    assert "OCSPS_PASSWORD" in text
    assert "password =" not in text


def test_commented_examples_in_starter_file_are_valid() -> None:
    """Uncommenting the [default] examples must give a valid file: the examples are what people copy."""
    lines = []
    default_part = default_config_text().split("\n[profiles.", 1)[0]
    for line in default_part.splitlines():
        stripped = line.removeprefix("# ")
        key = stripped.split("=", 1)[0].strip()
        lines.append(
            stripped if key in OPTIONS and key not in ("certificate_pem", "certificate_key_pem") else line
        )
    data = tomllib.loads("\n".join(lines))
    parse_config("\n".join(lines), source="uncommented")
    assert set(data["default"]) | {"certificate_pem", "certificate_key_pem"} == set(OPTIONS)


def test_write_default_config_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "config.toml"
    assert write_default_config(target) == target
    assert target.read_text(encoding="utf-8") == default_config_text()
    target.write_text("# my profiles\n", encoding="utf-8")
    with pytest.raises(UsageError, match="already exists; pass --force"):
        write_default_config(target)
    assert target.read_text(encoding="utf-8") == "# my profiles\n"
    write_default_config(target, force=True)
    assert target.read_text(encoding="utf-8") == default_config_text()
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.toml"]


def test_write_default_config_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot write config file"):
        write_default_config(blocker / "config.toml")


# -------------------------------------------------------------------------------------------- location


def test_config_path_from_environment(tmp_path: Path) -> None:
    assert config_path({"OCSPS_CONFIG": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"


def test_config_path_default_is_user_config_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = config_path({})
    assert path.name == "config.toml"
    assert path.parent.name == "ocsps"


def test_find_config(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"OCSPS_CONFIG names .*missing\.toml, which does not exist"):
        find_config({"OCSPS_CONFIG": str(tmp_path / "missing.toml")})
    path = tmp_path / "c.toml"
    path.write_text('[profiles.lab]\nhost = "127.0.0.1"\n', encoding="utf-8")
    found = find_config({"OCSPS_CONFIG": str(path)})
    assert found is not None and found.profile_names == ("lab",)


def test_find_config_default_location_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_config({}) is None


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[default]\nhost = "f\xe9"\n')
    with pytest.raises(UsageError, match="not UTF-8"):
        load_config(bad)


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeff[default]\nhost = "fe01"\n'.encode())
    assert load_config(path).default == {"host": "fe01"}


def test_deeply_nested_toml_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="nested too deeply"):
        parse_config("a = " + "[" * 5000 + "]" * 5000, source="deep.toml")


_TOML_FRAGMENTS = st.sampled_from(
    [
        "[default]\n",
        "[profiles.lab]\n",
        "[profiles.x.y]\n",
        'host = "fe01"\n',
        "host = 1\n",
        "port = 5985\n",
        'port = "x"\n',
        "ssl = false\n",
        'auth = "ntlm"\n',
        'password = "p"\n',
        'ca_bundle = "ca.pem"\n',
        "read_timeout = -1\n",
        "read_timeout = 1e400\n",
        "verify = 2024-01-01\n",
        "profiles = []\n",
        'default = "x"\n',
        "[[profiles]]\n",
        "bogus = true\n",
        "x = {a = 1}\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_TOML_FRAGMENTS, max_size=8).map("".join), st.text(max_size=120)))
def test_fuzz_parse_config_returns_config_or_usage_error(text: str) -> None:
    try:
        config = parse_config(text, source="fuzz.toml")
    except UsageError as exc:
        assert str(exc).startswith("fuzz.toml")
        assert "\n" not in str(exc)
        return
    for values in [config.default, *config.profiles.values()]:
        assert set(values) <= set(OPTIONS)
