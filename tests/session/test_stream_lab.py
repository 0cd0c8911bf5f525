"""``ServerSession.stream``: output as it arrives, and every way a streamed call can be cut short.

The lab allows one unterminated command per shell here, so each case also proves the pipeline was stopped
and released: the next call on the same session would otherwise meet the WinRM quota fault.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ocsps.errors import TimeoutExceeded
from ocsps.lab.runtime import Lab
from ocsps.remote.server import Server
from ocsps.remote.session import StreamStopped
from tests.reliability.labkit import MED, quick_topology, server_for


@pytest.fixture
def server() -> Iterator[Server]:
    with Lab(quick_topology(), max_commands_per_shell=1) as lab:
        lab.server(MED).find("RTCMEDSRV").stuck_drain = True
        lab.server(MED).stop("RTCMEDSRV", graceful=True)  # drains for ever: a watch runs to its deadline
        with server_for(lab, MED, timeout=20) as opened:
            yield opened


class Boom(Exception):
    pass


CASES: dict[str, type[BaseException]] = {
    "deadline": TimeoutExceeded,
    "cancel": StreamStopped,
    "callback raises": Boom,
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_streamed_call_cut_short_stops_and_releases_its_pipeline(server: Server, case: str) -> None:
    rendered = server.render("drain-follow", "RTCMEDSRV", PollMilliseconds=50, DeadlineMilliseconds=60_000)
    arrived: list[Any] = []
    cancel = threading.Event()

    def on_output(obj: Any) -> None:
        arrived.append(obj)
        if len(arrived) == 2 and case == "callback raises":
            raise Boom
        if len(arrived) == 2 and case == "cancel":
            cancel.set()  # looked at after this Receive: the pipeline is stopped on the server

    with pytest.raises(CASES[case]):
        server.session.stream(rendered, on_output, timeout=0.8 if case == "deadline" else 20, cancel=cancel)
    assert len(arrived) >= 2, "objects arrived before the call ended"
    assert server.status("RTCMEDSRV").status.value == "Paused", "the shell takes the next command"
    assert server.session.stats.pools_opened == 1


def test_a_streamed_call_that_ends_by_itself_returns_everything(server: Server) -> None:
    rendered = server.render("drain-follow", "RTCMEDSRV", PollMilliseconds=50, DeadlineMilliseconds=300)
    arrived: list[Any] = []
    result = server.session.stream(rendered, arrived.append, timeout=20)
    assert len(arrived) >= 2 and list(result.output) == arrived
    assert server.status("RTCMEDSRV").status.value == "Paused"


def test_a_callback_failing_on_the_last_object_keeps_the_session(server: Server) -> None:
    """The pipeline had already ended: nothing to stop, and the pool stays usable."""
    rendered = server.render("drain-follow", "RTCMEDSRV", PollMilliseconds=50, DeadlineMilliseconds=1)

    def refuse(obj: Any) -> None:
        raise Boom

    with pytest.raises(Boom):
        server.session.stream(rendered, refuse, timeout=20)
    assert server.status("RTCMEDSRV").status.value == "Paused"
    assert server.session.stats.pools_opened == 1, "the session was not thrown away"


def test_ctrl_c_in_the_middle_of_a_receive_stops_the_pipeline(server: Server) -> None:
    """Ctrl-C lands while a Receive is on the wire: the pipeline is stopped over a new connection and the
    interrupt goes on; the shell then takes the next command."""
    rendered = server.render("drain-follow", "RTCMEDSRV", PollMilliseconds=50, DeadlineMilliseconds=60_000)
    arrived: list[Any] = []

    def on_output(obj: Any) -> None:
        arrived.append(obj)
        if len(arrived) == 2:
            transport = server.session._wsman.transport
            send = transport.send

            def interrupted(*args: Any, **kwargs: Any) -> Any:
                transport.send = send
                raise KeyboardInterrupt

            transport.send = interrupted

    with pytest.raises(KeyboardInterrupt):
        server.session.stream(rendered, on_output, timeout=20)
    assert server.session.stats.transports_renewed == 1, "the stop went over a new connection"
    assert server.status("RTCMEDSRV").status.value == "Paused", "the shell takes the next command"
    assert server.session.stats.pools_opened == 1
