"""Faults against the real lab over loopback: real sockets, NTLM with message encryption, real TLS.

The lab's fault knobs break one request at a time and its counters prove what the client sent, so the
retry and never-resend rules are checked on the wire, not inferred from timing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from ocsps.errors import AuthenticationError, ConnectError, OcspsError, OutcomeUnknown
from ocsps.jsonout import to_builtins
from ocsps.lab.engine import LabEngine
from ocsps.lab.faults import DROPPED, HTTP_ERRORS
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import load_topology
from ocsps.lab.wsman import HostSpec, LabServer
from ocsps.operations.drain import DrainReportDocument
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from ocsps.results import ServiceState
from tests.conftest import lab_server

pytestmark = pytest.mark.timeout(60)

MED = "med01.contoso.com"


def assert_one_line_about_host(exc: OcspsError, host: str = MED) -> None:
    assert exc.host == host and exc.message.startswith(f"{host}: ")
    assert "\n" not in str(exc) and "\n" not in exc.message
    assert exc.__cause__ is None, "no requests/pypsrp traceback behind it"
    assert exc.__context__ is None or exc.__suppress_context__


def _quick(lab: Lab, **settings: object) -> Server:
    server = lab_server(lab, MED, **settings)
    server.session.retry_backoff = 0.01
    return server


def _free_port() -> int:
    """A loopback port nobody listens on: bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------------------------------- reaching the host


def test_refused_connection(lab: Lab) -> None:
    server = _quick(lab, port=_free_port())
    with pytest.raises(ConnectError) as caught:
        server.services()
    exc = caught.value
    assert type(exc) is ConnectError and "connection refused" in exc.message and exc.hint
    assert_one_line_about_host(exc)
    assert server.session.stats.retries == 0, "a refused port is not a transient fault"


def test_wrong_password_over_ntlm(lab: Lab) -> None:
    server = _quick(lab, password="not-the-password")
    with pytest.raises(AuthenticationError) as caught:
        server.open()
    assert "refused the credentials" in caught.value.message
    assert caught.value.exit_code == 3
    assert_one_line_about_host(caught.value)
    assert lab.listener.open_shells(MED) == 0


@pytest.fixture
def tls_lab() -> Iterator[LabServer]:
    """The lab's listener over https with its throw-away self-signed certificate."""
    topology = load_topology()
    product = topology.server(MED).product
    listener = LabServer(
        [HostSpec(MED, protocol_version=product.psrp_protocol, ps_version=product.powershell)],
        executor=LabEngine(topology),
        credentials=(topology.username, "Tls-Passw0rd"),
        auth="ntlm",
        https=True,
    )
    with listener:
        yield listener


def _tls_session(listener: LabServer, **settings: object) -> ServerSession:
    from ocsps.remote.settings import ConnectionSettings

    values: dict[str, object] = {
        "host": MED,
        "connect_address": "127.0.0.1",
        "port": listener.port,
        "ssl": True,
        "path": listener.path(MED),
        "auth": "ntlm",
        "username": load_topology().username,
        "password": "Tls-Passw0rd",
        "no_proxy": True,
        **settings,
    }
    topology = load_topology()
    return ServerSession(ConnectionSettings(**values), topology.server(MED).product)  # type: ignore[arg-type]


def test_tls_certificate_not_trusted(tls_lab: LabServer) -> None:
    session = _tls_session(tls_lab)
    with pytest.raises(ConnectError) as caught:
        session.open()
    exc = caught.value
    assert "TLS failed: the server certificate could not be verified" in exc.message
    assert "self-signed" in exc.message
    assert exc.hint and "--ca-bundle" in exc.hint
    assert_one_line_about_host(exc)


def test_tls_with_the_issuing_ca_works(tls_lab: LabServer) -> None:
    """The failure above is about trust, not a broken listener: the same server with its CA answers."""
    assert tls_lab.cert_path is not None
    with Server(_tls_session(tls_lab, cert_validation=tls_lab.cert_path)) as server:
        assert server.status("RTCMEDSRV").name == "RTCMEDSRV"


def test_https_spoken_to_an_http_listener(lab: Lab) -> None:
    server = _quick(lab, ssl=True, port=lab.port, encryption="auto")
    with pytest.raises(ConnectError) as caught:
        server.open()
    assert "TLS handshake failed" in caught.value.message
    assert_one_line_about_host(caught.value)


# ---------------------------------------------------------------------------------------- retry rules


def test_dropped_receive_on_a_read_is_retried_within_the_deadline(lab: Lab) -> None:
    with _quick(lab) as server:
        lab.faults(MED).drop_next("Receive")
        status = server.status("RTCMEDSRV", timeout=30)
        assert lab.listener.open_shells(MED) == 1, "the broken pool's shell was deleted afresh"
        stats = server.session.stats
    assert status.status is ServiceState.RUNNING
    assert stats.retries == 1 and stats.pools_opened == 2
    assert lab.requests(MED)[DROPPED] == 1
    assert lab.listener.open_shells(MED) == 0


