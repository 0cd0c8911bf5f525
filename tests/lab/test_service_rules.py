"""The lab controls services as Windows does: one case per file in tests/data/lab_service_rules/.

Stop-Service refuses a service whose dependents run unless forced; forced, it stops them first. Starting a
service starts its prerequisites, never its dependents. Stop-CsWindowsService stops dependents too. A
Disabled service does not start. The dependencies come from the lab's own facts (or a topology's
``dependencies``), so a product that stops services in the wrong order is refused here as on a server.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ocsps.lab.engine import LabEngine
from ocsps.lab.estate import LabError
from ocsps.lab.wsman import PipelineFailure
from tests.conftest import DATA
from tests.lab.sim import action, cmdlet, topology

CASES = sorted((DATA / "lab_service_rules").glob("*.toml"))


def _step(engine: LabEngine, server: str, step: dict[str, Any]) -> None:
    params = dict(step.get("params", {}))
    if "cmdlet" in step:
        cmdlet(engine, server, step["cmdlet"], **params)
    else:
        action(engine, server, step["action"], params)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_service_control_case(path: Path) -> None:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    case = raw["case"]
    engine = LabEngine(topology(raw["topology"]))
    server = case["server"]
    *before, last = case["steps"]
    for step in before:
        _step(engine, server, step)
    if "error" in case:
        with pytest.raises((PipelineFailure, LabError)) as refused:
            _step(engine, server, last)
        assert refused.value.error_id == case["error"]
        if "category" in case:
            assert refused.value.category == case["category"]
        if "message" in case:
            assert refused.value.message == case["message"]
    else:
        _step(engine, server, last)
    sim = engine.topology.server(server)
    assert {name: sim.find(name).status for name in case["status"]} == case["status"]


def test_the_refusal_reaches_an_unmodified_client_as_windows_writes_it() -> None:
    """Over real WSMan/PSRP: the FullyQualifiedErrorId and message arrive as Stop-Service writes them."""
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    from ocsps.lab.runtime import Lab

    text = '[[servers]]\nfqdn = "edge01.contoso.com"\nproduct = "ocs2007r2"\nroles = ["Edge"]\n'
    with (
        Lab(topology(text)) as lab,
        RunspacePool(WSMan(**lab.listener.client_kwargs("edge01.contoso.com"))) as pool,
    ):
        ps = PowerShell(pool)
        ps.add_cmdlet("Stop-Service").add_parameter("Name", "RTCAVEDGE")
        ps.invoke()
        (record,) = ps.streams.error
        assert (
            str(record.fq_error)
            == "ServiceHasDependentServices,Microsoft.PowerShell.Commands.StopServiceCommand"
        )
        assert "It can only be stopped if the Force flag is set." in str(
            record.exception.adapted_properties["Message"]
        )
        assert lab.server("edge01.contoso.com").find("RTCAVEDGE").status == "Running"
        forced = PowerShell(pool)
        forced.add_cmdlet("Stop-Service").add_parameter("Name", "RTCAVEDGE").add_parameter("Force")
        forced.invoke()  # a switch sent without a value is on
        assert not forced.had_errors
        edge = lab.server("edge01.contoso.com")
        assert [edge.find(n).status for n in ("RTCAVEDGE", "RTCAVAUTHENTICATION")] == ["Stopped", "Stopped"]


def test_every_case_file_names_services_the_server_has() -> None:
    """A misspelt name in a case would make ``find`` raise, not pass: guard the data itself."""
    assert len(CASES) >= 10
    for path in CASES:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        sim = topology(raw["topology"]).server(raw["case"]["server"])
        for name in raw["case"]["status"]:
            sim.find(name)
