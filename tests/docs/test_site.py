"""The documentation site builds with warnings as errors, and its reference pages keep up with the code."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from ocsps.errors import OcspsError
from ocsps.remote.settings import ENV_CONFIG, ENV_PASSWORD, ENV_PROFILE, OPTIONS
from tests.conftest import ROOT
from tests.docs.helpers import DOCS

HAS_MKDOCS = all(importlib.util.find_spec(m) is not None for m in ("mkdocs", "material", "mkdocstrings"))


def _nav_files() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return re.findall(r":\s+([\w/.-]+\.md)\s*$", text, re.MULTILINE)


def test_every_page_in_the_navigation_exists() -> None:
    missing = [page for page in _nav_files() if not (DOCS / page).exists()]
    assert missing in ([], ["reliability.md"]), f"pages in mkdocs.yml nav without a file: {missing}"


@pytest.mark.skipif(not HAS_MKDOCS, reason='the docs extra is not installed: python -m pip install ".[docs]"')
def test_site_builds_strictly(tmp_path: Path) -> None:
    assert (DOCS / "reliability.md").exists(), (
        "docs/reliability.md is missing: it is written by the reliability tests (tests/reliability)"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    getting_started = (site / "getting-started" / "index.html").read_text(encoding="utf-8")
    assert "RTCMEDSRV requested" in getting_started, "the tour's drain is included from README.md"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="ocsps.remote.server.connect"' in api and 'id="ocsps.operations.drain.drain"' in api
    for page in site.rglob("*.html"):
        assert "--8&lt;--" not in page.read_text(encoding="utf-8"), f"unresolved snippet in {page}"


def test_connections_page_lists_every_option_and_variable() -> None:
    text = (DOCS / "connections.md").read_text(encoding="utf-8")
    for option in OPTIONS.values():
        assert f"`{option.key}`" in text and f"`{option.env}`" in text, option.key
    for variable in (
        ENV_PASSWORD,
        ENV_PROFILE,
        ENV_CONFIG,
        "OCSPS_AUDIT_LOG",
        "OCSPS_LAB_PASSWORD",
        "NO_COLOR",
    ):
        assert f"`{variable}`" in text, variable


def _subclasses(cls: type[OcspsError]) -> set[type[OcspsError]]:
    found: set[type[OcspsError]] = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_exit_codes_page_names_every_error_class_with_its_code() -> None:
    import ocsps.results  # noqa: F401  (ParseError and friends register as subclasses on import)

    text = (DOCS / "exit-codes.md").read_text(encoding="utf-8")
    public = {
        cls
        for cls in _subclasses(OcspsError)
        if cls.__module__ in ("ocsps.errors", "ocsps.results.base") and not cls.__name__.startswith("_")
    }
    assert public
    for cls in public:
        row = re.search(rf"^\| `{cls.__name__}`[^|]*\| (\d+) \|", text, re.MULTILINE)
        assert row, f"{cls.__name__} is not in the table of docs/exit-codes.md"
        assert int(row.group(1)) == cls.exit_code, cls.__name__
    for code in ("**0**", "**1**", "**2**", "**3**", "**4**", "**130**"):
        assert code in text


def test_json_page_links_every_schema_and_its_example_validates() -> None:
    text = (DOCS / "json.md").read_text(encoding="utf-8")
    for schema in sorted((DOCS / "schemas").glob("*.schema.json")):
        assert f"(schemas/{schema.name})" in text, f"docs/json.md does not link {schema.name}"
    examples = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    drain = [json.loads(e) for e in examples if '"phase"' in e]
    assert len(drain) == 1
    schema = json.loads((DOCS / "schemas" / "drain.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(drain[0], schema)


def test_the_lab_page_says_it_is_a_simulation() -> None:
    text = (DOCS / "lab.md").read_text(encoding="utf-8")
    assert "A simulation, not a server" in text
    assert "## What the lab does not simulate" in text
