"""Operations that check before they act and report only what they saw, against the lab over real PSRP.

Each test stands for one way ocsps used to trust a server too much: a stop sent twice to a service that
acknowledged late, an answer about another service or from another computer taken as the answer, every
server of a list changed at once, a report that said more (or less) than was observed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ocsps.errors import OperationFailed, UsageError
from ocsps.jsonout import to_builtins
from ocsps.lab.estate import SimServer
from ocsps.lab.runtime import Lab
from ocsps.operations import change
from ocsps.operations.change import change_service
from ocsps.operations.drain import DrainReportDocument, Phase
from ocsps.remote.server import Server, answering_computer_ok
from tests.cli_helpers import run_cli
from tests.conftest import ROOT, lab_server

MED = "med01.contoso.com"
MED10 = "med10.contoso.com"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    return path


@pytest.fixture
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-read often: the late acknowledgement below is counted in reads, not in seconds."""
    monkeypatch.setattr(change, "SETTLE_SECONDS", 30.0)
    monkeypatch.setattr(change, "SETTLE_INTERVAL", 0.05)


def _mediation_topology(tmp_path: Path, count: int, *, stuck: bool = False, perfmon: bool = True) -> Path:
    lines = []
    for n in range(1, count + 1):
        lines += [
            "[[servers]]",
            f'fqdn = "med{n:02d}.contoso.com"',
            'product = "sfb2015"',
            'roles = ["MediationServer"]',
            "drain_seconds = 0.3",
            *(['stuck_drain = ["RTCMEDSRV"]'] if stuck else []),
            *(["in_perfmon_group = false"] if not perfmon else []),
            "[servers.activity.RTCMEDSRV]",
            '"Inbound Calls" = 2',
            "",
        ]
    path = tmp_path / f"mediation-{count}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text())
    return loaded


def _sent(lab: Lab, fqdn: str) -> int:
    return lab.requests(fqdn).get("Command", 0)


# ------------------------------------------------------------------- a change is never sent twice on a guess
def test_a_drain_acknowledged_late_is_never_sent_twice(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, quick_settle: None
) -> None:
    """The server accepts the graceful stop but shows Paused only three reads later; the reply is lost.

    Before: one re-read showed Running, "lost before it took effect", and the stop went out again.
    """
    accepted: list[str] = []
    waiting: dict[str, int] = {}
    original_stop, original_tick = SimServer.stop, SimServer.tick

    def stop(self: SimServer, name: str, *, graceful: bool = False, force: bool = False) -> Any:
        if graceful and self.fqdn == MED:
            accepted.append(name)
            if not waiting:
                waiting[name] = 3  # acknowledged three reads from now
                return self.find(name)
        return original_stop(self, name, graceful=graceful, force=force)

    def tick(self: SimServer) -> None:
        for name in list(waiting):
            waiting[name] -= 1
            if waiting[name] <= 0:
                del waiting[name]
                original_stop(self, name, graceful=True)
        original_tick(self)

    monkeypatch.setattr(SimServer, "stop", stop)
    monkeypatch.setattr(SimServer, "tick", tick)
    original_watch = Server.watch_drain

    def watch_drain(self: Server, *args: Any, **kwargs: Any) -> Any:
        if kwargs["request"]:  # the first reply after the request is lost: no status came back
            lab.faults(MED).drop_next("Receive", after_processing=True)
        return original_watch(self, *args, **kwargs)

    monkeypatch.setattr(Server, "watch_drain", watch_drain)
    decisions: list[str] = []
    with lab_server(lab, MED) as server:
        report = server.drain("RTCMEDSRV", timeout=30, poll=0.1, on_decision=decisions.append)
    assert accepted == ["RTCMEDSRV"], "the graceful stop reached the server exactly once"
    assert report.phase is Phase.STOPPED and report.ok, to_builtins(DrainReportDocument.of(report))
    assert len(decisions) == 1 and "not sent again" in decisions[0], decisions
    assert "re-read shows Paused" in decisions[0]


