"""Faults between client and server, at every request of a command: the matrix an outage would draw.

A fault-injecting HTTP proxy (``tests/faultproxy.py``) sits between ``ocsps`` and the lab and breaks request
number *i* of the whole command (authentication legs included): it drops the connection before forwarding,
answers a bare HTTP 503 or 500 itself, forwards and then loses the server's answer, or holds the request
unanswered. The command runs as an administrator runs it (``OCSPS_*`` settings, NTLM with message
encryption, ``--json``), against one representative server.

For every cell: the exit code; how many times the state change ran on the server (counted by the lab's
engine, so "exactly once" is observed, not assumed); the state reported against the server's real state;
and an upper bound on the time taken far below the transport's 30 s read timeout (the bound is loose
enough never to flake; the request counts are what is asserted precisely).

Holding a request costs the command's whole ``--timeout`` per cell, so most of that column is marked
``slow`` and runs with ``OCSPS_SLOW_TESTS=1``; a representative few run always.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology
from ocsps.remote.connector import lab_settings
from tests.cli_helpers import CliResult, run_cli
from tests.faultproxy import FAULT_KINDS, Fault, FaultKind, FaultProxy
from tests.reliability import figures
from tests.reliability.labkit import MED, Recorder

TOPOLOGY = """
[lab]
username = "LAB\\\\admin"

[[servers]]
fqdn = "med01.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.01
[servers.activity.RTCMEDSRV]
"Inbound Calls" = 3
"""
"""One Mediation server whose drain ends well before the first poll, so every run has the same requests."""

TIMEOUT = 2.0
"""``--timeout`` of the status and stop runs (seconds)."""


@dataclass(frozen=True)
class Command:
    args: tuple[str, ...]
    requests: int
    """HTTP requests of a clean run (measured by ``test_a_clean_run_costs``; the matrix covers each)."""
    change: str | None
    """The lab action that changes state, counted on the server."""
    timeout: float
    teardown: int
    """How many requests at the end only release the session (the Delete: the shell's deletion ends the
    last pipeline, so no Signal precedes it): a request held there leaves the answer in hand, so the
    command still succeeds."""


COMMANDS: dict[str, Command] = {
    "status": Command(("status", "-s", "RTCMEDSRV", "--timeout", f"{TIMEOUT:g}s"), 9, None, TIMEOUT, 1),
    "stop": Command(
        ("stop", "-s", "RTCMEDSRV", "--yes", "--timeout", f"{TIMEOUT:g}s"), 12, "stop", TIMEOUT, 1
    ),
    "drain": Command(
        ("drain", "-s", "RTCMEDSRV", "--poll", "0.2s", "--timeout", f"{TIMEOUT:g}s"),
        13,
        "drain-watch",
        TIMEOUT,
        1,
    ),
}

SLOW = os.environ.get("OCSPS_SLOW_TESTS") == "1"
ALWAYS_STALLED = {("status", 3), ("status", 5), ("stop", 8), ("drain", 10), ("drain", 11)}
"""Held requests run in every test run: a handshake leg, the first Command, the stop's Command, and the
drain's one watch pipeline: its Command (the request) and its first Receive (the first status after it)."""


def _cells() -> Iterator[Any]:
    for name, command in COMMANDS.items():
        for kind in FAULT_KINDS:
            for index in range(1, command.requests + 1):
                marks = []
                if kind == "stall" and (name, index) not in ALWAYS_STALLED:
                    marks.append(pytest.mark.skipif(not SLOW, reason="slow: set OCSPS_SLOW_TESTS=1"))
                yield pytest.param(name, kind, index, marks=marks, id=f"{name}-{kind}-{index}")


@dataclass
class Run:
    result: CliResult
    lab: Lab
    recorder: Recorder
    proxy: FaultProxy
    seconds: float

    def real_status(self) -> str:
        return self.lab.server(MED).find("RTCMEDSRV").status

    def reported(self) -> dict[str, Any]:
        (host,) = self.result.json()["hosts"]
        assert isinstance(host, dict)
        return host


