"""The lab's simulated servers, reached with the unmodified pypsrp client and with ocsps's own runner.

What a real server would refuse, the lab refuses the same way: PowerShell 3 syntax on a PowerShell 2.0
product, unknown cmdlets, parameters the product's cmdlet lacks, a wrong password.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from ocsps.lab.estate import PAUSED, STOPPED
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology
from ocsps.results import ServiceState, parse_service_status
from tests.conftest import lab_server


def _run(lab: Lab, fqdn: str, build: Any, *, auth: str | None = None, **kwargs: Any) -> PowerShell:
    client = dict(lab.listener.client_kwargs(fqdn))
    client.update(kwargs)
    with RunspacePool(WSMan(**client)) as pool:
        ps = PowerShell(pool)
        build(ps)
        ps.invoke()
        return ps


def test_unmodified_pypsrp_reads_ntservice_objects_with_ntlm_encryption(lab: Lab) -> None:
    ps = _run(
        lab,
        "med01.contoso.com",
        lambda ps: ps.add_cmdlet("Get-CsWindowsService").add_parameter("Name", "RTCMEDSRV"),
    )
    assert not ps.had_errors
    (obj,) = ps.output
    assert "Microsoft.Rtc.Management.Deployment.Core.NTService" in obj.types
    status = parse_service_status(obj)
    assert (status.name, status.status) == ("RTCMEDSRV", ServiceState.RUNNING)
    assert status.activity is not None and status.activity.get("Inbound Calls") == 6
    assert lab.requests("med01.contoso.com")["encrypted"] > 0


def test_unmodified_pypsrp_with_basic_auth() -> None:
    with Lab(auth="basic") as lab:
        ps = _run(lab, "med10.contoso.com", lambda ps: ps.add_script("Get-CsWindowsService -Name REPLICA"))
        assert [parse_service_status(o).name for o in ps.output] == ["REPLICA"]


def test_wrong_password_is_refused(lab: Lab) -> None:
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError

    with pytest.raises((AuthenticationError, WinRMTransportError)):
        _run(lab, "med01.contoso.com", lambda ps: ps.add_script("Get-CsWindowsService"), password="wrong")


def _error(ps: PowerShell) -> tuple[str, str]:
    (record,) = ps.streams.error
    return str(record.fq_error), str(record.exception.adapted_properties["Message"])


def test_powershell_3_construct_on_lync2010_is_a_parse_error(lab: Lab) -> None:
    script = "$o = [pscustomobject]@{ Name = 'x' }\n$o"
    ps = _run(lab, "med10.contoso.com", lambda ps: ps.add_script(script))
    assert ps.had_errors
    fqid, message = _error(ps)
    assert fqid == "ParseException" and "PowerShell 2.0" in message
    newer = _run(lab, "med01.contoso.com", lambda ps: ps.add_script(script))  # sfb2015: PowerShell 4.0
    assert "ParseException" not in [str(e.fq_error) for e in newer.streams.error]


def test_unknown_cmdlet_and_missing_parameter(lab: Lab) -> None:
    ps = _run(lab, "med01.contoso.com", lambda ps: ps.add_script("Get-CsNonsense -Name x"))
    assert _error(ps)[0] == "CommandNotFoundException"
    ps = _run(
        lab,
        "med10.contoso.com",
        lambda ps: ps.add_script("Stop-CsWindowsService -Name RTCMEDSRV -Graceful -LeaveClsAgentRunning"),
    )
    fqid, message = _error(ps)
    assert fqid.startswith("NamedParameterNotFound") and "LeaveClsAgentRunning" in message


def test_graceful_stop_pauses_then_stops_with_mediation_events() -> None:
    now = [1_000_000.0]
    topology = parse_topology(
        '[[servers]]\nfqdn = "med01.contoso.com"\nproduct = "lync2010"\nroles = ["MediationServer"]\n'
        'drain_seconds = 100\n[servers.activity.RTCMEDSRV]\n"Inbound Calls" = 10\n',
        source="test",
        clock=lambda: now[0],
    )
    server = topology.server("med01.contoso.com")
    server.stop("RTCMEDSRV", graceful=True)
    assert server.services["RTCMEDSRV"].status == PAUSED
    now[0] += 50
    server.tick()
    assert server.services["RTCMEDSRV"].activity == {"Inbound Calls": 5}
    now[0] += 50
    server.tick()
    assert server.services["RTCMEDSRV"].status == STOPPED
    since = datetime.fromtimestamp(now[0], UTC) - timedelta(hours=1)
    assert [e.id for e in server.query_events("Lync Server", [25049, 25050, 25003], since)] == [
        25049,
        25050,
        25003,
    ]
    assert server.query_events("Lync Server", [25003], datetime.fromtimestamp(now[0] + 1, UTC)) == []


def test_events_by_id_and_time_window_through_the_runner(lab: Lab) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    with lab_server(lab, "med01.contoso.com") as server:
        server.stop("RTCMEDSRV", force=True)
        events = server.events([25003, 25002], start)
        assert [e.id for e in events] == [25003]
        assert server.events([25003], datetime.now(UTC) + timedelta(minutes=5)) == []


def test_lcscmd_refuses_out_of_order_and_logs_it(lab: Lab) -> None:
    with lab_server(lab, "ocs01.contoso.com") as server:
        front_end = server.catalog.roles["front-end"]
        args = [t.replace("{fqdn}", "ocs01.contoso.com") for t in front_end.lcscmd]
        outcome = server.deactivate(args, r"C:\Windows\Temp\fe.log")
        assert not outcome.succeeded
        assert outcome.exit_code == 1
        assert any("Deactivate first" in t.detail for t in outcome.failed_tasks)
        av = server.catalog.roles["av-conferencing"]
        ok = server.deactivate([t.replace("{fqdn}", "ocs01.contoso.com") for t in av.lcscmd], r"C:\t\av.log")
        assert ok.succeeded and all(t.result == "Success" for t in ok.tasks)


def test_msmq_and_wmi_reads(lab: Lab) -> None:
    with lab_server(lab, "ocs01.contoso.com") as server:
        queue = server.queue_privacy(r".\private$\lcslog")
        assert queue.msmq_installed and queue.exists and queue.privacy_level is not None
        assert queue.privacy_level.value == "Optional"
        (setting,) = server.wmi_setting("MSFT_SIPRoutingSetting", ["DefaultPort"])
        assert (setting.property, setting.value) == ("DefaultPort", 5061)
