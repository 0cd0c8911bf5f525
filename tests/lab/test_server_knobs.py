"""Per-server knobs for behaviour a real server may show: late acknowledgement of a graceful stop, another
computer's name, an expanded topology, LCSCmd.exe elsewhere or missing, an answer about another service.

Each knob defaults to the plain behaviour; each is validated like the other topology keys.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ocsps.errors import UsageError
from ocsps.lab.engine import LabEngine
from ocsps.lab.estate import PAUSED, RUNNING, STOPPED, LabError
from ocsps.lab.topology import load_topology
from tests.conftest import DATA
from tests.lab.sim import Clock, Recorder, action, cmdlet, topology

MED = "med01.contoso.com"
FE = "fe01.contoso.com"
CATALOG_LCSCMD = r"C:\Program Files\Common Files\Microsoft Office Communications Server 2007\LCSCmd.exe"
R2_LCSCMD = r"C:\Program Files\Common Files\Microsoft Office Communications Server 2007 R2\LCSCmd.exe"


def _mediation(extra: str = "", clock: Clock | None = None) -> LabEngine:
    text = (
        f'[[servers]]\nfqdn = "{MED}"\nproduct = "lync2010"\nroles = ["MediationServer"]\n'
        f"drain_seconds = 10\n{extra}\n"
        '[servers.activity.RTCMEDSRV]\n"Inbound Calls" = 4\n'
    )
    return LabEngine(topology(text, clock))


def _events(engine: LabEngine, clock: Clock, since: float) -> list[tuple[int, datetime]]:
    found = action(
        engine,
        MED,
        "events",
        {
            "LogName": "Lync Server",
            "Id": [25049, 25050, 25003],
            "Since": datetime.fromtimestamp(since, UTC).isoformat(),
        },
    )
    return [(e["Id"], datetime.fromisoformat(e["TimeCreated"].replace("Z", "+00:00"))) for e in found]


# ---------------------------------------------------------------------------------------------- ack_delay
def test_a_graceful_stop_is_acknowledged_ack_delay_seconds_later() -> None:
    clock = Clock()
    engine = _mediation("ack_delay = 2", clock)
    asked = clock.now
    (answer,) = action(engine, MED, "drain", {"Name": "RTCMEDSRV", "NoWait": True})
    assert answer["Status"] == RUNNING  # the cmdlet returned; the service has not acted yet
    clock.advance(1.5)
    (view,) = action(engine, MED, "status", {"Name": "RTCMEDSRV"})
    assert view["Status"] == RUNNING and _events(engine, clock, asked) == []
    clock.advance(0.5)
    (view,) = action(engine, MED, "status", {"Name": "RTCMEDSRV"})
    assert view["Status"] == PAUSED
    acknowledged = datetime.fromtimestamp(asked + 2, UTC)
    assert _events(engine, clock, asked) == [(25049, acknowledged)]
    clock.advance(10)
    assert [event_id for event_id, _ in _events(engine, clock, asked)] == [25049, 25050, 25003]
    assert engine.topology.server(MED).find("RTCMEDSRV").status == STOPPED


def test_a_stop_sent_again_before_acknowledgement_is_counted_and_changes_nothing() -> None:
    clock = Clock()
    engine = _mediation("ack_delay = 2", clock)
    asked = clock.now
    action(engine, MED, "drain", {"Name": "RTCMEDSRV", "NoWait": True})
    clock.advance(1)
    action(engine, MED, "drain", {"Name": "RTCMEDSRV", "NoWait": True})
    svc = engine.topology.server(MED).find("RTCMEDSRV")
    assert svc.graceful_requests == 2
    clock.advance(1)  # acknowledged at the first request's time plus the delay, not pushed back
    svc_view = action(engine, MED, "status", {"Name": "RTCMEDSRV"})
    assert svc_view[0]["Status"] == PAUSED
    assert _events(engine, clock, asked) == [(25049, datetime.fromtimestamp(asked + 2, UTC))]


def test_a_waiting_drain_sees_the_late_acknowledgement_and_the_drain_through() -> None:
    clock = Clock()
    engine = _mediation("ack_delay = 3", clock)
    (answer,) = action(engine, MED, "drain", {"Name": "RTCMEDSRV"}, Recorder(lambda: clock.advance(1)))
    assert answer["Status"] == STOPPED
    assert clock.now - 1_000_000.0 == pytest.approx(3 + 10, abs=1)


def test_without_ack_delay_a_graceful_stop_pauses_at_once() -> None:
    clock = Clock()
    engine = _mediation("", clock)
    (answer,) = action(engine, MED, "drain", {"Name": "RTCMEDSRV", "NoWait": True})
    assert answer["Status"] == PAUSED
    assert [e for e, _ in _events(engine, clock, clock.now)] == [25049]


# ---------------------------------------------------------------------------------------------- computer_name
def _front_end(extra: str = "") -> LabEngine:
    text = f'[[servers]]\nfqdn = "{FE}"\nproduct = "sfb2015"\nroles = ["FrontEnd"]\n{extra}\n'
    return LabEngine(topology(text))


@pytest.mark.parametrize(
    ("extra", "reported"), [("", FE), ('computer_name = "fe02.contoso.com"', "fe02.contoso.com")]
)
def test_the_computer_reports_the_name_computer_name_gives(extra: str, reported: str) -> None:
    engine = _front_end(extra)
    names = {view["ComputerName"] for view in action(engine, FE, "status", {})}
    (ready,) = action(engine, FE, "check-drain-ready", {"Name": "RTCSRV"})
    (wmi_less,) = action(engine, FE, "check-deactivation-ready", {"LcsCmdPath": CATALOG_LCSCMD})
    assert names == {reported} and ready["ComputerName"] == wmi_less["ComputerName"] == reported
    assert engine.topology.server(FE).fqdn == FE  # it is still reached under its own name


# ---------------------------------------------------------------------------------------------- expanded
def test_an_expanded_r2_front_end_has_no_web_conferencing_service() -> None:
    engine = LabEngine(load_topology(DATA / "lab_topologies" / "ocs-r2-expanded.toml"))
    pattern = "Office Communications Server Web Conferencing"
    with pytest.raises(LabError) as missing:
        action(engine, "ocsfe01.contoso.com", "status", {"Operation": "Stop", "DisplayPattern": pattern})
    assert (
        missing.value.error_id
        == "NoServiceFoundForGivenDisplayName,Microsoft.PowerShell.Commands.GetServiceCommand"
    )
    assert missing.value.category == "ObjectNotFound"
    front_end = action(
        engine, "ocsfe01.contoso.com", "status", {"DisplayPattern": "Office Communications Server Front*End"}
    )
    assert [v["Status"] for v in front_end] == [RUNNING]  # the failed lookup stopped nothing
    (web,) = action(engine, "ocsweb01.contoso.com", "status", {"DisplayPattern": pattern})
    assert web["Status"] == RUNNING


# ---------------------------------------------------------------------------------------------- LCSCmd.exe
@pytest.mark.parametrize(
    ("server", "at_2007_folder", "at_r2_folder"),
    [
        ("ocs-lcscmd2007.contoso.com", True, False),
        ("ocs-lcscmdr2.contoso.com", False, True),
        ("ocs-nolcscmd.contoso.com", False, False),
    ],
)
def test_test_path_and_the_precheck_answer_from_lcscmd_path(
    server: str, at_2007_folder: bool, at_r2_folder: bool
) -> None:
    engine = LabEngine(load_topology(DATA / "lab_topologies" / "deactivation-lcscmd.toml"))
    assert cmdlet(engine, server, "Test-Path", LiteralPath=CATALOG_LCSCMD) == [at_2007_folder]
    assert cmdlet(engine, server, "Test-Path", LiteralPath=R2_LCSCMD.upper()) == [at_r2_folder]
    (ready,) = action(engine, server, "check-deactivation-ready", {"LcsCmdPath": R2_LCSCMD})
    assert ready["LcsCmdPresent"] is at_r2_folder


def test_deactivation_runs_only_where_lcscmd_is() -> None:
    engine = LabEngine(load_topology(DATA / "lab_topologies" / "deactivation-lcscmd.toml"))
    params = {
        "Arguments": ["/Mediation:ocs-lcscmdr2.contoso.com", "/Action:Deactivate"],
        "LogPath": r"C:\Windows\Temp\run1.log",
    }
    with pytest.raises(LabError, match=r"LCSCmd\.exe was not found"):
        action(engine, "ocs-lcscmdr2.contoso.com", "deactivate", {**params, "LcsCmdPath": CATALOG_LCSCMD})
    assert action(engine, "ocs-lcscmdr2.contoso.com", "deactivate", {**params, "LcsCmdPath": R2_LCSCMD})
    with pytest.raises(LabError, match=r"LCSCmd\.exe was not found"):
        action(engine, "ocs-nolcscmd.contoso.com", "deactivate", {**params, "LcsCmdPath": CATALOG_LCSCMD})
    # the log it wrote is a file Test-Path finds
    assert cmdlet(engine, "ocs-lcscmdr2.contoso.com", "Test-Path", LiteralPath=params["LogPath"]) == [True]


# ---------------------------------------------------------------------------------------------- answer_as
def test_answer_as_makes_the_server_answer_about_another_service() -> None:
    engine = _front_end('answer_as = { RTCMEDSRV = "RTCSRV" }\nstopped = ["RTCSRV"]')
    (view,) = action(engine, FE, "status", {"Name": "RTCMEDSRV"})
    assert (view["Name"], view["Status"]) == ("RTCSRV", STOPPED)
    (plain,) = action(_front_end(), FE, "status", {"Name": "RTCMEDSRV"})
    assert plain["Name"] == "RTCMEDSRV"


# ---------------------------------------------------------------------------------------------- validation
SERVER = f'[[servers]]\nfqdn = "{FE}"\nproduct = "sfb2015"\nroles = ["FrontEnd", "Edge"]\n'


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("ack_delay = -1", "ack_delay: expected float >= 0.0, got -1"),
        ('ack_delay = "2s"', "ack_delay: expected float, got str '2s'"),
        ('computer_name = "not a host!"', "computer_name"),
        ('answer_as = { RTCMEDSRV = "NOPE" }', "answer_as.RTCMEDSRV: 'NOPE' is not a service of this server"),
        ("answer_as = { RTCMEDSRV = 3 }", "answer_as.RTCMEDSRV: expected str, got int 3"),
        ('answer_as = { NOPE = "RTCSRV" }', "no-error"),
        ('dependencies = { NOPE = ["RTCSRV"] }', "'NOPE' is not a service of this server"),
        ('dependencies = { RTCMRAUTH = ["NOPE"] }', "'NOPE' is not a service of this server"),
        (
            'dependencies = { RTCMRAUTH = ["RTCMEDIARELAY"], RTCMEDIARELAY = ["RTCMRAUTH"] }',
            "dependencies: a cycle",
        ),
        ('disabled = ["NOPE"]', "disabled: 'NOPE' is not a service of this server"),
        ('lcscmd_path = "LCSCmd.exe"', "lcscmd_path: must be a full path to LCSCmd.exe"),
        ('lcscmd_path = "C:\\\\Tools\\\\other.exe"', "lcscmd_path: must be a full path to LCSCmd.exe"),
        ("ack_dealy = 2", "unknown key 'ack_dealy'"),
    ],
)
def test_knobs_are_validated(snippet: str, message: str) -> None:
    if message == "no-error":  # a name nobody asks about is harmless: the server only answers questions
        topology(SERVER + snippet + "\n")
        return
    with pytest.raises(UsageError) as refused:
        topology(SERVER + snippet + "\n")
    assert message in str(refused.value)


def test_knob_defaults_are_the_plain_behaviour() -> None:
    sim = topology(SERVER).server(FE)
    assert (sim.ack_delay, sim.reported_name, sim.answer_as) == (0.0, FE, {})
    assert sim.lcscmd_at(CATALOG_LCSCMD) and not sim.lcscmd_at(R2_LCSCMD)
    assert {s.startup for s in sim.services.values()} == {"Automatic"}
    assert datetime.now(UTC) - sim.now() < timedelta(minutes=1)  # the wall clock unless one is injected