@pytest.fixture
def run_through_proxy(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    """Run one command against a fresh lab, through a proxy that breaks the given requests."""
    opened: list[tuple[Lab, FaultProxy]] = []

    def run(name: str, *faults: Fault) -> Run:
        lab = Lab(parse_topology(TOPOLOGY, source="fault matrix topology")).start()
        recorder = Recorder().wrap(lab)
        proxy = FaultProxy(lab.port, faults, lifetime=60).start()
        opened.append((lab, proxy))
        (tmp_path / "config.toml").write_text("", encoding="utf-8")
        settings = lab_settings(lab, MED)
        assert settings.password is not None and settings.username is not None
        for key, value in {
            "OCSPS_HOST": MED,
            "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
            "OCSPS_PORT": str(proxy.port),
            "OCSPS_SSL": "false",
            "OCSPS_PATH": settings.path,
            "OCSPS_AUTH": settings.auth,
            "OCSPS_USERNAME": settings.username,
            "OCSPS_PASSWORD": settings.password.reveal(),
            "OCSPS_PRODUCT": "sfb2015",
            "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "OCSPS_CONFIG": str(tmp_path / "config.toml"),
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("OCSPS_PROFILE", raising=False)
        started = time.monotonic()
        result = run_cli(capsys, *COMMANDS[name].args, "--json")
        return Run(result, lab, recorder, proxy, time.monotonic() - started)

    yield run
    for lab, proxy in opened:
        proxy.stop()
        lab.stop()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_clean_run_costs(run_through_proxy: Any, name: str) -> None:
    """The request counts the matrix is built on; a cold status is one pipeline (no separate import)."""
    run: Run = run_through_proxy(name)
    assert run.result.code == 0, run.result.err
    assert run.proxy.requests == COMMANDS[name].requests
    if name == "status":
        assert run.lab.requests(MED)["Command"] == 1, "one pipeline for a cold status"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "kind", "index"), list(_cells()))
def test_fault_at_every_request(run_through_proxy: Any, name: str, kind: FaultKind, index: int) -> None:
    command = COMMANDS[name]
    run: Run = run_through_proxy(name, Fault(kind, index))
    code, err = run.result.code, run.result.err
    assert run.proxy.fired == [Fault(kind, index)], "the fault met its request"
    held_in_teardown = kind == "stall" and index > command.requests - command.teardown

    # Time: far below the transport's read timeout (30 s), which is what a held request used to cost.
    budget = 3 * command.timeout + 8 if kind == "stall" else 10
    assert run.seconds < budget, f"took {run.seconds:.1f}s"

    # Exit code, and the state change counted on the server.
    ran = run.recorder.times(MED, command.change) if command.change else 0
    if kind != "stall" or held_in_teardown:
        assert code == 0, f"exit {code}: {err}"
        assert ran == (1 if command.change else 0), "the change ran exactly once"
    else:
        assert code in (0, 4), f"exit {code}: {err}"
        assert ran in (0, 1), "never twice"
        if name == "status":
            assert code == 4, "a held read ends at the deadline"

    # The state reported is the server's real state.
    host = run.reported()
    real = run.real_status()
    if code == 0:
        expected = {"status": "Running", "stop": "Stopped", "drain": "Stopped"}[name]
        assert real == expected
        result = host["result"]
        reported = (
            result[0]["status"]
            if name == "status"
            else result["after"]["status"]
            if name == "stop"
            else result["status"]
        )
        assert reported == real
    else:
        result = host.get("result") or {}
        message = host.get("error") or result.get("error") or result.get("note")
        assert host["state"] == "failed" and message, host
        if code == 4:
            assert "did not finish" in message or "deadline" in message, host
        if ran == 0:
            assert real == "Running", "nothing changed, and nothing was claimed"
    figures.add("transit", "injected")
    figures.add("transit", "operations")
    figures.add("transit", "completed" if code == 0 else "reported")


# ------------------------------------------------------------------------------- a deactivation run
OCS01 = "ocs01.contoso.com"
DEACTIVATION_REQUESTS = 33
"""HTTP requests of a clean ``deactivate run`` of ocs01's whole plan (stop services, five roles)."""
DEACTIVATION_ALWAYS = {7, 16, 20, 28}
"""Indices run in every test run (each kind): the Commands of the first check, of the stop of the services
and of the first and fourth role's LcsCmd; the rest of the column is slow."""


def _deactivation_cells() -> Iterator[Any]:
    for kind in FAULT_KINDS:
        for index in range(1, DEACTIVATION_REQUESTS + 1):
            marks = []
            if index not in DEACTIVATION_ALWAYS or kind == "stall":
                marks.append(pytest.mark.skipif(not SLOW, reason="slow: set OCSPS_SLOW_TESTS=1"))
            yield pytest.param(kind, index, marks=marks, id=f"deactivate-{kind}-{index}")