# --------------------------------------------------------------------- every answer against the question
def test_an_answer_about_another_service_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked to drain RTCMEDSRV, the server answers about a stopped RTCSRV: never "already stopped"."""
    import ocsps.lab.engine as engine

    original = engine._template_view

    def wrong(server: SimServer, svc: Any, *, activity: bool = True) -> dict[str, Any]:
        view = original(server, svc, activity=activity)
        if view["Name"] == "RTCMEDSRV":
            view.update(Name="RTCSRV", Status="Stopped")
        return view

    monkeypatch.setattr(engine, "_template_view", wrong)
    result = run_cli(capsys, "drain", "-s", "RTCMEDSRV", "--lab", "-H", MED, "--json")
    assert result.code == 1, result.err
    (host,) = result.json()["hosts"]
    assert host["state"] == "failed"
    assert "asked about RTCMEDSRV, the server answered about RTCSRV" in host["result"]["error"]
    assert "already stopped" not in result.out
    result = run_cli(capsys, "stop", "-s", "RTCMEDSRV", "--lab", "-H", MED, "--json")
    assert result.code == 1 and "answered about RTCSRV" in result.json()["hosts"][0]["error"]


@pytest.mark.parametrize(
    ("host", "computer", "expected", "ok"),
    [
        ("med01.contoso.com", "med01.contoso.com", None, True),
        ("MED01.contoso.com.", "med01.CONTOSO.com", None, True),
        ("med01", "med01.contoso.com", None, True),
        ("med01.contoso.com", "MED01", None, True),
        ("med02.contoso.com", "med01.contoso.com", None, False),
        ("med02", "med01.contoso.com", None, False),
        ("med01.contoso.com", "med01.fabrikam.com", None, False),
        ("gateway.contoso.com", "med01.contoso.com", "med01.contoso.com", True),
        ("gateway.contoso.com", "med02.contoso.com", "med01.contoso.com", False),
        ("10.0.0.15", "med01.contoso.com", None, True),
        ("10.0.0.15", "med02.contoso.com", "med01.contoso.com", False),
        ("med01.contoso.com", None, None, True),
    ],
)
def test_which_answering_computer_is_the_named_host(
    host: str, computer: str | None, expected: str | None, ok: bool
) -> None:
    assert answering_computer_ok(host, computer, expected) is ok


def test_an_answer_from_another_computer_is_refused(lab: Lab) -> None:
    """med10 is dialled, med01 answers (one address behind NAT, a stale DNS record): nothing is assumed."""
    wrong_path = lab.connection(MED)["path"]
    with lab_server(lab, MED10, path=wrong_path) as server, pytest.raises(OperationFailed) as caught:
        server.status("RTCMEDSRV")
    assert f"the computer that answered is {MED}, not {MED10}" in caught.value.message
    with lab_server(lab, MED10, path=wrong_path, expect_computer=MED) as server:
        assert server.status("RTCMEDSRV").computer == MED, "an alias is accepted when it is declared"


def test_a_drain_on_the_wrong_computer_changes_nothing(lab: Lab) -> None:
    with lab_server(lab, MED10, path=lab.connection(MED)["path"]) as server:
        report = server.drain("RTCMEDSRV", timeout=5, poll=0.1)
    assert report.phase is Phase.FAILED and not report.ok
    assert "the computer that answered is" in report.error
    assert lab.server(MED).services["RTCMEDSRV"].status == "Running"
    assert lab.server(MED10).services["RTCMEDSRV"].status == "Running"


def test_one_connect_address_for_several_hosts_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ocsps.toml"
    config.write_text(
        '[default]\nconnect_address = "10.0.0.15"\nproduct = "sfb2015"\nauth = "ntlm"\n'
        'username = "CONTOSO\\\\admin"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    monkeypatch.setenv("OCSPS_PASSWORD", "secret")
    result = run_cli(capsys, "drain", "-s", "RTCMEDSRV", "-H", "med01.contoso.com", "-H", "med02.contoso.com")
    assert result.code == 2, result.err
    assert "med01.contoso.com, med02.contoso.com would all be reached at 10.0.0.15" in result.err
    ports = run_cli(
        capsys, "status", "--what-if", "-H", "med01.contoso.com:5986", "-H", "med02.contoso.com:5987"
    )
    assert "would all be reached" not in ports.err, "distinct ports are distinct endpoints"


# ------------------------------------------------------------------------- one host at a time by default
def test_several_hosts_drain_one_at_a_time_and_stop_at_the_first_failure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Three Mediation servers that never finish draining: the first reaches its deadline, and the other
    two are never touched. Before: all three were taken out of service at once."""
    topology = _mediation_topology(tmp_path, 3, stuck=True)
    result = run_cli(
        capsys, "drain", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--timeout", "0.5s",
        "--poll", "0.1s", "--json",
    )  # fmt: skip
    doc = result.json()
    assert [(h["host"], h["state"]) for h in doc["hosts"]] == [
        ("med01.contoso.com", "failed"),
        ("med02.contoso.com", "skipped"),
        ("med03.contoso.com", "skipped"),
    ]
    assert doc["hosts"][0]["result"]["phase"] == "deadline"
    assert "result" not in doc["hosts"][1], "nothing was read from or sent to med02"


