"""Rules that the command line, the Ansible modules and library users share, each decided in one place:
what ``--leave-running`` means per product, the audit record of a decision after a lost reply, and the
exit code and ``changed`` verdict of a drain or restart report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ocsps import audit
from ocsps.catalog import Product, load_catalog
from ocsps.errors import UsageError
from ocsps.lab.runtime import Lab
from ocsps.operations.drain import DrainReport, Phase
from ocsps.operations.preview import preview_change, preview_drain
from ocsps.operations.restart import RestartReport, RunPhase, StepOutcome, StepResult
from ocsps.powershell.script import RenderedScript
from tests.cli_helpers import run_cli
from tests.conftest import lab_server

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("product", "names", "values", "ignored"),
    [
        ("sfb2015", ["RTCCLSAGT"], {"LeaveClsAgentRunning": True}, ()),
        (
            "sfb2019",
            ["rtcclsagt", "W3SVC"],
            {"LeaveClsAgentRunning": True, "LeaveWebServerRunning": True},
            (),
        ),
        ("lync2013", ["W3SVC", "RTCSRV", "RTCSRV"], {"LeaveWebServerRunning": True}, ("RTCSRV",)),
        ("sfb2015", [], {}, ()),
        ("lync2010", ["RTCSRV"], {}, ("RTCSRV",)),
    ],
)
def test_leave_running_values_and_ignored_names(
    product: str, names: list[str], values: dict[str, bool], ignored: tuple[str, ...]
) -> None:
    keep = CATALOG.leave_running(CATALOG.product(product), names)
    assert dict(keep.values) == values and keep.ignored == ignored
    assert keep.warnings == tuple(f"{n} keeps running: drain stops only the service named" for n in ignored)


@pytest.mark.parametrize(
    ("product", "name", "message"),
    [
        (
            "lync2010",
            "RTCCLSAGT",
            "lync2010 cannot leave RTCCLSAGT running during a drain: it has no such service "
            "(the switches exist from Lync Server 2013 on)",
        ),
        ("sfb2015", "RTCNOPE", "sfb2015 cannot leave RTCNOPE running during a drain: it has no such service"),
    ],
)
def test_leave_running_refusals(product: str, name: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        CATALOG.leave_running(CATALOG.product(product), [name])
    assert refused.value.message == message


def test_the_library_drain_refuses_an_unknown_leave_running_before_anything_is_sent(lab: Lab) -> None:
    with (
        lab_server(lab, "med01.contoso.com") as server,
        pytest.raises(UsageError, match="cannot leave RTCNOPE running"),
    ):
        server.drain("RTCMEDSRV", timeout=5, poll=1, leave_running=["RTCNOPE"])
    assert lab.requests("med01.contoso.com").get("Command", 0) == 0


def test_the_cli_drain_warns_about_a_service_that_needs_no_switch(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys,
        "drain",
        "-s",
        "RTCMEDSRV",
        "--leave-running",
        "RTCSRV",
        "--lab",
        "--host",
        "med01.contoso.com",
        "--what-if",
        "--json",
    )
    assert result.code == 0, result.err
    assert "med01.contoso.com: RTCSRV keeps running: drain stops only the service named" in result.err


def test_a_decision_is_audited_with_the_fields_the_report_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv(audit.ENV_AUDIT_LOG, str(log))
    decided = audit.decision_recorder("med01.contoso.com", "stop", {"Name": "RTCMEDSRV"})
    with audit.change("CHG-9"):
        decided("stop: the reply was lost; a re-read shows Stopped, so it ran; not sent again")
    (line,) = [json.loads(raw) for raw in log.read_text(encoding="utf-8").splitlines()]
    assert {k: v for k, v in line.items() if k not in ("time", "operator")} == {
        "host": "med01.contoso.com",
        "action": "stop",
        "parameters": {"Name": "RTCMEDSRV"},
        "outcome": "decided: stop: the reply was lost; a re-read shows Stopped, so it ran; not sent again",
        "duration_seconds": 0.0,
        "detail": "re-read after an unknown outcome",
        "body_sha256": "",
        "change_id": "CHG-9",
    }


@pytest.mark.parametrize(
    ("phase", "error", "error_code", "exit_code"),
    [
        (Phase.STOPPED, "", 0, 0),
        (Phase.LEFT_DRAINING, "", 0, 0),
        (Phase.DEADLINE, "", 0, 4),
        (Phase.INTERRUPTED, "", 0, 130),
        (Phase.FAILED, "could not connect", 3, 3),
        (Phase.FAILED, "refused", 0, 1),
        (Phase.STOPPED, "RTCMEDSRV did not come back to Running (Stopped)", 0, 1),
    ],
)
def test_a_drain_report_knows_its_exit_code(
    phase: Phase, error: str, error_code: int, exit_code: int
) -> None:
    report = DrainReport("med01.contoso.com", "RTCMEDSRV", phase=phase, error=error, error_code=error_code)
    assert report.exit_code == exit_code


def _restart(phase: RunPhase, *outcomes: StepOutcome) -> RestartReport:
    steps = tuple(StepResult(n, "stop", "RTCSRV", "Front-End", o) for n, o in enumerate(outcomes, 1))
    return RestartReport("fe01.contoso.com", "sfb2015", phase, steps)


@pytest.mark.parametrize(
    ("report", "changed", "exit_code"),
    [
        (_restart(RunPhase.COMPLETED, StepOutcome.DONE), True, 0),
        (_restart(RunPhase.COMPLETED, StepOutcome.ALREADY, StepOutcome.SKIPPED), False, 0),
        (_restart(RunPhase.FAILED, StepOutcome.UNKNOWN, StepOutcome.NOT_RUN), True, 1),
        (_restart(RunPhase.DEADLINE, StepOutcome.NOT_RUN), False, 4),
        (_restart(RunPhase.INTERRUPTED, StepOutcome.DONE, StepOutcome.NOT_RUN), True, 130),
    ],
)
def test_a_restart_report_knows_whether_it_changed_anything(
    report: RestartReport, changed: bool, exit_code: int
) -> None:
    assert report.changed is changed and report.exit_code == exit_code


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["stop", "--force"], lambda p: preview_change(CATALOG, p, "RTCMEDSRV", "stop", force=True)),
        (["start"], lambda p: preview_change(CATALOG, p, "RTCMEDSRV", "start")),
        (
            ["drain", "--poll", "3s", "--timeout", "2m", "--leave-running", "RTCCLSAGT"],
            lambda p: preview_drain(CATALOG, p, "RTCMEDSRV", poll=3, until=120, leave_running=["RTCCLSAGT"]),
        ),
        (
            ["drain", "--no-wait"],
            lambda p: preview_drain(CATALOG, p, "RTCMEDSRV", poll=5, until=1800, wait=False),
        ),
    ],
)
def test_what_if_shows_the_librarys_preview(
    capsys: pytest.CaptureFixture[str], words: list[str], expected: Callable[[Product], list[RenderedScript]]
) -> None:
    """``--what-if`` and the Ansible module's check mode show the same scripts: the library's previews."""
    result = run_cli(
        capsys, *words, "-s", "RTCMEDSRV", "--lab", "--host", "med01.contoso.com", "--what-if", "--json"
    )
    assert result.code == 0, result.err
    (host,) = result.json()["hosts"]
    shown = [(s["action"], s["parameters"], s["script"]) for s in host["steps"]]
    product = CATALOG.product(host["product"])
    assert shown == [(r.action, dict(r.bound_parameters), r.script) for r in expected(product)]


def test_render_drops_a_service_that_needs_no_switch_as_drain_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "drain.ps1"
    words = ["render", "drain", "-s", "RTCMEDSRV", "--product", "sfb2015", "--leave-running", "RTCSRV"]
    result = run_cli(capsys, *words, "--leave-running", "RTCCLSAGT", "-o", str(out))
    assert result.code == 0, result.err
    assert "RTCSRV keeps running: drain stops only the service named" in result.err
    text = out.read_text(encoding="utf-8-sig")
    assert "[switch]$LeaveClsAgentRunning = $true," in text and "RTCSRV" not in text
