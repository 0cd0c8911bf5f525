"""The parsed catalog and the compiled templates are cached per user, and the cache is never believed blindly.

A hit must give exactly what parsing gives; an edited data file, a damaged or foreign cache file, or a cache
directory that cannot be written must all fall back to parsing, silently.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

import ocsps.catalog as catalog_module
from ocsps import cache
from ocsps.catalog import _CATALOG_FILES, _build, _parsed_data
from ocsps.powershell import script


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("OCSPS_CACHE_DIR", str(directory))
    return directory


def _parse_counter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = tomllib.loads

    def counting(text: str) -> dict[str, object]:
        calls.append(text[:20])
        return real(text)

    monkeypatch.setattr(tomllib, "loads", counting)
    return calls


def test_second_load_parses_nothing_and_gives_the_same_catalog(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _parse_counter(monkeypatch)
    first = _parsed_data()
    assert len(calls) == len(_CATALOG_FILES) and list(cache_dir.glob("catalog-*.bin"))
    second = _parsed_data()
    assert len(calls) == len(_CATALOG_FILES), "served from the cache"
    assert second == first
    assert _build(second) == _build(first)


def test_an_edited_data_file_is_parsed_again(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _parsed_data()
    real = catalog_module._data_bytes

    def edited(name: str) -> bytes:
        text = real(name)
        return text.replace(b"Skype for Business Server 2019", b"Skype for Business Server 2019 (edited)")

    monkeypatch.setattr(catalog_module, "_data_bytes", edited)
    calls = _parse_counter(monkeypatch)
    data = _parsed_data()
    assert len(calls) == len(_CATALOG_FILES)
    assert data["products"]["products"]["sfb2019"]["name"].endswith("(edited)")


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[:-1],  # truncated
        lambda blob: blob[:-5] + bytes(b ^ 0xFF for b in blob[-5:]),  # bytes flipped in the payload
        lambda blob: b"garbage",  # not ours at all
        lambda blob: blob[:8] + b"\0" * 32 + blob[40:],  # another key
        lambda blob: b"",
    ],
    ids=["truncated", "flipped", "foreign", "other-key", "empty"],
)
def test_a_damaged_cache_file_is_ignored(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    expected = _parsed_data()
    (entry,) = cache_dir.glob("catalog-*.bin")
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    calls = _parse_counter(monkeypatch)
    assert _parsed_data() == expected
    assert len(calls) == len(_CATALOG_FILES)
    assert _parsed_data() == expected and len(calls) == len(_CATALOG_FILES), "and rewritten good"


def test_a_payload_that_is_not_the_data_is_ignored(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marshal

    expected = _parsed_data()
    stored = []
    monkeypatch.setattr(cache, "store", lambda name, key, payload: stored.append(key))
    monkeypatch.setattr(cache, "load", lambda name, key: marshal.dumps({"products": {}}))
    assert _parsed_data() == expected


def test_an_unwritable_cache_costs_only_the_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("OCSPS_CACHE_DIR", str(blocker / "cache"))
    calls = _parse_counter(monkeypatch)
    assert _parsed_data() == _parsed_data()
    assert len(calls) == 2 * len(_CATALOG_FILES)
    script._environment.cache_clear()
    try:
        assert script._environment().bytecode_cache is None
        assert "ocsps:action=status" in script.render_template("cs-status.ps1.j2", **_status_context())
    finally:
        script._environment.cache_clear()


def test_empty_setting_turns_the_cache_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    assert cache.cache_dir() is None
    _parsed_data()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG shortcut is Linux-only")
@pytest.mark.parametrize("xdg", [None, "", "  ", "/var/cache/alice"])
def test_default_directory_is_platformdirs_own(xdg: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("OCSPS_CACHE_DIR", raising=False)
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert cache.cache_dir() == platformdirs.user_cache_path("ocsps", appauthor=False)


def _status_context() -> dict[str, object]:
    from ocsps.catalog import load_catalog

    return {"product": load_catalog().product("sfb2019")}


def test_compiled_templates_render_exactly_as_fresh_ones(cache_dir: Path) -> None:
    """Every action on every product renders the same through a cold, a warm and a damaged cache."""
    from ocsps.catalog import load_catalog
    from ocsps.powershell.script import actions_for, render_action

    cat = load_catalog()
    samples: dict[str, object] = {"string": "RTCMEDSRV", "strings": ("a", "b"), "switch": True, "int": 3}

    def render_all() -> list[str]:
        script._environment.cache_clear()
        texts = []
        for product in cat.products.values():
            for name in actions_for(product):
                params = cat.action_params(cat.action(name), product)
                values = {p.name: samples[p.type] for p in params if p.required}
                texts.append(render_action(name, product, values).script)
        return texts

    try:
        cold = render_all()
        compiled = list(cache_dir.glob("templates-*/*.cache"))
        assert compiled, "compiled templates were stored"
        assert render_all() == cold
        for path in compiled:
            path.write_bytes(path.read_bytes()[:-7])
        assert render_all() == cold
    finally:
        script._environment.cache_clear()
