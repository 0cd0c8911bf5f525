"""Every server call that can wait takes ``cancel`` and ``deadline``; a cancel before sending sends none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ocsps.catalog import load_catalog
from ocsps.errors import Cancelled, OcspsError, UsageError
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology
from ocsps.operations.change import change_service
from ocsps.operations.drain import Phase
from ocsps.powershell.script import RenderedScript
from ocsps.remote.server import Server
from tests.conftest import lab_server

pytestmark = pytest.mark.timeout(60)

MED = "med01.contoso.com"
STUCK = """
[[servers]]
fqdn = "med01.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
stuck_drain = ["RTCMEDSRV"]
[servers.activity.RTCMEDSRV]
"Inbound Calls" = 1
"""


@dataclass
class RecordingSession:
    """Stands in for ``ServerSession``: records each call's timeout, answers nothing."""

    host: str = MED
    product: object = field(default_factory=lambda: load_catalog().product("sfb2015"))
    timeouts: list[float | None] = field(default_factory=list)

    def run(self, rendered: RenderedScript, *, timeout: float | None = None) -> object:
        self.timeouts.append(timeout)
        raise OcspsError("not connected", host=self.host)


def recording_server() -> tuple[Server, RecordingSession]:
    session = RecordingSession()
    return Server(session), session  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timeout", "deadline", "sent"), [(60.0, 5.0, 5.0), (3.0, 5.0, 3.0), (None, 7.0, 7.0), (9.0, None, 9.0)]
)
def test_the_deadline_caps_the_call_timeout(
    timeout: float | None, deadline: float | None, sent: float
) -> None:
    server, session = recording_server()
    calls = [
        lambda: server.services(timeout=timeout, deadline=deadline),
        lambda: server.status("RTCMEDSRV", timeout=timeout, deadline=deadline),
        lambda: server.stop("RTCMEDSRV", timeout=timeout, deadline=deadline),
        lambda: server.start("RTCMEDSRV", timeout=timeout, deadline=deadline),
        lambda: server.restart("RTCMEDSRV", timeout=timeout, deadline=deadline),
    ]
    for call in calls:
        with pytest.raises(OcspsError, match="not connected"):
            call()
    assert session.timeouts == [sent] * len(calls)


@pytest.mark.parametrize("deadline", [0.0, -1.0, float("nan")])
def test_a_bad_deadline_is_refused_before_sending(deadline: float) -> None:
    server, session = recording_server()
    with pytest.raises(UsageError, match="deadline"):
        server.status("RTCMEDSRV", deadline=deadline)
    assert session.timeouts == []


def test_a_set_cancel_sends_nothing() -> None:
    server, session = recording_server()
    cancel = threading.Event()
    cancel.set()
    for call in (
        lambda: server.services(cancel=cancel),
        lambda: server.status("RTCMEDSRV", cancel=cancel),
        lambda: server.stop("RTCMEDSRV", cancel=cancel),
        lambda: server.start("RTCMEDSRV", cancel=cancel),
        lambda: server.restart("RTCMEDSRV", cancel=cancel),
        lambda: server.change("RTCMEDSRV", "start", cancel=cancel),
        lambda: server.begin_drain("RTCMEDSRV", cancel=cancel),
        lambda: server.queue_privacy(".\\private$\\lcslog", cancel=cancel),
        lambda: server.wmi_setting("MSFT_SIPRoutingSetting", cancel=cancel),
    ):
        with pytest.raises(Cancelled) as caught:
            call()
        assert caught.value.exit_code == 130 and "nothing was sent" in caught.value.message
    assert session.timeouts == []
    report = server.drain("RTCMEDSRV", timeout=10, poll=1, cancel=cancel)
    assert report.phase is Phase.INTERRUPTED and "nothing was sent" in report.note
    assert session.timeouts == []


def test_activity_false_gives_no_activity(lab: Lab) -> None:
    with lab_server(lab, MED) as server:
        assert all(s.activity is not None for s in server.services())
        quiet = server.services(activity=False)
        assert quiet and all(s.activity is None for s in quiet)


def test_a_cancel_between_read_and_change_sends_no_change(lab: Lab) -> None:
    cancel = threading.Event()

    def confirm(_: object) -> bool:
        cancel.set()  # the operator gives up while being asked
        return True

    with lab_server(lab, MED) as server:
        before = lab.requests(MED)
        with pytest.raises(Cancelled):
            change_service(server, "RTCMEDSRV", "stop", confirm=confirm, cancel=cancel)
        assert server.status("RTCMEDSRV").is_running
        assert lab.requests(MED)["Command"] - before.get("Command", 0) == 2  # the read, and the check above


@pytest.fixture
def stuck() -> Iterator[Lab]:
    with Lab(parse_topology(STUCK, source="stuck drain")) as running:
        yield running


def test_the_drain_deadline_ends_the_watch(stuck: Lab) -> None:
    with lab_server(stuck, MED) as server:
        report = server.drain("RTCMEDSRV", timeout=600, poll=0.05, then="force-stop", deadline=0.5)
    assert report.phase is Phase.DEADLINE and "deadline passed while Paused" in report.note
    assert report.then is None  # the drain's own timeout policy was not applied
    assert stuck.server(MED).services["RTCMEDSRV"].status == "Paused"
