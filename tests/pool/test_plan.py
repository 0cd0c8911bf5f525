"""Planning a roll and the readiness wait between units: pure functions, checked with data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocsps.catalog import load_catalog
from ocsps.errors import UsageError
from ocsps.jsonout import to_builtins
from ocsps.pool import (
    Gate,
    GateVerdict,
    PoolReadiness,
    RollPlan,
    StepSpec,
    UpgradeDomain,
    gate_decision,
    plan_roll,
    roll_steps,
)
from ocsps.pool.plan import RollPlanDocument, step_from_text
from tests.conftest import DATA
from tests.pool.fakes import FACTS, members, options

CATALOG = load_catalog()
GATES: list[dict[str, Any]] = json.loads((DATA / "pool" / "gate_cases.json").read_text())


def _reading(text: str) -> PoolReadiness:
    """``Ready`` or ``Ready:UpgradeDomain2=False`` (a domain of fe02 reporting its own readiness)."""
    state, _, domain = text.partition(":")
    domains: tuple[UpgradeDomain, ...] = ()
    if domain:
        name, _, flag = domain.partition("=")
        domains = (UpgradeDomain(name, ("fe02.contoso.com",), flag == "True"),)
    return PoolReadiness(state, domains=domains)


@pytest.mark.parametrize("case", GATES, ids=[c["name"] for c in GATES])
def test_readiness_gate(case: dict[str, Any]) -> None:
    opts = options(max_busy=case.get("max_busy", 3))
    gate, now, seen = Gate(float(case["stable_for"])), 0.0, []
    for reading in case["readings"]:
        decision = gate_decision(gate, _reading(reading), now, opts, FACTS, case.get("next", ()))
        gate = decision.gate
        seen.append(
            decision.verdict.value if decision.verdict is not GateVerdict.WAIT else f"wait {decision.wait:g}"
        )
        if decision.verdict is not GateVerdict.WAIT:
            break
        now += decision.wait
    assert seen == case["expect"]


def test_a_wait_is_bounded_whatever_the_pool_answers() -> None:
    """Alternating answers cannot keep a roll waiting forever: Busy answers add up to max_busy."""
    opts = options()
    gate, now = Gate(1200.0), 0.0
    for reads in range(1, 200):
        decision = gate_decision(gate, PoolReadiness("Busy" if reads % 2 else "Ready"), now, opts, FACTS)
        gate, now = decision.gate, now + decision.wait
        if decision.verdict is GateVerdict.STOP:
            break
    assert decision.verdict is GateVerdict.STOP and reads == 5


def test_lync2013_rolls_by_upgrade_domain_in_domain_order() -> None:
    names = members(6)
    domains = [
        UpgradeDomain("UpgradeDomain10", (names[4], names[5])),
        UpgradeDomain("UpgradeDomain2", (names[2], names[3])),
        UpgradeDomain("UpgradeDomain1", (names[1], names[0])),
    ]
    plan = plan_roll("pool.contoso.com", CATALOG.product("lync2013"), names, domains)
    assert [(u.name, u.servers) for u in plan.units] == [
        ("UpgradeDomain1", (names[0], names[1])),
        ("UpgradeDomain2", (names[2], names[3])),
        ("UpgradeDomain10", (names[4], names[5])),
    ]
    assert plan.method.value == "drain" and plan.rule.must_run == 3


def test_sfb_rolls_one_server_at_a_time_grouped_by_domain() -> None:
    names = members(4)
    domains = [UpgradeDomain("UD2", (names[0],)), UpgradeDomain("UD1", (names[3], "fe02"))]
    plan = plan_roll("pool.contoso.com", CATALOG.product("sfb2019"), names, domains)
    assert [u.servers for u in plan.units] == [(names[1],), (names[3],), (names[0],), (names[2],)]
    assert plan.method.value == "failover"
    assert any("not in any upgrade domain" in n and names[2] in n for n in plan.notes)


def test_only_narrows_the_roll_but_quorum_counts_every_member() -> None:
    names = members(5)
    plan = plan_roll("pool.contoso.com", CATALOG.product("sfb2015"), names, only=[names[3], names[1]])
    assert plan.servers == (names[1], names[3])
    assert plan.members == tuple(names) and plan.rule.must_run == 3


@pytest.mark.parametrize(
    ("product", "servers", "only", "message"),
    [
        ("ocs2007r2", 3, None, "Communications Server 2007 R2 pools cannot be rolled"),
        ("ocs2007r2", 3, None, "cannot be rolled"),
        ("sfb2015", 1, None, "no quorum rule for a pool of 1"),
        ("sfb2015", 13, None, "no quorum rule for a pool of 13"),
        ("sfb2015", 3, ["fe09.contoso.com"], "fe09.contoso.com is not a member"),
    ],
)
def test_plans_that_are_refused(product: str, servers: int, only: list[str] | None, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan_roll("pool.contoso.com", CATALOG.product(product), members(servers), only=only)


def test_duplicate_members_are_refused() -> None:
    with pytest.raises(UsageError, match="listed twice"):
        plan_roll("p", CATALOG.product("sfb2015"), ["a.contoso.com", "A.contoso.com", "b.contoso.com"])


def test_plan_round_trips_through_json() -> None:
    plan = plan_roll("pool.contoso.com", CATALOG.product("sfb2015"), members(9))
    again = RollPlan.from_json(json.loads(json.dumps(to_builtins(RollPlanDocument.of(plan)))))
    assert again == plan and again.sha256 == plan.sha256


def test_roll_steps_cover_the_whole_roll_in_order() -> None:
    plan = plan_roll("pool.contoso.com", CATALOG.product("sfb2015"), members(3))
    steps = roll_steps(plan, options(stable_for=1200.0))
    kinds = [(s.kind, s.server) for s in steps]
    expected: list[tuple[str, str | None]] = [("fabric", None)]
    for name in members(3):
        expected += [("gate", None), ("take-down", name), ("step", name), ("bring-back", name)]
    assert kinds == [*expected, ("gate", None)]
    gates = [s.values["StableSeconds"] for s in steps if s.kind == "gate"]
    assert gates == [0, 1200, 1200, 1200]
    assert all("Force" not in s.values for s in steps)
    failover = next(s for s in steps if s.action == "pool-failover")
    assert failover.values == {"ComputerName": "fe01.contoso.com", "WaitTimeSeconds": 3600}


def test_lync2013_roll_steps_drain_and_start() -> None:
    plan = plan_roll("pool.contoso.com", CATALOG.product("lync2013"), members(2))
    actions = [s.action for s in roll_steps(plan, options())]
    assert actions.count("pool-drain-server") == 2 and actions.count("pool-start-server") == 2
    assert "pool-failover" not in actions


def test_step_script_is_checked_before_anything_is_sent() -> None:
    step = step_from_text(
        "patch.ps1", "Write-Output 'x'\r\nRestart-Service W3SVC\n\n", CATALOG.product("sfb2015")
    )
    assert step.lines == ("Write-Output 'x'", "Restart-Service W3SVC") and len(step.sha256) == 64
    with pytest.raises(UsageError, match="does not parse as PowerShell"):
        step_from_text("bad.ps1", "if ($x {\n", None)
    with pytest.raises(UsageError, match=r"needs PowerShell 5\.0"):
        step_from_text("new.ps1", "$a = [System.Text.StringBuilder]::new()\n", CATALOG.product("lync2013"))
    with pytest.raises(UsageError, match="line 2"):
        step_from_text("ctl.ps1", "Write-Output 1\nWrite-Output '\x07'\n", None)
    with pytest.raises(UsageError, match="empty"):
        StepSpec("script", "empty.ps1", ("", "  "))
    with pytest.raises(UsageError, match="unknown maintenance step"):
        StepSpec("reboot")
