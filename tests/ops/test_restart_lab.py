"""Restarts and restart plans end to end against the lab (real HTTP, WSMan, PSRP and NTLM on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from ocsps.lab.runtime import Lab
from ocsps.operations.restart import RunPhase, StepOutcome, restart_service
from ocsps.plans.restart import plan_restart
from ocsps.plans.restart_document import plan_document
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.cli_helpers import run_cli
from tests.conftest import DATA, ROOT

TOPOLOGIES = DATA / "lab_topologies"
FE = "fe-r2.contoso.com"
DEFAULT_PORT = "MSFT_SIPRoutingSetting.DefaultPort"
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "restart.schema.json").read_text())


@pytest.fixture(autouse=True)
def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))


@pytest.fixture
def lab_for(request: pytest.FixtureRequest) -> Iterator[Lab]:
    with Lab(topology_file=TOPOLOGIES / f"{request.param}.toml") as lab:
        yield lab


def _server(lab: Lab, fqdn: str = FE) -> Server:
    return Server(ServerSession(lab_settings(lab, fqdn), lab.server(fqdn).product))


def _lab_states(lab: Lab, fqdn: str = FE) -> dict[str, str]:
    return {s.key: s.status for s in lab.server(fqdn).services.values()}


def _plan_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    result = run_cli(capsys, "plan", "restart", "-p", "ocs2007r2", "--changed", DEFAULT_PORT, "-o", str(path))
    assert result.code == 0, result.err
    return path


def test_plan_on_expanded_front_end_skips_absent_services(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The Front End has no Web or A/V Conferencing: their steps are skipped and nothing is left down."""
    plan = _plan_file(capsys, tmp_path)
    topology = str(TOPOLOGIES / "ocs-expanded-frontend.toml")
    result = run_cli(capsys, "restart", "--plan", str(plan), "--lab", "--lab-topology", topology, "--json")
    assert result.code == 0, (result.out, result.err)
    jsonschema.validate(result.json(), SCHEMA)
    (host,) = result.json()["hosts"]
    report = host["result"]
    assert host["state"] == "ok" and report["phase"] == "completed" and report["ok"]
    assert {a["key"] for a in report["absent"]} == {"ocs-web-conferencing", "ocs-av-conferencing"}
    skipped = {(s["do"], s["key"]) for s in report["steps"] if s["outcome"] == "skipped"}
    assert skipped == {
        (verb, key) for verb in ("stop", "start") for key in ("ocs-web-conferencing", "ocs-av-conferencing")
    }
    assert report["down"] == [] and report["down_observed"] is True


@pytest.mark.parametrize("lab_for", ["ocs-frontend-stop-fails"], indirect=True)
def test_failed_step_starts_again_what_the_run_stopped(lab_for: Lab) -> None:
    plan = plan_document(plan_restart([DEFAULT_PORT]))
    heard: list[str] = []
    with _server(lab_for) as server:
        report = server.run_restart_plan(plan, on_step=lambda s: heard.append(s.label))
    assert report.phase is RunPhase.FAILED and not report.ok
    failed = [s for s in report.steps if s.outcome is StepOutcome.FAILED]
    assert [s.key for s in failed] == ["ocs-telephony-conferencing"] and "cannot be stopped" in failed[0].note
    assert [s.key for s in report.restored] == ["ocs-im-conferencing", "ocs-frontend"]
    assert all(s.outcome is StepOutcome.DONE for s in report.restored)
    assert report.down == () and report.observed
    assert set(_lab_states(lab_for).values()) == {"Running"}, "the lab shows nothing left down"
    assert len(heard) == len(report.steps) + len(report.restored)


@pytest.mark.parametrize("lab_for", ["ocs-frontend-stop-fails"], indirect=True)
def test_no_restore_leaves_down_and_says_exactly_what(lab_for: Lab) -> None:
    plan = plan_document(plan_restart([DEFAULT_PORT]))
    with _server(lab_for) as server:
        report = server.run_restart_plan(plan, restore=False)
    assert report.restored == ()
    down = {s.key for s in report.down}
    assert down == {"ocs-frontend", "ocs-im-conferencing"}
    states = _lab_states(lab_for)
    assert {k for k, v in states.items() if v != "Running"} == down, "the report names exactly what is down"


def test_restart_application_host_brings_its_dependents_back(capsys: pytest.CaptureFixture[str]) -> None:
    """ocs01 runs Application Host and its four dependents: each stops first and is started again."""
    result = run_cli(
        capsys,
        "restart",
        "--service",
        "ocs-application-host",
        "--lab",
        "--host",
        "ocs01.contoso.com",
        "--json",
    )
    assert result.code == 0, (result.out, result.err)
    jsonschema.validate(result.json(), SCHEMA)
    assert result.json()["force"] is False
    (host,) = result.json()["hosts"]
    report = host["result"]
    dependents = [
        "ocs-response-group",
        "ocs-conferencing-attendant",
        "ocs-conferencing-announcement",
        "ocs-outside-voice-control",
    ]
    sent = [(s["do"], s["key"], s["outcome"]) for s in report["steps"]]
    assert sent == [
        *(("stop", k, "done") for k in dependents),
        ("stop", "ocs-application-host", "done"),
        ("start", "ocs-application-host", "done"),
        *(("start", k, "done") for k in reversed(dependents)),
    ]
    assert all(s["status"] == "Running" for s in report["steps"] if s["do"] == "start")
    assert report["down"] == [] and report["ok"] and host["state"] == "ok"


