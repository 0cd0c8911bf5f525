"""The public library API: ``ocsps.connect`` as documented, lazy exports, one exception hierarchy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ocsps
from ocsps.jsonout import to_builtins
from ocsps.lab.runtime import Lab
from ocsps.operations.drain import DrainReportDocument
from ocsps.remote.connector import lab_settings
from tests.session.wire import ADDRESS, HOST, PASSWORD, PORT, USER, WireLab

pytestmark = pytest.mark.timeout(60)

HEAVY = ("pypsrp", "requests", "psrpcore", "spnego", "urllib3", "cryptography")


def test_importing_the_library_does_not_load_the_remoting_stack() -> None:
    """Offline commands (--help, render, plan) must not pay for pypsrp and requests."""
    code = (
        "import sys, ocsps\n"
        "from ocsps import connect, Server, OcspsError, ConnectError, ServiceStatus, DrainReport, Then\n"
        "assert callable(connect)\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_every_export_resolves() -> None:
    for name in ocsps.__all__:
        assert getattr(ocsps, name) is not None, name
    assert set(ocsps.__all__) <= set(dir(ocsps))
    with pytest.raises(AttributeError):
        ocsps.no_such_name  # noqa: B018


def test_one_exception_hierarchy_with_exit_codes() -> None:
    kinds = {
        ocsps.UsageError: 2,
        ocsps.ConnectError: 3,
        ocsps.AuthenticationError: 3,
        ocsps.OutcomeUnknown: 3,
        ocsps.TimeoutExceeded: 4,
        ocsps.RemoteError: 1,
        ocsps.OperationFailed: 1,
        ocsps.ParseError: 1,
    }
    for kind, code in kinds.items():
        assert issubclass(kind, ocsps.OcspsError) and kind.exit_code == code, kind
    assert issubclass(ocsps.AuthenticationError, ocsps.ConnectError)


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"product": "sfb2042"}, "unknown product"),
        ({"colour": "blue"}, "unknown connection setting 'colour'"),
        ({"port": 70000}, "port must be 1-65535"),
        ({"auth": "basic", "ssl": False}, "cannot encrypt WinRM messages"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle: file not found"),
        ({"verify": False, "ca_bundle": "/nonexistent/ca.pem"}, "contradicts"),
        ({"timeout": 0}, "timeout must be a positive number"),
    ],
)
def test_connect_refuses_bad_settings_before_sending_anything(
    wire: WireLab, settings: dict[str, object], fragment: str
) -> None:
    values: dict[str, object] = {"product": "sfb2015", "username": USER, "password": PASSWORD}
    values.update(settings)
    with pytest.raises(ocsps.UsageError) as caught:
        ocsps.connect(HOST, **values)  # type: ignore[arg-type]
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message
    assert wire.exchanges == []


def test_connect_returns_a_server_and_sends_nothing_until_used(wire: WireLab) -> None:
    server = ocsps.connect(
        HOST,
        product="sfb2015",
        auth="basic",
        username=USER,
        password=PASSWORD,
        connect_address=ADDRESS,
        port=PORT,
        ssl=False,
        encryption="never",
        path=wire.server.path(HOST),
        no_proxy=True,
        timeout=30,
    )
    assert isinstance(server, ocsps.Server)
    assert server.session.default_timeout == 30
    assert server.session.settings.password is not None and str(server.session.settings.password) == "******"
    assert wire.exchanges == []
    with server:
        assert {s.name for s in server.services()} >= {"RTCMEDSRV"}
    assert wire.count("Create") == wire.count("Delete") == 1


def test_documented_example_against_the_lab(lab: Lab) -> None:
    """The README/docstring example, over NTLM with message encryption on a real socket."""
    settings = lab_settings(lab, HOST)
    progress: list[ocsps.Progress] = []
    with ocsps.connect(
        HOST,
        product="sfb2015",
        auth="ntlm",
        username=lab.username,
        password=lab.password,
        connect_address=settings.connect_address,
        port=settings.port,
        ssl=False,
        path=settings.path,
        no_proxy=True,
        on_progress=progress.append,
    ) as server:
        services = server.services()
        report = server.drain("RTCMEDSRV", timeout=30, poll=0.2)
    assert any(s.name == "RTCMEDSRV" and s.status is ocsps.ServiceState.RUNNING for s in services)
    assert isinstance(report, ocsps.DrainReport)
    assert report.ok and report.phase is ocsps.Phase.STOPPED, to_builtins(DrainReportDocument.of(report))
    assert lab.listener.open_shells(HOST) == 0


def test_drain_refuses_an_unknown_deadline_policy(wire: WireLab) -> None:
    with ocsps.Server(wire.session()) as server, pytest.raises(ocsps.UsageError) as caught:
        server.drain("RTCMEDSRV", timeout=10, poll=1, then="explode")
    assert "force-stop" in caught.value.message
    assert wire.count("Command") == 0, "nothing ran"


@pytest.mark.parametrize(("timeout", "poll"), [(0, 1), (10, float("nan"))])
def test_drain_refuses_a_nonsense_deadline(wire: WireLab, timeout: float, poll: float) -> None:
    with ocsps.Server(wire.session()) as server, pytest.raises(ocsps.UsageError):
        server.drain("RTCMEDSRV", timeout=timeout, poll=poll)
    assert wire.count("Command") == 0, "nothing ran"


def test_drain_without_waiting_reports_draining(wire: WireLab) -> None:
    with ocsps.Server(wire.session()) as server:
        report = server.drain("RTCMEDSRV", timeout=60, poll=0.1, then=ocsps.Then.LEAVE, wait=False)
    assert report.phase is ocsps.Phase.DRAINING
    assert report.last is not None and report.last.status is ocsps.ServiceState.PAUSED
    assert report.ok and not report.waited, "a drain requested and accepted is a success"


def test_drain_refuses_a_poll_longer_than_its_deadline(wire: WireLab) -> None:
    with ocsps.Server(wire.session()) as server, pytest.raises(ocsps.UsageError, match="longer than"):
        server.drain("RTCMEDSRV", timeout=60, poll=600)
    assert wire.count("Command") == 0, "nothing ran: the session opens without a pipeline of its own"


def _alias(lab: Lab, **settings: object) -> ocsps.Server:
    """A server reached under another name (an alias, NAT): the lab's med01 answers as med01."""
    reached = lab.connection(HOST)
    return ocsps.connect(
        "gateway.contoso.com",
        product="sfb2015",
        auth="ntlm",
        username=lab.username,
        password=lab.password,
        connect_address=reached["connect_address"],
        port=reached["port"],
        ssl=False,
        path=reached["path"],
        no_proxy=True,
        **settings,
    )


def test_an_answer_from_another_computer_is_refused_unless_declared(lab: Lab) -> None:
    with _alias(lab) as server, pytest.raises(ocsps.OperationFailed) as caught:
        server.services()
    assert f"the computer that answered is {HOST}, not gateway.contoso.com" in caught.value.message
    assert "expect_computer" in caught.value.message
    with _alias(lab, expect_computer=HOST) as server:
        assert all(s.computer == HOST for s in server.services())
