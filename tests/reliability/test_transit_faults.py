"""Faults in transit against the lab: a connection dropped at each protocol step, HTTP 500/503, a stuck
Receive, authentication failing halfway, a server that dies during a drain.

For each: a read recovers within its deadline; a state-changing call is never sent twice blindly (the lab
counts what it executed: a change runs exactly once, and a second request is only sent after a re-read
showed the first never took effect); the host's state is reported; the audit log has the change; the
exit code follows docs (design.md). Every scenario is counted in ``tests.reliability.figures``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from ocsps.errors import AuthenticationError, OcspsError, TimeoutExceeded
from ocsps.jsonout import to_builtins
from ocsps.lab.auth import CredentialStore
from ocsps.lab.runtime import Lab
from ocsps.operations.drain import DrainReportDocument, Phase, Then, drain
from ocsps.remote.server import Server
from ocsps.results import ServiceState
from tests.cli_helpers import run_cli
from tests.reliability import figures
from tests.reliability.labkit import (
    MED,
    ArmedLabs,
    Recorder,
    drop_everything,
    quick_topology,
    server_for,
)

Action = Literal["Create", "Command", "Receive", "Send", "Signal", "Delete"]


def _count(outcome: str, faults: int = 1) -> None:
    """One scenario: ``completed`` (goal reached), ``reported`` (failed, state and code shown) or ``lost``."""
    figures.add("transit", "injected", faults)
    figures.add("transit", "operations")
    figures.add("transit", outcome)


@pytest.fixture(autouse=True)
def _lost_if_failed(request: pytest.FixtureRequest) -> Iterator[None]:
    """A scenario whose checks fail counts as an operation lost (wrong state, doubled, or unreported)."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and request.node.name != "test_no_operation_was_lost":
        figures.add("transit", "lost")


def _consumed(lab: Lab, fqdn: str = MED) -> None:
    pending = lab.faults(fqdn).pending()
    assert not any(pending.values()), f"the armed fault never fired: {pending}"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    with Lab(quick_topology()) as running:
        yield running


# ------------------------------------------------------------------------------------------ reads
READ_FAULTS: list[tuple[Action, str]] = [
    ("Create", "drop"),
    ("Create", "503"),
    ("Create", "500"),
    ("Command", "drop"),
    ("Command", "drop-after"),
    ("Command", "503"),
    ("Command", "500"),
    ("Receive", "drop"),
    ("Receive", "drop-after"),
    ("Receive", "503"),
    ("Receive", "500"),
    ("Signal", "drop"),
    ("Delete", "drop"),
]


def _arm(lab: Lab, action: Action, kind: str, fqdn: str = MED) -> None:
    faults = lab.faults(fqdn)
    if kind == "drop":
        faults.drop_next(action)
    elif kind == "drop-after":
        faults.drop_next(action, after_processing=True)
    else:
        faults.fail_next(action, 503 if kind == "503" else 500)


@pytest.mark.parametrize(("action", "kind"), READ_FAULTS, ids=[f"{a}-{k}" for a, k in READ_FAULTS])
def test_read_recovers_within_its_deadline(lab: Lab, action: Action, kind: str) -> None:
    server = server_for(lab)
    try:
        if action not in ("Create", "Delete"):
            server.open()  # the fault hits a call on an open session
        _arm(lab, action, kind)
        status = server.status("RTCMEDSRV")
        assert status.status is ServiceState.RUNNING and status.activity is not None
        again = server.status("RTCMEDSRV")  # the session after the fault is sound too
        assert again.status is ServiceState.RUNNING
    finally:
        server.close()
    if action == "Delete":
        fresh = server_for(lab)
        with fresh:
            assert fresh.status("RTCMEDSRV").status is ServiceState.RUNNING
    _consumed(lab)
    _count("completed")


# ---------------------------------------------------------------------------- state-changing calls
CHANGE_FAULTS: list[tuple[Action, str, str]] = [
    # (action, kind, what the operator must see): "retried" when nothing reached the server, "settled"
    # when the re-read shows the stop ran, "resent" when it shows it did not, "ok" when only the
    # pipeline's release was lost.
    ("Create", "drop", "retried"),
    ("Create", "503", "retried"),
    ("Command", "drop", "resent"),
    ("Command", "drop-after", "settled"),
    ("Command", "503", "resent"),
    ("Command", "500", "retried"),
    ("Receive", "drop", "settled"),
    ("Receive", "drop-after", "settled"),
    ("Receive", "503", "settled"),
    ("Receive", "500", "settled"),
    ("Signal", "drop", "ok"),
    ("Delete", "drop", "ok"),
]