def test_503_on_a_read_command_is_retried(lab: Lab) -> None:
    with _quick(lab) as server:
        lab.faults(MED).fail_next("Command", 503)
        services = server.services(timeout=30)
        stats = server.session.stats
    assert services and stats.retries == 1
    assert lab.requests(MED)[HTTP_ERRORS] == 1
    assert lab.listener.open_shells(MED) == 0


def test_dropped_receive_on_a_stop_is_outcome_unknown_and_not_resent(lab: Lab) -> None:
    with _quick(lab) as server:
        before = lab.requests(MED).get("Command", 0)
        lab.faults(MED).drop_next("Receive")
        with pytest.raises(OutcomeUnknown) as caught:
            server.stop("RTCMEDSRV", timeout=30)
        sent = lab.requests(MED)["Command"] - before
    assert sent == 1, "the stop went out once and was not repeated"
    assert server.session.stats.retries == 0
    assert_one_line_about_host(caught.value)
    assert lab.server(MED).find("RTCMEDSRV").status == "Stopped", "it did run: hence 'unknown', not 'failed'"


def test_503_on_a_stop_command_is_outcome_unknown_and_not_resent(lab: Lab) -> None:
    with _quick(lab) as server:
        before = lab.requests(MED).get("Command", 0)
        lab.faults(MED).fail_next("Command", 503)
        with pytest.raises(OutcomeUnknown) as caught:
            server.stop("RTCMEDSRV", timeout=30)
        sent = lab.requests(MED)["Command"] - before
    assert sent == 1
    assert "HTTP 503" in caught.value.message
    assert lab.server(MED).find("RTCMEDSRV").status == "Running"


def test_hung_command_hits_the_deadline_and_the_session_goes_on(lab: Lab) -> None:
    from ocsps.errors import TimeoutExceeded

    with _quick(lab) as server:
        lab.faults(MED).set_stuck(True)
        with pytest.raises(TimeoutExceeded) as caught:
            server.status("RTCMEDSRV", timeout=1)
        lab.faults(MED).set_stuck(False)
        assert server.status("RTCMEDSRV").name == "RTCMEDSRV"
        assert server.session.stats.pools_opened == 1
    assert_one_line_about_host(caught.value)
    assert caught.value.message == f"{MED}: status did not finish within 1s (stopped)"
    assert lab.listener.open_shells(MED) == 0


# ---------------------------------------------------------------------------------------- teardown


def test_close_after_the_listener_is_gone_never_raises(lab: Lab) -> None:
    server = _quick(lab)
    server.open()
    lab.stop()
    with pytest.raises(ConnectError):
        server.services()
    server.close()
    server.close()
    assert not server.session.is_open


# ------------------------------------------------------------------------------ a watch that gives up


def test_a_drain_watch_that_gives_up_says_the_drain_goes_on(tmp_path: object) -> None:
    """The server stops answering once the drain is requested: the report says where things stand."""
    from ocsps.operations.drain import Phase, drain
    from tests.reliability.labkit import drop_everything, quick_topology, server_for

    with Lab(quick_topology()) as lab:
        lab.server(MED).drain_seconds = 60.0
        watch = lab.engine.handlers["drain-watch"]

        def then_silence(sim: Any, params: Any, out: Any) -> None:
            drop_everything(lab, MED)  # the server drains; no answer arrives any more, not even the first
            watch(sim, params, out)

        lab.engine.handlers["drain-watch"] = then_silence
        server = server_for(lab, MED, timeout=3)
        try:
            report = drain(server, "RTCMEDSRV", timeout=2, poll=0.2)
        finally:
            server.close()
    assert lab.server(MED).find("RTCMEDSRV").status == "Paused", "it is draining on the server"
    assert report.phase is Phase.FAILED and report.error_code == 3, to_builtins(
        DrainReportDocument.of(report)
    )
    assert "the drain of RTCMEDSRV may be going on on the server" in report.error
    assert f"'ocsps status --host {MED} -s RTCMEDSRV'" in report.error


def test_a_drain_watch_that_gives_up_after_confirming_the_drain(tmp_path: object) -> None:
    from ocsps.operations.drain import Phase, drain
    from tests.reliability.labkit import drop_everything, quick_topology, server_for

    with Lab(quick_topology()) as lab:
        lab.server(MED).drain_seconds = 60.0
        server = server_for(lab, MED, timeout=3)
        original = server.watch_drain
        statuses: list[str] = []

        def watch_drain(service: Any, **kwargs: Any) -> None:
            on_status = kwargs.pop("on_status")

            def seen(status: Any) -> None:
                statuses.append(status.status.value)
                if len(statuses) == 2:  # the first poll after the drain was confirmed; then nothing answers
                    drop_everything(lab, MED)
                on_status(status)

            original(service, on_status=seen, **kwargs)

        server.watch_drain = watch_drain  # type: ignore[method-assign]
        try:
            report = drain(server, "RTCMEDSRV", timeout=2, poll=0.2)
        finally:
            server.close()
    assert report.phase is Phase.FAILED and report.error_code == 1, to_builtins(
        DrainReportDocument.of(report)
    )
    assert "the drain of RTCMEDSRV goes on on the server" in report.error
    assert f"'ocsps status --host {MED} -s RTCMEDSRV'" in report.error
