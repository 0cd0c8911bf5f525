"""Unit tests of the service module: it runs the library's operations (read first, session check, lost
replies settled, dependents brought back, audit) against a fake server that keeps the state of every
service of an sfb2015 Mediation and Edge box (no network)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import service

pytest.importorskip("ocsps")

from ocsps.catalog import load_catalog  # noqa: E402
from ocsps.errors import OutcomeUnknown  # noqa: E402
from ocsps.results import ServiceState, ServiceStatus  # noqa: E402
from ocsps.results.activity import parse_activity_level  # noqa: E402

RUNNING, STOPPED = ServiceState.RUNNING, ServiceState.STOPPED


class _FakeServer:
    """What the operations need of ``ocsps.remote.server.Server``, with Windows' rules for a stop: a
    service stopped with ``restart`` takes its running dependents down and brings only itself back."""

    host = "med01.contoso.com"

    def __init__(self, states=None, activity="Inbound Calls=0", lose=None):
        self.catalog = load_catalog()
        self.product = self.catalog.product("sfb2015")
        self.states = {"RTCMEDSRV": RUNNING, "RTCMEDIARELAY": RUNNING, "RTCMRAUTH": RUNNING}
        self.states.update(states or {})
        self.activity = activity
        self.lose = dict(lose or {})  # action -> reply lost after the server acted
        self.sent = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    # ------------------------------------------------------------------ reads
    def resolve(self, name):
        return name if not isinstance(name, str) else self.catalog.find_service(self.product, name)

    def event_ids(self, svc, *meanings):
        return tuple(e.id for e in self.catalog.events_for_service(svc.key) if e.meaning in meanings)

    def _status(self, key):
        return ServiceStatus(
            name=key,
            status=self.states[key],
            status_text=self.states[key].value,
            computer=self.host,
            activity=parse_activity_level(self.activity) if self.states[key] is RUNNING else None,
        )

    def status(self, name, *, timeout=None):
        return self._status(self.resolve(name).key)

    def services(self, service=None, *, activity=True, timeout=None):
        return [self._status(key) for key in self.states]

    def events(self, ids, since, **_):
        return []

    # ------------------------------------------------------------------ changes
    def _send(self, action, key, state):
        self.sent.append(f"{action} {key}")
        self.states[key] = state
        if self.lose.pop(f"{action} {key}", False):
            raise OutcomeUnknown("connection dropped before the reply", host=self.host)
        return self._status(key)

    def stop(self, name, *, force=False, timeout=None):
        return self._send("stop", self.resolve(name).key, STOPPED)

    def start(self, name, *, timeout=None):
        return self._send("start", self.resolve(name).key, RUNNING)

    def restart(self, name, *, force=False, timeout=None):
        svc = self.resolve(name)
        for dependent in self.catalog.dependents_of(self.product, svc):
            self.states[dependent.key] = STOPPED
        return self._send("restart", svc.key, RUNNING)

    def drain(self, name, *, timeout, poll, then, leave_running=(), on_decision=None, **_):
        from ocsps.operations.drain import drain

        return drain(
            self, name, timeout=timeout, poll=poll, then=then, leave_running=tuple(leave_running),
            on_decision=on_decision,
        )

    def watch_drain(self, svc, *, request, on_status, **_):
        on_status(self._send("drain-watch", svc.key, STOPPED))


@pytest.fixture
def audit_log(monkeypatch, tmp_path):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    return path


def _run(monkeypatch, capsys, server, check_mode=False, **args):
    monkeypatch.setattr(service, "open_server", lambda module, timeout: server)
    args.update(_ansible_check_mode=check_mode, host="med01.contoso.com", product="sfb2015")
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        service.main()
    return json.loads(capsys.readouterr().out)


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("state", "current", "changed"),
    [
        ("stopped", STOPPED, False),
        ("stopped", RUNNING, True),
        ("started", RUNNING, False),
        ("started", STOPPED, True),
        ("drained", STOPPED, False),
        ("drained", RUNNING, True),
    ],
)
def test_idempotence_follows_the_status_read_first(monkeypatch, capsys, audit_log, state, current, changed):
    server = _FakeServer({"RTCMEDSRV": current})
    result = _run(monkeypatch, capsys, server, service="RTCMEDSRV", state=state)
    assert result.get("changed") is changed, result
    assert bool(server.sent) is changed
    assert result["after"]["status"] == ("Running" if state == "started" else "Stopped")
    # the intent record comes first, as on the command line, whether or not a change is needed
    assert _lines(audit_log)[0]["outcome"] == "starting"


def test_a_stop_of_a_busy_service_is_refused_unless_sessions_may_be_cut(monkeypatch, capsys, audit_log):
    server = _FakeServer(activity="Inbound Calls=3")
    refused = _run(monkeypatch, capsys, server, service="RTCMEDSRV", state="stopped")
    assert refused["failed"] is True and server.sent == []
    assert "carries 3 active sessions" in refused["msg"] and "cut_sessions: true" in refused["msg"]
    assert refused["before"]["status"] == "Running" and refused["changed"] is False

    rehearsed = _run(monkeypatch, capsys, server, True, service="RTCMEDSRV", state="stopped")
    assert rehearsed["failed"] is True and rehearsed["msg"] == refused["msg"] and server.sent == []

    done = _run(monkeypatch, capsys, server, service="RTCMEDSRV", state="stopped", cut_sessions=True)
    assert done["changed"] is True and server.sent == ["stop RTCMEDSRV"]


def test_a_restart_brings_the_running_dependents_back(monkeypatch, capsys, audit_log):
    server = _FakeServer()
    result = _run(monkeypatch, capsys, server, service="RTCMEDIARELAY", state="restarted")
    assert result["changed"] is True and result["restart"]["ok"] is True, result
    assert server.sent == [
        "stop RTCMRAUTH", "stop RTCMEDIARELAY", "start RTCMEDIARELAY", "start RTCMRAUTH",
    ]
    assert server.states["RTCMRAUTH"] is RUNNING
    assert result["before"]["status"] == result["after"]["status"] == "Running"


def test_a_lost_reply_is_settled_by_a_re_read_and_audited(monkeypatch, capsys, audit_log):
    server = _FakeServer({"RTCMEDSRV": STOPPED}, lose={"start RTCMEDSRV": True})
    result = _run(monkeypatch, capsys, server, service="RTCMEDSRV", state="started", change_id="CHG-7")
    assert result["changed"] is True and server.sent == ["start RTCMEDSRV"], "sent once, never repeated"
    (decision,) = result["decisions"]
    assert "re-read shows Running" in decision and "not sent again" in decision
    decided = [line for line in _lines(audit_log) if line["outcome"].startswith("decided:")]
    assert decided == [
        {
            **decided[0],
            "host": "med01.contoso.com",
            "action": "start",
            "parameters": {"Name": "RTCMEDSRV"},
            "outcome": f"decided: {decision}",
            "detail": "re-read after an unknown outcome",
            "change_id": "CHG-7",
        }
    ]


def test_an_unwritable_audit_log_refuses_the_change(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path))  # a directory
    server = _FakeServer({"RTCMEDSRV": STOPPED})
    result = _run(monkeypatch, capsys, server, service="RTCMEDSRV", state="started")
    assert result["failed"] is True and result["exit_code"] == 2 and server.sent == []


def test_leave_running_is_decided_by_the_catalog(monkeypatch, capsys, audit_log):
    server = _FakeServer()
    result = _run(
        monkeypatch, capsys, server, service="RTCMEDSRV", state="drained",
        leave_running=["RTCCLSAGT", "RTCMRAUTH"],
    )
    assert result["changed"] is True
    warnings = [w["event"]["msg"] if isinstance(w, dict) else w for w in result["warnings"]]
    assert warnings == ["RTCMRAUTH keeps running: drain stops only the service named"]

    refused = _run(
        monkeypatch, capsys, _FakeServer(), service="RTCMEDSRV", state="drained", leave_running=["RTCNOPE"]
    )
    assert refused["failed"] is True and refused["exit_code"] == 2
    assert "cannot leave RTCNOPE running" in refused["msg"]


def test_check_mode_sends_nothing_and_returns_what_would_run(monkeypatch, capsys, audit_log):
    server = _FakeServer()
    stop = _run(monkeypatch, capsys, server, True, service="RTCMEDSRV", state="stopped", force=True)
    assert stop["changed"] is True and server.sent == []
    assert stop["parameters"] == {"Name": "RTCMEDSRV", "Force": True}
    assert "Stop-CsWindowsService" in stop["script"]
    assert [s["action"] for s in stop["steps"]] == ["status", "stop"], "the read first, as --what-if shows"

    drain = _run(
        monkeypatch, capsys, server, True, service="RTCMEDSRV", state="drained", poll="2s",
        leave_running=["RTCCLSAGT"],
    )
    assert drain["parameters"]["PollMilliseconds"] == 2000 and drain["parameters"]["LeaveClsAgentRunning"] is True

    restart = _run(monkeypatch, capsys, server, True, service="RTCMEDIARELAY", state="restarted")
    assert [s["label"].split()[0] for s in restart["steps"]] == ["stop", "stop", "start", "start"]
    assert server.sent == [] and not audit_log.exists()


def test_a_library_error_fails_the_task_with_its_message_and_class(monkeypatch, capsys, audit_log):
    from ocsps.errors import ConnectError

    class _Unreachable(_FakeServer):
        def status(self, name, *, timeout=None):
            raise ConnectError("connection refused", host=self.host)

    result = _run(monkeypatch, capsys, _Unreachable(), service="RTCMEDSRV", state="stopped")
    assert result["failed"] is True
    assert result["msg"] == "med01.contoso.com: connection refused"
    assert result["error"] == "ConnectError" and result["exit_code"] == 3
