"""docs/cli.md is generated from the typer application and must match it."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from ocsps.cli import app
from tests.docs.helpers import DOCS, load_script

gen_cli_docs = load_script("gen_cli_docs")


def test_cli_reference_is_current() -> None:
    expected = gen_cli_docs.generate()
    current = (DOCS / "cli.md").read_text(encoding="utf-8") if (DOCS / "cli.md").exists() else ""
    assert current == expected, f"docs/cli.md is stale: run {gen_cli_docs.REGENERATE}"


def _command_paths(command: object, prefix: str = "ocsps") -> list[str]:
    paths = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, f"{prefix} {name}")
    return paths


def test_every_command_has_a_section_and_help() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    paths = _command_paths(root)
    assert len(paths) > 10, paths
    for path in paths[1:]:
        assert f"`{path}`" in text, f"{path} is missing from docs/cli.md"
    for name, sub in getattr(root, "commands", {}).items():
        assert (sub.help or "").strip(), f"ocsps {name} has no help text"


def test_check_mode_reports_staleness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text("# CLI reference\n\nout of date\n", encoding="utf-8")
    monkeypatch.setattr(gen_cli_docs, "CLI_DOC", stale)
    monkeypatch.setattr(gen_cli_docs, "ROOT", tmp_path)
    assert gen_cli_docs.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "# CLI reference\n\nout of date\n", "--check writes nothing"
    assert gen_cli_docs.main([]) == 0
    assert gen_cli_docs.main(["--check"]) == 0
