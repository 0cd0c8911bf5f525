"""Unit tests of the service module: what it decides from a status, with a fake server (no network)."""

from __future__ import annotations

import dataclasses
import enum
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import service

pytest.importorskip("ocsps")


class _State(enum.Enum):
    RUNNING = "Running"
    STOPPED = "Stopped"


@dataclasses.dataclass(init=False)
class _Status:
    """A service status with the shape of ``ocsps.results.ServiceStatus`` as the encoder writes it."""

    name: str
    status: _State

    def __init__(self, state):
        self.name = "RTCMEDSRV"
        self.status = _State(state)
        self.state = state


class _Rendered:
    script = "Stop-CsWindowsService -Name $Name -Graceful -NoWait"
    bound_parameters = {"Name": "RTCMEDSRV", "NoWait": True}


class _FakeServer:
    host = "med01.contoso.com"

    def __init__(self, state):
        self.state = state
        self.sent = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def status(self, name):
        return _Status(self.state)

    def render(self, action, name, **values):
        return _Rendered()

    def start(self, name, timeout=None):
        self.sent.append("start")
        self.state = "Running"
        return _Status("Running")

    def stop(self, name, timeout=None):
        self.sent.append("stop")
        self.state = "Stopped"
        return _Status("Stopped")


def _run(monkeypatch, capsys, server, check_mode=False, **args):
    monkeypatch.setattr(service, "open_server", lambda module, timeout: server)
    args.update(_ansible_check_mode=check_mode, host="med01.contoso.com", product="sfb2015")
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        service.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("state", "current", "changed"),
    [
        ("stopped", "Stopped", False),
        ("stopped", "Running", True),
        ("started", "Running", False),
        ("started", "Stopped", True),
        ("drained", "Stopped", False),
    ],
)
def test_idempotence_follows_the_status_read_first(monkeypatch, capsys, state, current, changed):
    server = _FakeServer(current)
    result = _run(monkeypatch, capsys, server, service="RTCMEDSRV", state=state)
    assert result.get("changed") is changed, result
    assert bool(server.sent) is changed


def test_check_mode_sends_nothing_and_returns_the_script(monkeypatch, capsys):
    server = _FakeServer("Running")
    result = _run(monkeypatch, capsys, server, check_mode=True, service="RTCMEDSRV", state="stopped")
    assert result["changed"] is True and server.sent == []
    assert result["parameters"] == {"Name": "RTCMEDSRV", "NoWait": True}
    assert "Stop-CsWindowsService" in result["script"]


def test_a_library_error_fails_the_task_with_its_message_and_class(monkeypatch, capsys):
    from ocsps.errors import ConnectError

    class _Unreachable(_FakeServer):
        def status(self, name):
            raise ConnectError("connection refused", host=self.host)

    result = _run(monkeypatch, capsys, _Unreachable("Running"), service="RTCMEDSRV", state="stopped")
    assert result["failed"] is True
    assert result["msg"] == "med01.contoso.com: connection refused"
    assert result["error"] == "ConnectError" and result["exit_code"] == 3
