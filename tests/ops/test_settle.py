"""A lost reply is settled from evidence: a state change is sent again only when a watch proves it did not
happen. Driven by a fake server that acknowledges late and a fake clock, so a 20 s window costs nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ocsps.errors import OperationFailed, OutcomeUnknown
from ocsps.operations import change
from ocsps.operations.change import DRAINING, STARTING, STOPPING, apply_change, change_service
from ocsps.results import ServiceState
from tests.ops.fake_server import FakeClock, FakeServer


@dataclass(frozen=True)
class Case:
    name: str
    action: str  # drain | stop | start
    lost: bool  # True: the server acted, the reply was lost; False: the request never arrived
    ack_delay: float
    event_at_request: int | None
    sent: int  # requests that reached the server in the end
    decided: tuple[str, ...]  # fragments of the decision note


CASES = [
    Case(
        "drain acknowledged 2 s late", "drain", True, 2.0, None, 1, ("re-read shows Paused", "not sent again")
    ),
    Case(
        "drain acknowledged 15 s late",
        "drain",
        True,
        15.0,
        None,
        1,
        ("re-read shows Paused", "not sent again"),
    ),
    Case(
        "drain whose event 25049 shows before Paused",
        "drain",
        True,
        60.0,
        25049,
        1,
        ("event 25049 logged at", "since the request", "not sent again"),
    ),
    Case(
        "drain request that never arrived",
        "drain",
        False,
        2.0,
        None,
        1,
        (
            "did not take effect",
            "re-read shows Running after",
            "over 20s",
            "no event 25049",
            "sent once more",
        ),
    ),
    Case(
        "stop acknowledged 3 s late", "stop", True, 3.0, None, 1, ("re-read shows Stopped", "not sent again")
    ),
    Case(
        "stop that never arrived",
        "stop",
        False,
        3.0,
        None,
        1,
        ("re-read shows Running after", "sent once more"),
    ),
    Case(
        "start acknowledged 3 s late",
        "start",
        True,
        3.0,
        None,
        1,
        ("re-read shows Running", "not sent again"),
    ),
]

EXPECTS = {"drain": DRAINING, "stop": STOPPING, "start": STARTING}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_lost_reply_is_settled_from_evidence(case: Case) -> None:
    clock = FakeClock()
    server = FakeServer(
        clock,
        ack_delay=case.ack_delay,
        state=ServiceState.STOPPED if case.action == "start" else ServiceState.RUNNING,
        lose={case.action: case.lost},
        log_event_at_request={case.action: case.event_at_request} if case.event_at_request else {},
    )
    send = {
        "drain": lambda: server.begin_drain("RTCMEDSRV"),
        "stop": lambda: server.stop("RTCMEDSRV"),
        "start": lambda: server.start("RTCMEDSRV"),
    }[case.action]
    svc = server.resolve("RTCMEDSRV")
    heard: list[str] = []
    evidence = server.event_ids(svc, "drain-started") if case.action == "drain" else ()
    status, note = apply_change(
        server,
        svc,
        send,
        EXPECTS[case.action],
        what=case.action,
        on_decision=heard.append,
        evidence=evidence,
        clock=clock,
        sleep=clock.sleep,
    )
    assert len(server.sent) == case.sent, f"{case.action} reached the server {len(server.sent)} times"
    assert heard == [note]
    for fragment in case.decided:
        assert fragment in note, (fragment, note)
    if "not sent again" in note and case.event_at_request is None:
        assert status.status in EXPECTS[case.action]
    assert clock.now <= change.SETTLE_SECONDS, "the watch is bounded"


def test_the_settle_window_is_watched_before_sending_again() -> None:
    """The request never arrived: every re-read of the window is made before the single resend."""
    clock = FakeClock()
    server = FakeServer(clock, lose={"stop": False})
    apply_change(
        server,
        "RTCMEDSRV",
        lambda: server.stop("RTCMEDSRV"),
        STOPPING,
        what="stop",
        clock=clock,
        sleep=clock.sleep,
    )
    assert server.sent == ["stop"]
    assert server.reads >= change.SETTLE_SECONDS / change.SETTLE_INTERVAL
    assert clock.now >= change.SETTLE_SECONDS


def test_a_restart_with_a_lost_reply_stays_unknown() -> None:
    clock = FakeClock()
    server = FakeServer(clock, lose={"restart": True})
    with pytest.raises(OutcomeUnknown, match="not sent again"):
        apply_change(server, "RTCMEDSRV", lambda: server.restart("RTCMEDSRV"), None, what="restart")
    assert server.sent == ["restart"]


# ----------------------------------------------------------------------------- read before, then change
def test_stop_of_a_stopped_service_sends_nothing() -> None:
    server = FakeServer(FakeClock(), state=ServiceState.STOPPED)
    done = change_service(server, "RTCMEDSRV", "stop")
    assert server.sent == [] and not done.changed and done.ok
    assert done.note == "already stopped: nothing to do"


def test_stop_with_active_sessions_is_refused_without_confirmation() -> None:
    server = FakeServer(FakeClock(), activity="Inbound Calls=6,Outbound Calls=4")
    with pytest.raises(OperationFailed, match=r"10 active sessions.*drain.*--yes"):
        change_service(server, "RTCMEDSRV", "stop")
    with pytest.raises(OperationFailed):
        change_service(server, "RTCMEDSRV", "stop", confirm=lambda _: False)
    assert server.sent == []
    asked: list[str] = []
    done = change_service(server, "RTCMEDSRV", "stop", confirm=lambda s: asked.append(s.name) or True)
    assert asked == ["RTCMEDSRV"] and server.sent == ["stop"] and done.changed


def test_forced_stop_does_not_ask() -> None:
    server = FakeServer(FakeClock(), activity="Inbound Calls=6")
    change_service(server, "RTCMEDSRV", "stop", force=True)
    assert server.sent == ["stop"]