def test_an_explicit_width_changes_that_many_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    topology = _mediation_topology(tmp_path, 3, stuck=True)
    result = run_cli(
        capsys, "drain", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--timeout", "0.5s",
        "--poll", "0.1s", "--parallel", "3", "--json",
    )  # fmt: skip
    assert [h["state"] for h in result.json()["hosts"]] == ["failed", "failed", "failed"]


@pytest.mark.parametrize(
    ("words", "fragment"),
    [
        (
            ["drain", "-s", "RTCMEDSRV", "--poll", "10m", "--timeout", "1m"],
            "--poll 10m is longer than --timeout 1m",
        ),
        (
            ["drain", "-s", "RTCMEDSRV", "--rolling", "--parallel", "4"],
            "--rolling works on one host at a time",
        ),
        (["stop", "-s", "RTCMEDSRV", "--rolling", "--parallel", "2"], "--parallel 2 contradicts it"),
        (["drain", "-s", "RTCMEDSRV", "--rolling", "--no-wait"], "--rolling: starting the service again"),
        (["drain", "-s", "RTCMEDSRV", "--rolling", "--then", "leave"], "would move on while it still drains"),
    ],
)
def test_contradictory_timing_and_width_are_refused(
    capsys: pytest.CaptureFixture[str], words: list[str], fragment: str
) -> None:
    result = run_cli(capsys, *words, "--lab")
    assert result.code == 2, result.err
    assert fragment in result.err
    assert result.err.count("\n") == 1, "one clear line"