def _arm_before_first(monkeypatch: pytest.MonkeyPatch, method: str, arm: Callable[[Server], None]) -> None:
    """Arm a fault just before the first ``Server.<method>`` call sends anything (the client's thread)."""
    original = getattr(Server, method)
    armed: list[bool] = []

    def wrapper(self: Server, *args: Any, **kwargs: Any) -> Any:
        if not armed:
            armed.append(True)
            arm(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Server, method, wrapper)


def _audit(path: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r["outcome"] != "starting"]  # the intent record written before each change


@pytest.mark.parametrize(
    ("action", "kind", "expected"), CHANGE_FAULTS, ids=[f"{a}-{k}" for a, k, _ in CHANGE_FAULTS]
)
def test_stop_runs_exactly_once(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    armed_lab: ArmedLabs,
    tmp_path: Path,
    action: Action,
    kind: str,
    expected: str,
) -> None:
    """``ocsps stop``: a lost reply is settled by a re-read; the service stops once, never twice."""
    recorder = Recorder()
    armed_lab.topology = quick_topology
    armed_lab.hook = recorder.wrap

    def arm(server: Server) -> None:
        if action == "Create":
            server.session.close()  # the pool is gone: the stop must open a new one first
        _arm(armed_lab.last, action, kind)

    _arm_before_first(monkeypatch, "stop", arm)
    result = run_cli(capsys, "stop", "--yes", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--json")
    lab = armed_lab.last
    assert result.code == 0, result.err
    (host,) = result.json()["hosts"]
    assert host["state"] == "ok" and host["result"]["after"]["status"] == "Stopped"
    assert lab.server(MED).services["RTCMEDSRV"].status == "Stopped"
    assert recorder.times(MED, "stop") == 1, "the stop ran exactly once on the server"
    outcomes = [(a["action"], a["outcome"].split(":")[0]) for a in _audit(tmp_path / "audit.jsonl")]
    note = host["result"]["note"]
    if expected in ("retried", "ok"):
        assert outcomes == [("stop", "ok")] and note == ""
    elif expected == "settled":
        assert "re-read shows Stopped" in note and "not sent again" in note
        assert outcomes == [("stop", "unknown"), ("stop", "decided")]
    else:
        assert "re-read shows Running" in note and "sent once more" in note
        assert outcomes == [("stop", "unknown"), ("stop", "decided"), ("stop", "ok")]
    _consumed(lab)
    _count("completed")


@pytest.mark.parametrize("kind", ["drop", "drop-after"])
def test_start_runs_exactly_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, armed_lab: ArmedLabs, kind: str
) -> None:
    recorder = Recorder()
    armed_lab.topology = lambda: quick_topology().__class__(**_with_stopped(quick_topology()))
    armed_lab.hook = recorder.wrap
    _arm_before_first(monkeypatch, "start", lambda _: _arm(armed_lab.last, "Command", kind))
    result = run_cli(capsys, "start", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--json")
    assert result.code == 0, result.err
    assert result.json()["hosts"][0]["result"]["after"]["status"] == "Running"
    assert recorder.times(MED, "start") == 1
    _count("completed")


def _with_stopped(topology: Any) -> dict[str, Any]:
    topology.server(MED).services["RTCMEDSRV"].status = "Stopped"
    return dict(topology.__dict__)


def test_restart_with_lost_reply_is_decided_not_repeated(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, armed_lab: ArmedLabs, tmp_path: Path
) -> None:
    """A restart is a stop then a start: the stop's lost reply is decided by a re-read (Stopped: it ran),
    so the stop is not sent again and the start follows."""
    recorder = Recorder()
    armed_lab.topology = quick_topology
    armed_lab.hook = recorder.wrap
    _arm_before_first(
        monkeypatch,
        "stop",
        lambda _: armed_lab.last.faults(MED).drop_next("Receive", after_processing=True),
    )
    result = run_cli(capsys, "restart", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--json")
    assert result.code == 0, (result.out, result.err)
    (host,) = result.json()["hosts"]
    assert host["state"] == "ok"
    assert recorder.times(MED, "stop") == 1 and recorder.times(MED, "start") == 1
    outcomes = [a["outcome"].split(":")[0] for a in _audit(tmp_path / "audit.jsonl")]
    assert outcomes == ["unknown", "decided", "ok"]
    assert "not sent again" in host["result"]["steps"][0]["note"]
    _count("completed")


def test_drain_request_with_lost_reply_is_not_sent_again(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder().wrap(lab)
    _arm_before_first(  # the watch's first reply (the status right after the request) is lost
        monkeypatch, "watch_drain", lambda _: lab.faults(MED).drop_next("Receive", after_processing=True)
    )
    decisions: list[str] = []
    with server_for(lab) as server:
        report = drain(server, "RTCMEDSRV", timeout=20, poll=0.1, on_decision=decisions.append)
    assert report.phase is Phase.STOPPED and report.ok, to_builtins(DrainReportDocument.of(report))
    assert recorder.times(MED, "drain-watch") == 1
    assert decisions == report.decisions and len(decisions) == 1
    assert "not sent again" in decisions[0]
    _consumed(lab)
    _count("completed")


def test_drain_request_lost_before_it_ran_is_sent_once_more(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, armed_lab: ArmedLabs, tmp_path: Path
) -> None:
    recorder = Recorder()
    armed_lab.topology = quick_topology
    armed_lab.hook = recorder.wrap
    _arm_before_first(monkeypatch, "watch_drain", lambda _: armed_lab.last.faults(MED).drop_next("Command"))
    result = run_cli(
        capsys, "drain", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--poll", "0.1s", "--json"
    )
    assert result.code == 0, (result.out, result.err)
    report = result.json()["hosts"][0]["result"]
    assert report["phase"] == "stopped" and len(report["decisions"]) == 1
    assert "sent once more" in report["decisions"][0]
    assert recorder.times(MED, "drain-watch") == 1
    outcomes = [a["outcome"].split(":")[0] for a in _audit(tmp_path / "audit.jsonl")]
    assert outcomes == ["unknown", "decided", "ok"]
    _count("completed")


def test_forced_stop_at_the_deadline_with_lost_request(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder().wrap(lab)
    lab.server(MED).services["RTCMEDSRV"].stuck_drain = True
    _arm_before_first(monkeypatch, "stop", lambda _: lab.faults(MED).drop_next("Command"))
    with server_for(lab) as server:
        report = drain(server, "RTCMEDSRV", timeout=0.3, poll=0.1, then=Then.FORCE_STOP)
    assert report.phase is Phase.FORCED and report.last is not None and report.last.is_stopped
    assert recorder.times(MED, "stop") == 1
    assert len(report.decisions) == 1 and "sent once more" in report.decisions[0]
    _count("completed")


# ------------------------------------------------------------------------------- stuck and timeouts
def test_stuck_receive_times_out_with_state_reported(
    capsys: pytest.CaptureFixture[str], armed_lab: ArmedLabs
) -> None:
    armed_lab.topology = quick_topology
    armed_lab.hook = lambda lab: lab.faults(MED).set_stuck(True)
    result = run_cli(
        capsys, "stop", "-y", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--timeout", "2s", "--json"
    )
    assert result.code == 4, (result.out, result.err)
    (host,) = result.json()["hosts"]
    assert host["state"] == "failed" and "did not finish" in host["error"]
    assert host["step"] == "last known state: unknown (never read)"
    counters = armed_lab.last.requests(MED)
    assert counters.get("timeout", 0) >= 1 and counters.get("Signal", 0) >= 1, "the pipeline was stopped"
    assert armed_lab.last.server(MED).services["RTCMEDSRV"].status == "Running"
    _count("reported")


def test_stuck_read_is_stopped_at_its_deadline(lab: Lab) -> None:
    with server_for(lab, operation_timeout=1, read_timeout=5) as server:
        lab.faults(MED).set_stuck(True)
        with pytest.raises(TimeoutExceeded) as caught:
            server.status("RTCMEDSRV", timeout=1.5)
        assert caught.value.exit_code == 4 and MED in caught.value.message
        lab.faults(MED).set_stuck(False)
        assert server.status("RTCMEDSRV").status is ServiceState.RUNNING  # and the session goes on
    _count("completed")


# ------------------------------------------------------------------------- authentication halfway
def _rotate_password(lab: Lab, password: str) -> None:
    """The account's password changes on the server side (an expiry, a lockout, a reset)."""
    path = CredentialStore.shared().path(lab.listener)
    assert path is not None
    Path(path).write_text(f"LAB:admin:{password}\n:admin:{password}\n", encoding="utf-8")


def test_authentication_failing_halfway_is_not_retried(lab: Lab) -> None:
    with server_for(lab) as server:
        assert server.status("RTCMEDSRV").status is ServiceState.RUNNING
        _rotate_password(lab, "rotated-elsewhere")
        lab.faults(MED).drop_next("Command")  # the connection drops; a new one must authenticate
        before = lab.requests(MED).get("auth", 0)
        with pytest.raises(AuthenticationError) as caught:
            server.status("RTCMEDSRV")
    handshakes = (lab.requests(MED).get("auth", 0) - before) // 2  # NTLM: negotiate + authenticate legs
    assert caught.value.exit_code == 3
    # One handshake to delete the broken session's shell, one to reopen: refused, and not retried, so a
    # lockout policy never sees a storm of bad attempts.
    assert handshakes <= 2, f"{handshakes} authentication handshakes"
    _count("reported")


def test_authentication_failing_halfway_through_a_stop(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, armed_lab: ArmedLabs, tmp_path: Path
) -> None:
    recorder = Recorder()
    armed_lab.topology = quick_topology
    armed_lab.hook = recorder.wrap

    def arm(_: Server) -> None:
        _rotate_password(armed_lab.last, "rotated-elsewhere")
        armed_lab.last.faults(MED).drop_next("Command")

    _arm_before_first(monkeypatch, "stop", arm)
    result = run_cli(capsys, "stop", "--yes", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--json")
    assert result.code == 3, (result.out, result.err)
    (host,) = result.json()["hosts"]
    assert host["state"] == "failed" and "credentials" in host["error"]
    assert host["step"] == "last known state: Running (read before stop)"
    assert recorder.times(MED, "stop") == 0
    assert armed_lab.last.server(MED).services["RTCMEDSRV"].status == "Running"
    assert [a["outcome"].split(":")[0] for a in _audit(tmp_path / "audit.jsonl")] == ["unknown"]
    _count("reported", 2)


# ----------------------------------------------------------------------- a server dies mid-drain
@pytest.mark.parametrize("how", ["connections-dropped", "listener-stopped"])
def test_server_dying_during_a_drain(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    armed_lab: ArmedLabs,
    tmp_path: Path,
    how: str,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the summary table is read as one line per host
    armed_lab.topology = quick_topology
    armed_lab.hook = lambda lab: setattr(lab.server(MED).services["RTCMEDSRV"], "stuck_drain", True)
    original = Server.watch_drain

    def watch_then_die(self: Server, *args: Any, **kwargs: Any) -> Any:
        on_status = kwargs.pop("on_status")

        def first_then_die(status: Any) -> None:
            on_status(status)  # the drain is seen under way (Paused); then the server goes
            if how == "connections-dropped":
                drop_everything(armed_lab.last, MED)
            else:
                armed_lab.last.stop()

        return original(self, *args, on_status=first_then_die, **kwargs)

    monkeypatch.setattr(Server, "watch_drain", watch_then_die)
    result = run_cli(
        capsys, "drain", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--timeout", "2s", "--poll", "0.1s"
    )
    assert result.code not in (0, 2), (result.out, result.err)
    row = next(line for line in result.out.splitlines() if MED in line)
    assert "failed" in row and "Paused" in row, result.out  # the host's last known state
    audit = _audit(tmp_path / "audit.jsonl")
    assert [(a["host"], a["action"]) for a in audit] == [(MED, "drain-watch"), (MED, "drain")], audit
    decided = audit[1]["outcome"]  # the watch broke after the drain was seen: watched again, not re-sent
    assert decided.startswith("decided:") and "not sent again" in decided, decided
    _count("reported")


def test_library_drain_reports_last_known_state_when_the_server_dies(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.server(MED).services["RTCMEDSRV"].stuck_drain = True
    original = Server.watch_drain

    def watch_then_die(self: Server, *args: Any, **kwargs: Any) -> Any:
        on_status = kwargs.pop("on_status")

        def first_then_die(status: Any) -> None:
            on_status(status)
            drop_everything(lab, MED)

        return original(self, *args, on_status=first_then_die, **kwargs)

    monkeypatch.setattr(Server, "watch_drain", watch_then_die)
    server = server_for(lab)
    try:
        report = drain(server, "RTCMEDSRV", timeout=1, poll=0.1)
    finally:
        server.close()
    assert report.phase is Phase.FAILED and not report.ok
    assert report.last is not None and report.last.status is ServiceState.PAUSED
    assert report.error.startswith(MED) and to_builtins(DrainReportDocument.of(report))["status"] == "Paused"
    _count("reported")


def test_errors_are_typed(lab: Lab) -> None:
    """Whatever the fault, only ``ocsps.errors`` types come out of the library."""
    drop_everything(lab, MED, 3)
    server = server_for(lab, timeout=0.5)
    try:
        with pytest.raises(OcspsError):
            server.status("RTCMEDSRV")
    finally:
        server.close()
    _count("reported")


# ------------------------------------------------------------------------------------- the summary
def test_no_operation_was_lost() -> None:
    """Every scenario above ended completed or reported with its state; none was lost or doubled."""
    injected = figures.get("transit", "injected")
    completed, reported = figures.get("transit", "completed"), figures.get("transit", "reported")
    lost = figures.get("transit", "lost")
    print(
        f"\nfaults injected: {injected}; operations completed: {completed}; "
        f"reported failed with state: {reported}; operations lost: {lost}"
    )
    assert lost == 0
    assert figures.get("transit", "operations") == completed + reported
