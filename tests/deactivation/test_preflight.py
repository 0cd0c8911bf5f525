"""What a deactivation confirms before step 1: the computer that answers, LCSCmd.exe, the services.

Each case runs against a lab whose server differs from the plan (another computer, no LCSCmd.exe, the
binary in another folder) and checks that nothing changed there: services still running, roles still
activated, no LcsCmd log written.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsps.deactivation.plan import PLAN_KIND, StateReading, load_lcscmd_facts, plan_deactivation
from ocsps.deactivation.preflight import same_computer
from ocsps.deactivation.run import run_plan
from ocsps.errors import UsageError
from ocsps.lab.runtime import Lab
from ocsps.plans.sealed import load_plan, save_plan
from tests.cli_helpers import run_cli
from tests.conftest import lab_server
from tests.deactivation.test_lab_runs import TOPOLOGIES, _connect_env

OCS01 = "ocs01.contoso.com"
OCS02 = "ocs02.contoso.com"
SE = ["av-conferencing", "web-conferencing", "web-components", "front-end"]
ACKS = "all-roles-listed,backups,user-notice,off-peak,sessions-drained,conference-directories"


@pytest.fixture
def twins() -> Iterator[Lab]:
    with Lab(topology_file=TOPOLOGIES / "two_standard_editions.toml") as lab:
        yield lab


def _untouched(lab: Lab, fqdn: str) -> None:
    """Nothing changed on ``fqdn``: every service runs, every role is activated, LcsCmd wrote nothing."""
    sim = lab.server(fqdn)
    assert all(s.status == "Running" for s in sim.services.values())
    assert sorted(sim.activated_roles) == sorted(SE)
    assert not [p for p in sim.files if "-state-" not in p]


@pytest.mark.parametrize(
    ("answered", "named", "same"),
    [
        ("ocs01.contoso.com", "ocs01.contoso.com", True),
        ("OCS01.Contoso.com.", "ocs01.contoso.com", True),
        ("ocs01.contoso.com", "ocs01", True),
        ("ocs02.contoso.com", "ocs01.contoso.com", False),
        ("ocs01.fabrikam.com", "ocs01.contoso.com", False),
        ("ocs01", "ocs01.contoso.com", False),
        (None, "ocs01.contoso.com", False),
        ("", "ocs01", False),
    ],
)
def test_same_computer(answered: str | None, named: str, same: bool) -> None:
    assert same_computer(answered, named) is same


def test_plan_for_one_computer_does_not_run_on_another(twins: Lab) -> None:
    facts = load_lcscmd_facts()
    plan = plan_deactivation(OCS01, product="ocs2007r2", roles=SE)
    with lab_server(twins, OCS02) as server, pytest.raises(UsageError) as caught:
        run_plan(server, plan, plan_sha256="x", facts=facts)
    assert caught.value.exit_code == 2
    assert "the computer that answered is ocs02.contoso.com, not ocs01.contoso.com" in caught.value.message
    assert "nothing was changed" in caught.value.message
    _untouched(twins, OCS02)
    assert not twins.server(OCS02).files  # not even LcsCmd's read-only state check ran there


def test_cli_plan_does_not_claim_roles_read_from_another_computer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twins: Lab
) -> None:
    _connect_env(twins, monkeypatch, tmp_path, OCS02)
    path = tmp_path / "plan.json"
    result = run_cli(
        capsys, "deactivate", "plan", "--computer", OCS01, "--all", "--host", OCS02, "-o", str(path)
    )
    assert result.code == 2, result.err
    assert "the computer that answered is ocs02.contoso.com, not ocs01.contoso.com" in result.err
    assert "read from" not in result.out + result.err
    assert not path.exists()


def test_cli_run_with_another_host_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twins: Lab
) -> None:
    _connect_env(twins, monkeypatch, tmp_path, OCS01)
    path = tmp_path / "plan.json"
    planned = run_cli(
        capsys, "deactivate", "plan", "--computer", OCS01, "--all", "--host", OCS01, "-o", str(path)
    )
    assert planned.code == 0, planned.err
    acks = ",".join(c["id"] for c in json.loads(path.read_text())["plan"]["checklist"])
    _connect_env(twins, monkeypatch, tmp_path, OCS02)
    result = run_cli(
        capsys, "deactivate", "run", "--plan", str(path), "--ack", acks, "--host", OCS02, "--json"
    )
    assert result.code == 2, result.err
    assert "not ocs01.contoso.com" in result.err and "deactivated" not in result.out
    _untouched(twins, OCS02)
    _untouched(twins, OCS01)


def test_plan_resealed_for_another_computer_does_not_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twins: Lab
) -> None:
    """Someone rewrites a plan for ocs02 and seals it again; the connection still reaches ocs01."""
    _connect_env(twins, monkeypatch, tmp_path, OCS01)
    path = tmp_path / "plan.json"
    planned = run_cli(
        capsys, "deactivate", "plan", "--computer", OCS01, "--roles", ",".join(SE), "-o", str(path)
    )
    assert planned.code == 0, planned.err
    doc = json.loads(json.dumps(load_plan(path, PLAN_KIND)).replace(OCS01, OCS02))
    save_plan(path, PLAN_KIND, doc)
    result = run_cli(capsys, "deactivate", "run", "--plan", str(path), "--ack", ACKS, "--host", OCS02)
    assert result.code == 2, result.err
    assert "the computer that answered is ocs01.contoso.com, not ocs02.contoso.com" in result.err
    _untouched(twins, OCS01)


def test_missing_lcscmd_stops_the_run_before_anything_stops(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Lab(topology_file=TOPOLOGIES / "se_without_lcscmd.toml") as lab:
        _connect_env(lab, monkeypatch, tmp_path)
        path = tmp_path / "plan.json"
        planned = run_cli(
            capsys, "deactivate", "plan", "--computer", OCS01, "--roles", ",".join(SE), "-o", str(path)
        )
        assert planned.code == 0, planned.err
        result = run_cli(capsys, "deactivate", "run", "--plan", str(path), "--ack", ACKS)
        assert result.code == 2, result.err
        assert "LCSCmd.exe was not found on ocs01.contoso.com (looked at C:\\Program Files" in result.err
        assert "2007 R2\\LCSCmd.exe); nothing was changed" in result.err
        _untouched(lab, OCS01)
        live = run_cli(capsys, "deactivate", "plan", "--computer", OCS01, "--all", "--host", OCS01)
        assert live.code == 2 and "LCSCmd.exe was not found at" in live.err


def test_lcscmd_is_looked_for_at_every_known_location_and_recorded(lab: Lab) -> None:
    """The plan expects LCSCmd.exe in a folder this server does not use: the next known location is
    tried, the run uses the one found, and the report says where it was and that it moved."""
    other = "D:\\OCS\\LCSCmd.exe"
    catalog_facts = load_lcscmd_facts()
    facts = dataclasses.replace(catalog_facts, locations=(other, *catalog_facts.locations))
    plan = dataclasses.replace(
        plan_deactivation(OCS01, product="ocs2007r2", all_roles=True, reading=_reading()),
        lcscmd_path=other,
    )
    with lab_server(lab, OCS01) as server:
        report = run_plan(server, plan, plan_sha256="x", facts=facts)
    assert report.ok, report
    assert report.lcscmd_path == catalog_facts.path
    check = next(c for c in report.checks if c.name == "lcscmd")
    assert check.detail == f"LCSCmd.exe found at {catalog_facts.path} (the plan expected {other})"


def _reading() -> StateReading:
    return StateReading(activated=(*SE, "archiving-cdr"))


def test_services_the_plan_saw_must_still_be_there(lab: Lab) -> None:
    facts = load_lcscmd_facts()
    front_end = lab.server(OCS01).services["RtcSrv"].display_name
    plan = plan_deactivation(
        OCS01,
        product="ocs2007r2",
        roles=[*SE, "archiving-cdr"],
        services_found=[front_end, "Office Communications Server Gone"],
    )
    with lab_server(lab, OCS01) as server, pytest.raises(UsageError) as caught:
        run_plan(server, plan, plan_sha256="x", facts=facts)
    assert "not found now: Office Communications Server Gone);" in caught.value.message
    assert all(s.status == "Running" for s in lab.server(OCS01).services.values())


def test_lcscmd_in_the_r2_folder_is_found_and_used() -> None:
    """The lab server keeps LCSCmd.exe in the 2007 R2 folder (the lab's ``lcscmd_path``)."""
    from ocsps.deactivation.preflight import read_server

    lab = Lab(topology_file=TOPOLOGIES / "se_lcscmd_r2_folder.toml")
    facts = load_lcscmd_facts()
    r2 = facts.locations[1]
    with lab:
        with lab_server(lab, OCS01) as server:
            live = read_server(server, OCS01, facts)
        assert live.lcscmd.path == r2 and live.reading.activated is not None
        plan = plan_deactivation(
            OCS01, product="ocs2007r2", all_roles=True, reading=live.reading, lcscmd_path=live.lcscmd.path
        )
        assert plan.lcscmd_path == r2
        with lab_server(lab, OCS01) as server:
            report = run_plan(server, plan, plan_sha256="x", facts=facts)
        assert report.ok and report.lcscmd_path == r2, report
        assert lab.server(OCS01).activated_roles == []


EDGE = "edge01.perimeter.contoso.com"


def test_edge_server_goes_whole_with_the_edge_roles_it_runs() -> None:
    """Seed 001: an Edge server's deactivation covers every edge role it runs, and only those."""
    from ocsps.deactivation.preflight import read_server

    facts = load_lcscmd_facts()
    with Lab(topology_file=TOPOLOGIES / "edge_access_only.toml") as lab:
        with lab_server(lab, EDGE) as server:
            live = read_server(server, EDGE, facts, check_role="AP")
        assert live.components == ("AP",)
        offline = plan_deactivation(EDGE, product="ocs2007r2", roles=["edge"])
        with lab_server(lab, EDGE) as server, pytest.raises(UsageError) as caught:
            run_plan(server, offline, plan_sha256="x", facts=facts, check_role="AP")
        assert "step 2 deactivates edge roles AP,DP,MR, the server runs AP" in caught.value.message
        assert lab.server(EDGE).activated_roles == ["edge"]
        with pytest.raises(UsageError, match="leaves out"):
            plan_deactivation(
                EDGE,
                product="ocs2007r2",
                roles=["edge"],
                components=["AP"],
                components_found=("AP", "DP", "MR"),
            )
        plan = plan_deactivation(
            EDGE, product="ocs2007r2", all_roles=True, reading=live.reading, components_found=live.components
        )
        assert plan.deactivations[0].arguments[2] == "/Components:AP"
        with lab_server(lab, EDGE) as server:
            report = run_plan(server, plan, plan_sha256="x", facts=facts, check_role="AP")
        assert report.ok, report
        assert lab.server(EDGE).activated_roles == []


def test_a_live_plan_is_written_from_what_the_server_showed() -> None:
    """``plan_deactivation_live``: the server's product, its activated roles, where LCSCmd.exe was found."""
    from ocsps.deactivation.preflight import plan_deactivation_live

    facts = load_lcscmd_facts()
    with Lab(topology_file=TOPOLOGIES / "se_lcscmd_r2_folder.toml") as lab:
        with lab_server(lab, OCS01) as server:
            found = plan_deactivation_live(server, OCS01, facts, all_roles=True, change_id="CHG-7")
        activated = sorted(lab.server(OCS01).activated_roles)
        written = [p for p in lab.server(OCS01).files if "-state-" not in p]
    plan, live = found.plan, found.live
    assert (plan.roles_source, plan.product, plan.change_id) == ("live", "ocs2007r2", "CHG-7")
    assert sorted(plan.roles) == activated and plan.lcscmd_path == live.lcscmd.path == facts.locations[1]
    assert not written  # only LcsCmd's read-only state check wrote a log


def test_a_live_plan_refuses_roles_the_server_does_not_show(twins: Lab) -> None:
    from ocsps.deactivation.preflight import plan_deactivation_live

    facts = load_lcscmd_facts()
    with lab_server(twins, OCS02) as server, pytest.raises(UsageError, match="answered is ocs02"):
        plan_deactivation_live(server, OCS01, facts, all_roles=True)
    with lab_server(twins, OCS01) as server, pytest.raises(UsageError, match="leaves out av-conferencing"):
        plan_deactivation_live(server, OCS01, facts, roles=["front-end"])  # the server shows more
    _untouched(twins, OCS01)