def test_no_wait_on_several_hosts_needs_an_explicit_width(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    topology = _mediation_topology(tmp_path, 2)
    args = ["drain", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--no-wait", "--json"]
    refused = run_cli(capsys, *args)
    assert refused.code == 2 and "--no-wait on 2 hosts would take them all out" in refused.err
    asked = run_cli(capsys, *args, "--parallel", "2")
    assert asked.code == 0, asked.err
    assert [h["result"]["status"] for h in asked.json()["hosts"]] == ["Paused", "Paused"]


def test_the_library_refuses_a_poll_longer_than_the_deadline(lab: Lab) -> None:
    with lab_server(lab, MED) as server, pytest.raises(UsageError, match="longer than the 60s timeout"):
        server.drain("RTCMEDSRV", timeout=60, poll=600)


# ---------------------------------------------------------------------------------- output and reports
@pytest.mark.parametrize("command", ["drain", "stop", "start"])
def test_what_if_json_is_one_document(capsys: pytest.CaptureFixture[str], command: str) -> None:
    result = run_cli(capsys, command, "-s", "RTCMEDSRV", "--lab", "-H", MED, "--what-if", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    jsonschema.validate(doc, _schema("what-if"))
    assert doc["command"] == command and doc["what_if"] is True and doc["exit_code"] == 0
    (host,) = doc["hosts"]
    sent = "drain-watch" if command == "drain" else command  # a watched drain: request and watch in one
    assert host["host"] == MED and [s["action"] for s in host["steps"]] == ["status", sent]
    assert host["steps"][1]["parameters"]["Name"] == "RTCMEDSRV"
    assert "param(" in host["steps"][1]["script"]


def test_no_wait_drain_that_was_accepted_exits_zero(capsys: pytest.CaptureFixture[str], lab: Lab) -> None:
    result = run_cli(capsys, "drain", "-s", "RTCMEDSRV", "--lab", "-H", MED, "--no-wait", "--json")
    assert result.code == 0, result.err
    jsonschema.validate(result.json(), _schema("drain"))
    report = result.json()["hosts"][0]["result"]
    assert report["ok"] is True and report["waited"] is False and report["status"] == "Paused"


def test_what_if_with_emit_script_writes_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "stop.ps1"
    result = run_cli(
        capsys, "stop", "-s", "RTCMEDSRV", "--lab", "-H", MED, "--what-if", "--emit-script", str(target)
    )
    assert result.code == 0, result.err
    assert target.is_file() and "Stop-CsWindowsService" in target.read_text(encoding="utf-8-sig")
    assert f"wrote {target}" in result.err


def test_a_plain_stop_of_a_busy_service_without_a_terminal_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    topology = _mediation_topology(tmp_path, 1)
    args = ["stop", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--json"]
    refused = run_cli(capsys, *args)
    assert refused.code == 1
    error = refused.json()["hosts"][0]["error"]
    assert "carries 2 active sessions" in error and "ocsps drain" in error and "--yes" in error
    assert refused.json()["hosts"][0]["step"] == "last known state: Running (read before stop)"
    done = run_cli(capsys, *args, "--yes")
    assert done.code == 0, done.err
    jsonschema.validate(done.json(), _schema("operation"))
    assert "cuts 2 active sessions (--yes)" in done.err


def test_a_stop_asks_on_a_terminal(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    with lab_server(lab, MED) as server:
        with pytest.raises(OperationFailed):
            change_service(server, "RTCMEDSRV", "stop", confirm=lambda s: asked.append(s.name) is not None)
        assert server.status("RTCMEDSRV").is_running
        done = change_service(server, "RTCMEDSRV", "stop", confirm=lambda s: True)
    assert asked == ["RTCMEDSRV"] and done.ok and done.changed


def test_a_second_drain_reports_only_its_own_events(lab: Lab) -> None:
    """Drain, start, drain again within a minute: the second report lists the second drain's events."""
    with lab_server(lab, MED) as server:
        first = server.drain("RTCMEDSRV", timeout=30, poll=0.2)
        server.start("RTCMEDSRV")
        lab.server(MED).services["RTCMEDSRV"].activity = {"Inbound Calls": 3}
        second = server.drain("RTCMEDSRV", timeout=30, poll=0.2)
    assert [e.id for e in first.events] == [25049, 25050, 25003]
    assert [e.id for e in second.events] == [25049, 25050, 25003], to_builtins(
        DrainReportDocument.of(second)
    )["events"]
    assert min(e.time for e in second.events) > max(e.time for e in first.events)


@pytest.mark.parametrize("idle", [True, False], ids=["stops-at-once", "stops-while-polled"])
def test_progress_never_says_draining_about_a_stopped_service(lab: Lab, idle: bool) -> None:
    if idle:
        lab.server(MED).services["RTCMEDSRV"].activity = {}
    lab.server(MED).drain_seconds = 0.5
    seen: list[tuple[str, str]] = []
    with lab_server(lab, MED) as server:
        report = server.drain(
            "RTCMEDSRV",
            timeout=10,
            poll=0.1,
            on_update=lambda r: seen.append((r.phase.value, r.last.status.value if r.last else "")),
        )
    assert report.phase is Phase.STOPPED
    assert ("draining", "Stopped") not in seen, seen


def test_a_rolling_drain_reports_both_states(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    topology = _mediation_topology(tmp_path, 2)
    result = run_cli(
        capsys, "drain", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--rolling",
        "--poll", "0.1s", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    for host in result.json()["hosts"]:
        report = host["result"]
        assert report["status"] == "Running" and report["drained_status"] == "Stopped"
        assert "drained to Stopped, then started again: Running" in report["note"]
    human = run_cli(
        capsys, "drain", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--rolling",
        "--poll", "0.1s",
    )  # fmt: skip
    assert human.code == 0 and "Running" in human.out
    for line in human.out.splitlines():
        assert "Stopped" not in [cell.strip() for cell in line.split("│")], line


def test_the_performance_monitor_warning_is_said_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    topology = _mediation_topology(tmp_path, 1, perfmon=False)
    result = run_cli(
        capsys, "drain", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--poll", "0.05s",
        "--timeout", "5s", "--json",
    )  # fmt: skip
    assert result.json()["hosts"][0]["result"]["polls"] >= 2
    assert result.err.count("Performance Monitor Users") == 1, result.err


# ------------------------------------------------------------------------------ the library does it all
def test_library_stop_reads_first_and_says_already_stopped(lab: Lab) -> None:
    lab.server(MED).services["RTCMEDSRV"].status = "Stopped"
    before = _sent(lab, MED)
    with lab_server(lab, MED) as server:
        done = server.change("RTCMEDSRV", "stop")
    assert done.ok and not done.changed and done.note == "already stopped: nothing to do"
    assert done.before is not None and done.before.computer == MED
    assert _sent(lab, MED) - before <= 2, "a module import and one status read; no stop"


def test_library_rolling_drain_starts_the_service_again(lab: Lab) -> None:
    with lab_server(lab, MED) as server:
        report = server.drain("RTCMEDSRV", timeout=30, poll=0.1, start_again=True)
    assert report.ok and report.drained is not None and report.drained.is_stopped
    assert report.last is not None and report.last.is_running
    assert lab.server(MED).services["RTCMEDSRV"].status == "Running"
