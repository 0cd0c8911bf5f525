"""Every state-changing command takes --change-id, and every audit line its run writes carries it.

The cases live in ``data/change_id_commands.toml``: one command line each, run against the lab.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run_cli
from tests.conftest import DATA

HERE = Path(__file__).parent / "data"
CASES: list[dict[str, Any]] = tomllib.loads((HERE / "change_id_commands.toml").read_text(encoding="utf-8"))[
    "case"
]
TICKET = "CHG-1042"


def _expand(words: list[str], tmp: Path) -> list[str]:
    acks = ""
    plan = tmp / "deactivate.json"
    if plan.exists():  # a deactivation plan's checklist, acknowledged in full as an operator would
        acks = ",".join(i["id"] for i in json.loads(plan.read_text(encoding="utf-8"))["plan"]["checklist"])
    return [
        w.replace("{data}", str(DATA))
        .replace("{here}", str(HERE))
        .replace("{tmp}", str(tmp))
        .replace("{acks}", acks)
        for w in words
    ]


def _lines(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_every_audit_line_of_the_run_carries_the_change_id(
    case: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    for words in case.get("before", []):
        done = run_cli(capsys, *_expand(words, tmp_path))
        assert done.code == 0, done.err
    already = len(_lines(log))
    result = run_cli(capsys, *_expand(case["args"], tmp_path), "--change-id", TICKET)
    assert result.code == 0, result.err
    written = _lines(log)[already:]
    assert len(written) >= case["lines"], [line["action"] for line in written]
    assert [line.get("change_id") for line in written] == [TICKET] * len(written)
    assert all(line.get("simulation") is True for line in written)


def test_without_the_option_no_line_carries_an_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    result = run_cli(capsys, *_expand(CASES[0]["args"], tmp_path))
    assert result.code == 0, result.err
    assert _lines(log) and not any("change_id" in line for line in _lines(log))


def test_a_deactivation_run_falls_back_to_the_plans_ticket(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    case = next(c for c in CASES if c["name"] == "deactivate-run")
    plan = [*_expand(case["before"][0], tmp_path), "--change-id", "RFC/2026/17"]
    assert run_cli(capsys, *plan).code == 0
    result = run_cli(capsys, *_expand(case["args"], tmp_path))
    assert result.code == 0, result.err
    assert {line.get("change_id") for line in _lines(log)} == {"RFC/2026/17"}


@pytest.mark.parametrize("command", ["drain", "stop", "start", "restart"])
def test_the_emitted_script_names_the_ticket(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One option serves the audit lines and the change-board script's header."""
    out = tmp_path / "x.ps1"
    result = run_cli(
        capsys,
        command,
        "-s",
        "RTCMEDSRV",
        "--lab",
        "--lab-topology",
        str(HERE / "two-mediation.toml"),
        "--host",
        "med01.contoso.com",
        "--emit-script",
        str(out),
        "--change-id",
        TICKET,
    )
    assert result.code == 0, result.err
    assert f"Change:   {TICKET}" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["drain", "stop", "start", "restart"])
def test_a_malformed_ticket_is_refused_before_anything_is_sent(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    result = run_cli(
        capsys, command, "-s", "RTCMEDSRV", "--lab", "--host", "med01.contoso.com", "--change-id", "<b>"
    )
    assert result.code == 2 and "--change-id" in result.err
    assert not log.exists()


def test_a_stopped_roll_resumes_under_the_same_ticket(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed resume command carries the ticket, so the resumed roll's lines belong to the change."""
    import shlex

    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    fast = ["--stable-for", "0.05s", "--ready-poll", "0.05s", "--busy-interval", "0.05s", "--poll", "0.05s"]
    roll = ["pool", "maintain", "--pool", "pool15.contoso.com", "--lab", "--lab-topology"]
    topology = str(DATA / "pool" / "sfb2015-busy.toml")
    step = ["--step-script", str(DATA / "pool" / "patch-step.ps1")]
    first = run_cli(capsys, *roll, topology, *fast, *step, "--change-id", TICKET)
    assert first.code == 1 and "continue with: " in first.err
    hint = shlex.split(first.err.split("continue with: ", 1)[1].splitlines()[0])
    assert hint[hint.index("--change-id") + 1] == TICKET
    already = len(_lines(log))
    second = run_cli(capsys, *hint[1:])
    assert second.code == 1, second.err  # Busy again further on: the point is whose lines they are
    written = _lines(log)[already:]
    assert len(written) >= 2 and {line.get("change_id") for line in written} == {TICKET}


@pytest.mark.parametrize(("planned", "given", "in_hint"), [("RFC-1", TICKET, TICKET), ("RFC-1", "", None)])
def test_a_failed_deactivation_resumes_under_the_same_ticket(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    planned: str,
    given: str,
    in_hint: str | None,
) -> None:
    """A ticket given on the command line (not the plan's) is repeated in the printed resume command."""
    import shlex

    from ocsps.lab.runtime import Lab
    from tests.deactivation.test_lab_runs import OCS01, TOPOLOGIES, _connect_env, _run

    with Lab(topology_file=TOPOLOGIES / "se_fails_once.toml") as lab:
        _connect_env(lab, monkeypatch, tmp_path)
        plan = tmp_path / "plan.json"
        made = run_cli(
            capsys, "deactivate", "plan", "--computer", OCS01, "--all", "--host", OCS01, "-o", str(plan),
            "--change-id", planned,
        )  # fmt: skip
        assert made.code == 0, made.err
        first = _run(capsys, plan, *(["--change-id", given] if given else []))
        assert first.code == 1, first.err
        hint = shlex.split(first.json()["resume_command"])
        assert (hint[hint.index("--change-id") + 1] if "--change-id" in hint else None) == in_hint
        log = Path(os.environ["OCSPS_AUDIT_LOG"])
        assert {line.get("change_id") for line in _lines(log)} == {given or planned}
