"""The deactivation how-to's commands, run as the page prints them against the lab.

The page's `--ack` lists belong to its own servers: the main example (the lab's ocs01, which also has the
Archiving and CDR Server role) and the failure rehearsal (a topology without it). Each must be accepted
by the plan that page writes for that server.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli

PAGE = Path(__file__).resolve().parents[2] / "docs" / "howto" / "deactivate-ocs-se.md"


def _section(title: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _commands(section: str) -> list[list[str]]:
    """Every `$ ocsps ...` line of the section's console blocks, continuation lines joined."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", section, re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("$ ocsps "):
                found.append(shlex.split(command[2:]))
    return found


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_failure_rehearsal_runs_as_printed(capsys: pytest.CaptureFixture[str], isolated: Path) -> None:
    section = _section("When a step fails")
    topology = re.search(r'```toml title="deactivation-fails.toml"\n(.*?)```', section, re.DOTALL)
    assert topology is not None
    (isolated / "deactivation-fails.toml").write_text(topology.group(1), encoding="utf-8")
    plan, run = _commands(section)
    assert plan[:3] == ["ocsps", "deactivate", "plan"] and run[:3] == ["ocsps", "deactivate", "run"]
    planned = run_cli(capsys, *plan[1:])
    assert planned.code == 0, planned.err
    result = run_cli(capsys, *run[1:])
    assert result.code == 1, result.err  # it fails at the rehearsed step, not on its --ack list
    assert "stopped at step 4 (Deactivate Web Components Server)" in result.out + result.err


def test_main_example_ack_list_fits_the_lab_server(
    capsys: pytest.CaptureFixture[str], isolated: Path
) -> None:
    """Section 4's --ack list, for the plan section 2 writes of the lab's ocs01 (rehearsed with --lab)."""
    (plan,) = _commands(_section("2. Plan"))
    (run,) = _commands(_section("4. Run"))
    output = _option(plan, "-o")
    planned = run_cli(
        capsys,
        "deactivate",
        "plan",
        "--computer",
        _option(plan, "--computer"),
        "--all",
        "--lab",
        "-o",
        output,
    )
    assert planned.code == 0, planned.err
    result = run_cli(
        capsys, "deactivate", "run", "--plan", _option(run, "--plan"), "--lab", "--ack", _option(run, "--ack")
    )
    assert result.code == 0, result.err


def test_plan_prints_a_run_command_that_runs(capsys: pytest.CaptureFixture[str], isolated: Path) -> None:
    planned = run_cli(
        capsys,
        "deactivate",
        "plan",
        "--computer",
        "ocs01.contoso.com",
        "--all",
        "--lab",
        "-o",
        "my plan.json",
    )
    assert planned.code == 0, planned.err
    hint = planned.out.split("run it with: ", 1)[1].splitlines()[0]
    printed = shlex.split(hint)
    assert printed[:3] == ["ocsps", "deactivate", "run"] and "--lab" in printed
    result = run_cli(capsys, *printed[1:])
    assert result.code == 0, result.err