@pytest.mark.parametrize("lab_for", ["ocs-outside-voice-stopped"], indirect=True)
def test_dependent_found_stopped_is_left_as_found_and_listed(lab_for: Lab) -> None:
    with _server(lab_for) as server:
        report = restart_service(server, "ocs-application-host")
    (down,) = report.down
    assert down.key == "ocs-outside-voice-control" and down.before is not None
    assert down.before.value == "Stopped" and down.status.value == "Stopped"
    outcomes = {(s.verb, s.key): s.outcome for s in report.steps}
    assert outcomes[("stop", "ocs-outside-voice-control")] is StepOutcome.ALREADY
    assert outcomes[("start", "ocs-outside-voice-control")] is StepOutcome.SKIPPED
    assert report.ok, "the run brought back everything it stopped"
    assert _lab_states(lab_for)["ocs-outside-voice-control"] == "Stopped"


def test_what_if_lists_the_lookup_and_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys,
        "restart",
        "--service",
        "ocs-application-host",
        "--lab",
        "--host",
        "ocs01.contoso.com",
        "--what-if",
    )
    assert result.code == 0, result.err
    labels = [line for line in result.out.splitlines() if line.startswith("# ")]
    assert labels[0].startswith("# look up every service first")
    assert sum(1 for line in labels if line.startswith("# stop ")) == 5
    assert sum(1 for line in labels if line.startswith("# start ")) == 5


def test_force_with_a_plan_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = _plan_file(capsys, tmp_path)
    result = run_cli(capsys, "restart", "--plan", str(plan), "--force", "--lab", "--json")
    assert result.code == 2 and result.out == ""
    assert "--force applies to --service" in result.err


def test_what_if_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys,
        "restart",
        "--service",
        "ocs-application-host",
        "--lab",
        "--host",
        "ocs01.contoso.com",
        "--what-if",
        "--json",
    )
    assert result.code == 0, result.err
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["what_if"] is True
    (host,) = doc["hosts"]
    assert [s["action"] for s in host["steps"]] == ["stop"] * 5 + ["start"] * 5


def test_failed_run_exits_1_and_names_what_failed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = _plan_file(capsys, tmp_path)
    topology = str(TOPOLOGIES / "ocs-frontend-stop-fails.toml")
    result = run_cli(capsys, "restart", "--plan", str(plan), "--lab", "--lab-topology", topology, "--json")
    assert result.code == 1, (result.out, result.err)
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    (host,) = doc["hosts"]
    assert host["state"] == "failed" and "cannot be stopped" in host["error"]
    assert [s["key"] for s in host["result"]["restored"]] == ["ocs-im-conferencing", "ocs-frontend"]
    assert host["result"]["down"] == []


@pytest.fixture
def windows_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab refusing, as Windows does, to stop a service whose dependents run unless forced."""
    from ocsps.lab.estate import LabError, SimServer

    original = SimServer.stop

    def stop(self: SimServer, name: str, *, graceful: bool = False, force: bool = False) -> object:
        svc = self.find(name)
        running = [d for d in self.dependents(svc) if d.status != "Stopped"]
        if running and not force and svc.status != "Stopped":
            raise LabError(
                f"Cannot stop service '{svc.display_name} ({svc.name})' because it has dependent services. "
                "It can only be stopped if the Force flag is set.",
                error_id="ServiceHasDependentServices",
            )
        return original(self, name, graceful=graceful, force=force)

    monkeypatch.setattr(SimServer, "stop", stop)


@pytest.mark.usefixtures("windows_rules")
def test_dependency_order_holds_under_windows_rules(lab: Lab) -> None:
    """A stop of Application Host alone is refused; the restart stops its dependents first and succeeds."""
    from ocsps.errors import RemoteError

    fqdn = "ocs01.contoso.com"
    with _server(lab, fqdn) as server:
        with pytest.raises(RemoteError, match="dependent services"):
            server.stop("ocs-application-host")
        report = restart_service(server, "ocs-application-host")
    assert report.ok and report.phase is RunPhase.COMPLETED, report
    assert set(_lab_states(lab, fqdn).values()) == {"Running"}


@pytest.mark.usefixtures("windows_rules")
@pytest.mark.parametrize("lab_for", ["ocs-edge-r2"], indirect=True)
def test_edge_plan_stops_av_authentication_first_under_windows_rules(lab_for: Lab) -> None:
    plan = plan_document(plan_restart(["MSFT_SIPMediaRelayNetworkInterfaceData"]))
    with _server(lab_for, "edge-r2.contoso.com") as server:
        report = server.run_restart_plan(plan)
    assert report.ok, report
    assert [(s.verb, s.key) for s in report.steps] == [
        ("stop", "ocs-av-authentication"),
        ("stop", "ocs-av-edge"),
        ("start", "ocs-av-edge"),
        ("start", "ocs-av-authentication"),
    ]
