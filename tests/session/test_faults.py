"""Faults on the wire: each one a typed, one-line error naming the host, and the right retry decision.

The data-driven cases (tests/data/session/faults) replace one server answer, or raise what requests
raises, on a read; the tests below them check that a change is never sent twice.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError

from ocsps import errors
from ocsps.errors import ConnectError, OcspsError, OutcomeUnknown
from ocsps.powershell.script import RenderedScript, render_action
from ocsps.remote.server import Server
from ocsps.remote.session import MAX_READ_ATTEMPTS, REOPEN_BACKOFF_MAX, RunResult
from ocsps.results import ServiceState
from tests.conftest import DATA
from tests.session.wire import HOST, Override, Reply, Request, WireLab

pytestmark = pytest.mark.timeout(60)

CASES = sorted((DATA / "session" / "faults").glob("*.json"))


def _transport_failure(kind: str, url: str) -> BaseException:
    """What requests raises for ``kind``, nested the way requests and urllib3 nest it."""
    if kind == "dns":
        gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        resolution = NameResolutionError(HOST, None, gai)  # type: ignore[arg-type]
        resolution.__cause__ = gai
        return requests.exceptions.ConnectionError(MaxRetryError(None, url, resolution))  # type: ignore[arg-type]
    if kind == "refused":
        refused = ConnectionRefusedError(111, "Connection refused")
        new = NewConnectionError(None, f"Failed to establish a new connection: {refused}")  # type: ignore[arg-type]
        new.__cause__ = refused
        return requests.exceptions.ConnectionError(MaxRetryError(None, url, new))  # type: ignore[arg-type]
    if kind in ("tls-unverified", "tls-wrong-version"):
        failure: ssl.SSLError
        if kind == "tls-unverified":
            failure = ssl.SSLCertVerificationError(
                1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
            )
            failure.verify_message = "self-signed certificate"
            failure.reason = "CERTIFICATE_VERIFY_FAILED"
        else:
            failure = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)")
            failure.reason = "WRONG_VERSION_NUMBER"
        wrapped = Urllib3SSLError(failure)
        wrapped.__cause__ = failure
        return requests.exceptions.SSLError(MaxRetryError(None, url, wrapped))  # type: ignore[arg-type]
    if kind == "connect-timeout":
        timeout = ConnectTimeoutError(None, "Connection to med01.contoso.com timed out. (connect timeout=30)")
        return requests.exceptions.ConnectTimeout(MaxRetryError(None, url, timeout))  # type: ignore[arg-type]
    if kind == "proxy":
        tunnel = OSError("Tunnel connection failed: 403 Forbidden")
        proxy = Urllib3ProxyError("Unable to connect to proxy", tunnel)
        return requests.exceptions.ProxyError(MaxRetryError(None, url, proxy))  # type: ignore[arg-type]
    if kind == "reset":
        reset = ConnectionResetError(104, "Connection reset by peer")
        return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", reset))
    if kind == "dropped":
        gone = RemoteDisconnected("Remote end closed connection without response")
        return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", gone))
    if kind == "read-timeout":
        late = ReadTimeoutError(None, url, "Read timed out. (read timeout=30)")  # type: ignore[arg-type]
        return requests.exceptions.ReadTimeout(late)
    raise ValueError(f"unknown transport failure {kind!r}")


def _fault(case: dict[str, Any], folder: Path) -> Override:
    def answer(request: Request, prepared: requests.PreparedRequest) -> Reply:
        if "raise" in case:
            raise _transport_failure(case["raise"], prepared.url or "")
        reply = case["reply"]
        text = (folder / reply["body_file"]).read_text() if "body_file" in reply else reply["body"]
        for key, value in (
            ("{message_id}", request.message_id),
            ("{command_id}", request.command_id or ""),
            ("{shell_id}", request.shell_id),
        ):
            text = text.replace(key, value)
        headers = dict(reply.get("headers", {}))
        if "content_type" in reply:
            headers["Content-Type"] = reply["content_type"]
        return reply["status"], headers, text.encode("utf-8")

    return answer


def _status(wire: WireLab) -> RenderedScript:
    return render_action("status", wire.product(), {"Name": "RTCMEDSRV"})


def assert_one_line_about_host(exc: OcspsError) -> None:
    """The contract of every fault: typed, one line, naming the host, no library exception chained."""
    assert exc.host == HOST
    assert exc.message.startswith(f"{HOST}: ")
    assert "\n" not in str(exc) and "\r" not in str(exc)
    assert "\n" not in exc.message and "\r" not in exc.message
    assert exc.__cause__ is None, "no requests/pypsrp traceback behind it"
    assert exc.__context__ is None or exc.__suppress_context__


def test_every_case_is_well_formed() -> None:
    assert CASES, "no fault cases found"
    for path in CASES:
        case = json.loads(path.read_text())
        assert case["on"] in ("Create", "Command", "Receive"), path.name
        assert ("reply" in case) != ("raise" in case), path.name
        assert issubclass(getattr(errors, case["expect"]["error"]), OcspsError), path.name


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_fault_on_a_read(wire: WireLab, path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ocsps.remote")
    case = json.loads(path.read_text())
    expect = case["expect"]
    session = wire.session()
    try:
        if case["on"] != "Create":
            session.open()
        creates = wire.count("Create")
        wire.fail_once(case["on"], _fault(case, path.parent))
        if expect["retried"]:
            result: RunResult = session.run(_status(wire))
            assert result.attempts == 2 and session.stats.retries == 1
            assert wire.count("Create") == creates + 2 if case["on"] == "Create" else creates + 1
            retry_lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
            assert len(retry_lines) == 1 and expect["contains"] in retry_lines[0]
            status = Server(session).status("RTCMEDSRV")
            assert status.status is ServiceState.RUNNING
        else:
            with pytest.raises(OcspsError) as caught:
                session.run(_status(wire))
            exc = caught.value
            assert type(exc) is getattr(errors, expect["error"])
            assert expect["contains"] in exc.message
            assert_one_line_about_host(exc)
            assert (exc.hint is not None) == expect.get("hint", False)
            assert session.stats.retries == 0
            assert wire.count("Create") == creates + (1 if case["on"] == "Create" else 0), "not retried"
    finally:
        session.close()
    assert wire.armed() == 0, "the fault met the request it was armed for"
    assert wire.open_shells() == 0, "the shell was deleted even after the fault"


# ---------------------------------------------------------------------------------------- changes


def _stop_commands(wire: WireLab) -> int:
    return sum("ocsps:action=stop" in script for script in wire.executor.scripts())


CHANGE_FAULTS = [
    "http_503_on_command",
    "dropped_on_command",
    "reset_on_receive",
    "shell_not_found_on_receive",
]


@pytest.mark.parametrize("name", CHANGE_FAULTS)
def test_change_hit_after_sending_is_outcome_unknown_and_never_resent(wire: WireLab, name: str) -> None:
    path = DATA / "session" / "faults" / f"{name}.json"
    case = json.loads(path.read_text())
    outcomes: list[str] = []
    session = wire.session(audit=lambda rendered, result, outcome, seconds: outcomes.append(outcome))
    with Server(session) as server:
        commands = len(wire.commands())
        wire.fail_once(case["on"], _fault(case, path.parent))
        with pytest.raises(OutcomeUnknown) as caught:
            server.stop("RTCMEDSRV")
    exc = caught.value
    assert_one_line_about_host(exc)
    assert "stop" in exc.message and "may or may not have run" in exc.message
    assert exc.hint == "re-read the service state before trying again"
    assert len(wire.commands()) == commands + 1, "the stop was sent once and not repeated"
    assert session.stats.retries == 0
    assert outcomes and outcomes[0].startswith("unknown: ")
    assert wire.open_shells() == 0


def test_change_after_a_failed_open_is_sent_once(wire: WireLab) -> None:
    """Nothing of the change had been sent when the pool failed to open: opening again is safe."""
    path = DATA / "session" / "faults" / "http_503_on_create.json"
    wire.fail_once("Create", _fault(json.loads(path.read_text()), path.parent))
    session = wire.session()
    with Server(session) as server:
        stopped = server.stop("RTCMEDSRV")
    assert stopped.status is ServiceState.STOPPED
    assert session.stats.retries == 1
    assert _stop_commands(wire) == 1


def test_change_refused_by_the_server_did_not_run(wire: WireLab) -> None:
    """A WS-Management fault answering the Command itself means the command was never created."""
    path = DATA / "session" / "faults" / "quota_commands_per_shell_on_command.json"
    session = wire.session()
    with Server(session) as server:
        wire.fail_once("Command", _fault(json.loads(path.read_text()), path.parent))
        with pytest.raises(ConnectError) as caught:
            server.stop("RTCMEDSRV")
    assert not isinstance(caught.value, OutcomeUnknown)
    assert "quota" in caught.value.message
    assert _stop_commands(wire) == 0


# ---------------------------------------------------------------------------------------- teardown


def test_close_after_the_server_went_away_never_raises(wire: WireLab) -> None:
    session = wire.session()
    session.open()

    def gone(request: Request, prepared: requests.PreparedRequest) -> Reply:
        raise _transport_failure("refused", prepared.url or "")

    wire.overrides.append(gone)
    with pytest.raises(ConnectError) as caught:
        session.run(_status(wire))
    assert "connection refused" in caught.value.message
    session.close()  # the shell cannot be deleted; closing still returns quietly
    session.close()  # and closing twice is harmless
    assert not session.is_open


def test_broken_connection_shell_is_deleted_over_a_fresh_connection(wire: WireLab) -> None:
    session = wire.session()
    session.open()
    path = DATA / "session" / "faults" / "not_xml_200_on_receive.json"
    wire.fail_once("Receive", _fault(json.loads(path.read_text()), path.parent))
    with pytest.raises(ConnectError):
        session.run(_status(wire))
    assert not session.is_open, "a session that met garbage is not reused"
    assert wire.open_shells() == 0
    (delete,) = [e for e in wire.exchanges if e.action == "Delete"]
    assert delete.status == 200


# ---------------------------------------------------------------------------- a server that keeps breaking


def _faulting_signal() -> Override:
    """A WS-Management fault for a Signal the server did process (the command is released)."""
    case = json.loads((DATA / "session" / "faults" / "access_denied_on_create.json").read_text())
    return _fault(case, DATA / "session" / "faults")


def test_a_faulty_signal_after_the_output_does_not_cost_the_pool(wire: WireLab) -> None:
    """Ten reads against a server whose every Signal answers a fault: one pool, one handshake each."""
    wire.answer_after("Signal", _faulting_signal())
    with wire.session() as session:
        for _ in range(10):
            status = Server(session).status("RTCMEDSRV")
            assert status.status is ServiceState.RUNNING
        assert session.stats.pools_opened == 1
        # nine Signals: each read releases the one before it; the shell's Delete ends the tenth
        assert session.stats.transports_renewed == 9
        assert session.stats.retries == 0
    assert wire.count("Create") == 1
    assert wire.count("Command") == 10
    assert wire.count("Signal") == 9


def test_a_server_that_breaks_every_session_is_reopened_with_growing_pauses_and_one_warning(
    wire: WireLab, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three reads against a server that drops every Receive: each gives up; reopening slows down."""
    pauses: list[list[float]] = []
    monkeypatch.setattr("ocsps.remote.session.time.sleep", lambda seconds: pauses[-1].append(seconds))
    reset = json.loads((DATA / "session" / "faults" / "reset_on_receive.json").read_text())
    broken = _fault(reset, DATA / "session" / "faults")
    wire.persistent.append(
        lambda request, prepared: broken(request, prepared) if request.action == "Receive" else None
    )
    caplog.set_level(logging.WARNING, logger="ocsps.remote")
    session = wire.session(retry_backoff=0.1)
    for _ in range(3):
        pauses.append([])
        with pytest.raises(errors.RetriesExhausted) as caught:
            session.run(_status(wire))
        assert caught.value.attempts == MAX_READ_ATTEMPTS and caught.value.exit_code == 3
    session.close()
    assert wire.count("Create") == 3 * MAX_READ_ATTEMPTS, "every attempt on a fresh session"
    assert max(pauses[2]) > max(pauses[0]), "reopening a session the server keeps breaking slows down"
    assert max(pauses[2]) <= REOPEN_BACKOFF_MAX
    warnings = [r.getMessage() for r in caplog.records if "keeps breaking" in r.getMessage()]
    assert len(warnings) == 1
    assert wire.open_shells() == 0


def test_a_read_that_gives_up_says_what_goes_on_on_the_server() -> None:
    exc = errors.RetriesExhausted("status: the connection dropped (6 attempts)", host="med01.contoso.com")
    line = exc.still_running("the drain", "RTCMEDSRV")
    assert "the drain of RTCMEDSRV goes on on the server" in line
    assert "'ocsps status --host med01.contoso.com -s RTCMEDSRV'" in line
    assert isinstance(exc, ConnectError) and not isinstance(OutcomeUnknown("x"), ConnectError)
