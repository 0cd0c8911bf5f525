"""The drain watch: one pipeline per drain that the server feeds with a status every poll.

Every figure here is a count taken at the lab (WSMan requests, pipelines, handler runs), never a time:
- a watch costs about one request per poll (a Receive), not a pipeline (Command, Receive, Signal) per poll;
- statuses arrive while the server's loop still runs (a watch that only answers at the end fails);
- every pipeline is terminated: with the lab's MaxConcurrentCommandsPerShell at 1, a pipeline left behind
  makes the next command fail with the WinRM quota fault;
- the server's loop ends by itself at its deadline when the client vanishes;
- a cancel or Ctrl-C stops the pipeline and keeps the last state; a lost connection is answered by watching
  again, read only, never by asking for the stop again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ocsps.jsonout import to_builtins
from ocsps.lab.estate import SimServer
from ocsps.lab.runtime import Lab
from ocsps.lab.wsman import PipelineSink
from ocsps.operations.drain import DrainReport, DrainReportDocument, Phase, drain
from ocsps.remote.server import Server
from tests.reliability.labkit import MED, quick_topology, server_for

WATCHES = ("drain-watch", "drain-follow")
WSMAN = ("Create", "Command", "Receive", "Send", "Signal", "Delete")


class Watched:
    """Wraps the lab's watch handlers: how many ran, which ones are still running, and how each ended."""

    def __init__(self, lab: Lab) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, int] = dict.fromkeys(WATCHES, 0)
        self.running = 0
        self.ended = threading.Event()
        self.cancelled: list[bool] = []
        for name in WATCHES:
            lab.engine.handlers[name] = self._wrap(name, lab.engine.handlers[name])

    def _wrap(self, name: str, handler: Any) -> Any:
        def run(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
            with self.lock:
                self.runs[name] += 1
                self.running += 1
            try:
                handler(sim, params, out)
            finally:
                with self.lock:
                    self.running -= 1
                    self.cancelled.append(out.is_cancelled)
                self.ended.set()

        return run


def _wsman(lab: Lab) -> dict[str, int]:
    counts = lab.requests(MED)
    return {action: counts.get(action, 0) for action in WSMAN}


@pytest.fixture
def lab(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    with Lab(quick_topology(), max_commands_per_shell=1) as running:
        yield running


@pytest.fixture
def server(lab: Lab) -> Iterator[Server]:
    with server_for(lab, MED, timeout=20) as opened:
        yield opened


def test_a_watch_costs_one_receive_per_poll_and_statuses_stream(lab: Lab, server: Server) -> None:
    """Steady state: the requests between the first and the last status are Receives, one per status or
    fewer; the whole drain is two pipelines (the read before, the watch), both terminated."""
    lab.server(MED).drain_seconds = 2.0
    watched = Watched(lab)
    marks: list[tuple[dict[str, int], bool]] = []

    def on_update(report: DrainReport) -> None:
        if report.phase in (Phase.DRAINING, Phase.STOPPED):
            with watched.lock:
                marks.append((_wsman(lab), watched.running > 0))

    server.status("RTCMEDSRV")  # the module import and the pool, out of the count
    before = _wsman(lab)
    report = drain(server, "RTCMEDSRV", timeout=30, poll=0.1, on_update=on_update)
    after = _wsman(lab)

    assert report.phase is Phase.STOPPED and report.ok, to_builtins(DrainReportDocument.of(report))
    assert [e.id for e in report.events] == [25049, 25050, 25003], "events came with the watch"
    assert report.polls >= 10, report.polls
    spent = {k: after[k] - before[k] for k in WSMAN}
    assert spent["Command"] == 2 and spent["Signal"] == 2, spent
    assert watched.runs == {"drain-watch": 1, "drain-follow": 0}
    first, last = marks[0][0], marks[-1][0]
    steady = sum(last[k] - first[k] for k in WSMAN)
    per_poll = steady / (len(marks) - 1)
    assert per_poll <= 1.2, f"{steady} requests for {len(marks) - 1} statuses"
    streamed = [still for _, still in marks]  # a watch answered only at its end would have none
    assert streamed[0] and sum(streamed) >= len(marks) / 2, "statuses arrive while the server's loop runs"


def test_every_pipeline_is_terminated_even_when_the_watch_is_cut_short(lab: Lab, server: Server) -> None:
    """The lab allows one unterminated command per shell: a watch ended by the server, by a cancel or by
    Ctrl-C must each leave the shell able to run the next command."""
    sim = lab.server(MED)
    sim.drain_seconds = 0.3
    for _ in range(2):
        rolled = drain(server, "RTCMEDSRV", timeout=30, poll=0.05, start_again=True)
        assert rolled.ok, rolled.error

    busy = sim.find("RTCMEDSRV")
    busy.stuck_drain, busy.activity = True, {"Inbound Calls": 3}  # calls that never hang up
    cancel = threading.Event()

    def cancel_after_two(report: DrainReport) -> None:
        if report.polls >= 2:
            cancel.set()

    report = drain(server, "RTCMEDSRV", timeout=30, poll=0.05, on_update=cancel_after_two, cancel=cancel)
    assert report.phase is Phase.INTERRUPTED and report.last is not None
    assert report.last.status.value == "Paused", "the last state read is kept"
    assert "keeps draining" in report.note
    assert server.status("RTCMEDSRV").status.value == "Paused", "the shell takes the next command"

    def interrupt(report: DrainReport) -> None:
        if report.polls >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        drain(server, "RTCMEDSRV", timeout=30, poll=0.05, on_update=interrupt)
    assert server.status("RTCMEDSRV").status.value == "Paused", "the shell takes the next command"
    assert server.session.stats.pools_opened == 1, "one pool throughout: nothing was left behind"


def test_a_pipeline_left_unterminated_meets_the_quota_fault(lab: Lab, server: Server) -> None:
    """The other half of the test above: the lab really refuses a second unterminated command."""
    from pypsrp.exceptions import WSManFaultError
    from pypsrp.powershell import PowerShell

    server.status("RTCMEDSRV")
    server.session._release_finished()  # what the session does before its next command
    pool = server.session._pool
    left = PowerShell(pool)
    left.add_script("Get-CsWindowsService -Name RTCMEDSRV")
    left.invoke()  # finished, but never terminated (no close)
    second = PowerShell(pool)
    second.add_script("Get-CsWindowsService -Name RTCMEDSRV")
    with pytest.raises(WSManFaultError):
        second.invoke()


def test_the_server_loop_ends_at_its_deadline_when_the_client_vanishes(lab: Lab) -> None:
    """A client that starts a watch and goes away (no Receive, no Signal, no Delete) leaves nothing
    running past the watch's server-side deadline."""
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    lab.server(MED).find("RTCMEDSRV").stuck_drain = True
    watched = Watched(lab)
    server = server_for(lab, MED)
    rendered = server.render("drain-watch", "RTCMEDSRV", PollMilliseconds=50, DeadlineMilliseconds=1000)
    wsman = WSMan(**lab.listener.client_kwargs(MED))
    pool = RunspacePool(wsman)
    pool.open()
    ps = PowerShell(pool)
    ps.add_script(rendered.script)
    for name, value in rendered.bound_parameters.items():
        ps.add_parameter(name, value)
    ps.begin_invoke()
    wsman.close()  # gone: the connection closes, nothing is stopped or deleted
    counts = _wsman(lab)
    assert watched.ended.wait(30), "the server's loop ended by itself"
    assert watched.cancelled == [False], "it reached its deadline; nobody stopped it"
    assert counts["Signal"] == 0 and counts["Delete"] == 0
    assert lab.server(MED).find("RTCMEDSRV").status == "Paused", "the drain itself goes on"


def test_a_lost_connection_resumes_the_watch_without_a_second_stop(lab: Lab, server: Server) -> None:
    sim = lab.server(MED)
    sim.drain_seconds = 1.0
    watched = Watched(lab)
    requested: list[str] = []
    original = SimServer.stop

    def counting_stop(self: SimServer, name: str, *, graceful: bool = False, force: bool = False) -> Any:
        if graceful:
            requested.append(name)
        return original(self, name, graceful=graceful, force=force)

    decisions: list[str] = []

    def break_after_three(report: DrainReport) -> None:
        if report.polls == 3:
            lab.faults(MED).drop_next("Receive")  # the next Receive's connection closes without a reply

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SimServer, "stop", counting_stop)
        report = drain(
            server,
            "RTCMEDSRV",
            timeout=30,
            poll=0.05,
            on_update=break_after_three,
            on_decision=decisions.append,
        )
    assert report.phase is Phase.STOPPED and report.ok, to_builtins(DrainReportDocument.of(report))
    assert requested == ["RTCMEDSRV"], "the graceful stop reached the server once"
    assert watched.runs["drain-watch"] == 1 and watched.runs["drain-follow"] >= 1, watched.runs
    assert len(decisions) == 1 and "not sent again" in decisions[0], decisions
    assert [e.id for e in report.events] == [25049, 25050, 25003]


def test_the_drain_deadline_ends_the_server_loop_and_the_then_policy_applies(
    lab: Lab, server: Server
) -> None:
    lab.server(MED).find("RTCMEDSRV").stuck_drain = True
    watched = Watched(lab)
    report = drain(server, "RTCMEDSRV", timeout=0.6, poll=0.1)
    assert report.phase is Phase.DEADLINE and report.then is not None, to_builtins(
        DrainReportDocument.of(report)
    )
    assert report.last is not None and report.last.status.value == "Paused"
    assert watched.runs == {"drain-watch": 1, "drain-follow": 0}
    assert watched.cancelled == [False], "the server's loop ended at its deadline, not by a stop"


def test_what_if_shows_the_watch_that_a_run_sends(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--what-if`` names the script a watched drain really sends (the audit log's body hash)."""
    import json

    from tests.cli_helpers import run_cli

    audit = tmp_path / "watched.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(audit))
    args = ("drain", "-s", "RTCMEDSRV", "--lab", "-H", MED, "--poll", "0.2s", "--timeout", "1m", "--json")
    shown = run_cli(capsys, *args, "--what-if")
    assert shown.code == 0, shown.err
    (host,) = shown.json()["hosts"]
    steps = {step["action"]: step for step in host["steps"]}
    assert set(steps) == {"status", "drain-watch"}
    watch = steps["drain-watch"]["parameters"]
    assert watch["PollMilliseconds"] == 200 and watch["DeadlineMilliseconds"] == 60_000
    assert watch["EventId"] == ["25003", "25049", "25050"]
    ran = run_cli(capsys, *args)
    assert ran.code == 0, ran.err
    sent = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    hashes = {line["body_sha256"] for line in sent if line.get("action") == "drain-watch"}
    assert hashes == {steps["drain-watch"]["body_sha256"]}
