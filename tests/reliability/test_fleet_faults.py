"""Fifty hosts at once, five of them failing in five different ways: the healthy ones finish, and each
failure is reported on its own with its cause, its exit code and the host's last known state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps.lab.estate import SimServer
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import Topology, synthetic_topology
from tests.cli_helpers import run_cli
from tests.reliability import figures
from tests.reliability.labkit import ArmedLabs, Recorder, drop_everything

HOSTS = 50


def _name(index: int) -> str:
    return f"med{index:03d}.fleet.contoso.com"


# host -> (how it fails, exit code expected for it, text expected in its error)
FAILING: dict[str, tuple[str, int, str]] = {
    _name(7): ("the service refuses to stop", 1, "cannot be stopped"),
    _name(14): ("every connection dropped", 3, "connection dropped"),
    _name(23): ("HTTP 503 on every Create", 3, "HTTP 503"),
    _name(36): ("a stuck Receive", 4, "did not finish"),
    _name(45): ("the server dies after the first read", 3, "connection dropped"),
}


def _topology() -> Topology:
    topology = synthetic_topology(HOSTS, drain_seconds=0.5)
    topology.server(_name(7)).services["RTCMEDSRV"].fails_to_stop = True
    return topology


def _break(lab: Lab) -> None:
    drop_everything(lab, _name(14))
    lab.faults(_name(23)).fail_next("Create", 503, count=10_000)
    lab.faults(_name(36)).set_stuck(True)


def test_fifty_hosts_ten_percent_failing(
    capsys: pytest.CaptureFixture[str], armed_lab: ArmedLabs, tmp_path: Path
) -> None:
    recorder = Recorder()
    armed_lab.topology = _topology

    def arm(lab: Lab) -> None:
        def dies(sim: SimServer) -> None:
            if sim.fqdn == _name(45):
                drop_everything(lab, sim.fqdn)

        recorder.wrap(lab, after={"status": dies})
        _break(lab)

    armed_lab.hook = arm
    result = run_cli(
        capsys,
        "stop",
        "--yes",
        "--service",
        "RTCMEDSRV",
        "--lab",
        "--parallel",
        "16",
        "--timeout",
        "6s",
        "--json",
    )
    doc = result.json()
    outcomes = {h["host"]: h for h in doc["hosts"]}
    assert len(outcomes) == HOSTS
    assert result.code == 1 == doc["exit_code"], "mixed failures give exit code 1 (design.md)"

    healthy = [h for h in outcomes if h not in FAILING]
    done = [h for h in healthy if outcomes[h]["state"] == "ok"]
    assert done == healthy, {h: outcomes[h] for h in healthy if h not in done}
    for host in healthy:
        assert outcomes[host]["result"]["after"]["status"] == "Stopped"
        assert recorder.times(host, "stop") == 1

    reported = 0
    for host, (how, _code, text) in FAILING.items():
        outcome = outcomes[host]
        assert outcome["state"] == "failed", (how, outcome)
        assert text in outcome["error"], (how, outcome["error"])
        assert outcome["error"].startswith(host), "each failure names its own host"
        assert outcome["step"].startswith("last known state: "), (how, outcome)
        reported += 1
    assert outcomes[_name(7)]["step"] == "last known state: Running (read before stop)"
    assert [outcomes[h]["state"] for h in FAILING].count("failed") == len(FAILING)

    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert sorted(a["host"] for a in audit if a["outcome"] == "ok") == sorted(healthy)
    assert [a["host"] for a in audit if a["outcome"].startswith("failed")] == [_name(7)]

    figures.add("fleet", "hosts", HOSTS)
    figures.add("fleet", "healthy", len(healthy))
    figures.add("fleet", "healthy_completed", len(done))
    figures.add("fleet", "failing", len(FAILING))
    figures.add("fleet", "failing_reported", reported)


def test_fleet_failures_per_host_exit_codes() -> None:
    """The exit code of each failing host follows its cause, even though the run as a whole says 1."""
    from ocsps.operations.fleet import FleetRun, HostOutcome

    outcomes: list[HostOutcome[object]] = [
        HostOutcome(host, state="failed", error=f"{host}: {text}", exit_code=code)
        for host, (_how, code, text) in FAILING.items()
    ]
    assert FleetRun(outcomes).exit_code == 1
    assert FleetRun([HostOutcome("a", state="failed", exit_code=3)]).exit_code == 3
    assert FleetRun([HostOutcome("a", state="failed", exit_code=4)]).exit_code == 4