def _deactivate(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *faults: Fault
) -> tuple[CliResult, Lab, Recorder, FaultProxy]:
    import json

    lab = Lab().start()
    try:
        settings = lab_settings(lab, OCS01)
        assert settings.password is not None and settings.username is not None
        config = tmp_path / "config.toml"
        config.write_text("", encoding="utf-8")
        config.chmod(0o600)
        for key, value in {
            "OCSPS_HOST": OCS01,
            "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
            "OCSPS_PORT": str(lab.port),
            "OCSPS_SSL": "false",
            "OCSPS_PATH": settings.path,
            "OCSPS_AUTH": settings.auth,
            "OCSPS_USERNAME": settings.username,
            "OCSPS_PASSWORD": settings.password.reveal(),
            "OCSPS_PRODUCT": "ocs2007r2",
            "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "OCSPS_CONFIG": str(config),
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("OCSPS_PROFILE", raising=False)
        plan = tmp_path / "plan.json"
        args = ["deactivate", "plan", "--computer", OCS01, "--host", OCS01, "--all", "-o", str(plan)]
        planned = run_cli(capsys, *args, "--json")
        assert planned.code == 0, planned.err
        checklist = json.loads(plan.read_text(encoding="utf-8"))["plan"]["checklist"]
        acks = ",".join(item["id"] for item in checklist)
        recorder = Recorder().wrap(lab)
        proxy = FaultProxy(lab.port, faults, lifetime=60).start()
        monkeypatch.setenv("OCSPS_PORT", str(proxy.port))
        try:
            args = ["deactivate", "run", "--plan", str(plan), "--ack", acks, "--timeout", f"{TIMEOUT:g}s"]
            result = run_cli(capsys, *args, "--journal", str(tmp_path / "journal.json"), "--json")
        finally:
            proxy.stop()
        return result, lab, recorder, proxy
    finally:
        lab.stop()


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("kind", "index"), list(_deactivation_cells()))
def test_fault_during_a_deactivation_run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kind: FaultKind,
    index: int,
) -> None:
    """Each role's LcsCmd deactivation reaches the server at most once; what is reported done, is."""
    result, lab, recorder, proxy = _deactivate(capsys, monkeypatch, tmp_path, Fault(kind, index))
    assert proxy.fired == [Fault(kind, index)]
    with recorder.lock:
        runs = [str(p.get("Arguments")) for host, action, p in recorder.params if action == "deactivate"]
    assert len(runs) == len(set(runs)), "a role's deactivation was sent twice"
    if not result.out:  # the run's own checks could not reach the server: one error line, nothing changed
        assert result.code in (3, 4) and "ocsps: error:" in result.err, result.err
        assert not runs and len(lab.server(OCS01).activated_roles) == 5
        figures.add("transit", "injected")
        figures.add("transit", "operations")
        figures.add("transit", "reported")
        return
    doc = result.json()
    still_active = set(lab.server(OCS01).activated_roles)
    for step in doc["steps"]:
        role = step.get("role")
        if role and step["state"] == "ok":
            assert role not in still_active, f"{role} reported done but still activated"
    if result.code == 0:
        assert not still_active and len(runs) == 5
    else:
        assert result.code in (1, 3, 4), result.err
        assert doc["resume_from"] is not None, "a failed run says where to resume"
    figures.add("transit", "injected")
    figures.add("transit", "operations")
    figures.add("transit", "completed" if result.code == 0 else "reported")


def test_a_clean_deactivation_run_costs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result, lab, _recorder, proxy = _deactivate(capsys, monkeypatch, tmp_path)
    assert result.code == 0, result.err
    assert proxy.requests == DEACTIVATION_REQUESTS
    assert not lab.server(OCS01).activated_roles


# ---------------------------------------------------------------- could not connect: 3, for every command
@pytest.mark.parametrize("why", ["refused", "wrong-password"])
@pytest.mark.parametrize("command", ["status", "drain", "stop", "start", "restart"])
def test_could_not_connect_exits_3_for_every_command(
    run_through_proxy: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    why: str,
) -> None:
    """docs/exit-codes.md: 3 = could not connect or authenticate, nothing sent; the same for every command."""
    clean: Run = run_through_proxy("status")  # a lab and the environment that reaches it
    if why == "refused":
        monkeypatch.setenv("OCSPS_PORT", "1")
    else:
        monkeypatch.setenv("OCSPS_PASSWORD", "not-the-password")
    clean.recorder.executed.clear()
    result = run_cli(capsys, command, "-s", "RTCMEDSRV", "--timeout", "5s", "--json")
    assert result.code == 3, (result.out, result.err)
    (host,) = result.json()["hosts"]
    assert host["state"] == "failed"
    assert sum(clean.recorder.executed.values()) == 0, "nothing was sent"
    assert clean.real_status() == "Running"
