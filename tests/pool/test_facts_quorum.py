"""The quorum table and the other pool facts come from pools.toml and are applied as documented."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest

from ocsps.catalog import CatalogError, load_catalog
from ocsps.errors import UsageError
from ocsps.pool import Verdict, load_pool_facts, may_take_down, spare
from ocsps.pool.facts import parse_pool_facts
from tests.conftest import DATA, ROOT
from tests.pool.fakes import members

FACTS = load_pool_facts()
CASES: list[dict[str, Any]] = json.loads((DATA / "pool" / "quorum_cases.json").read_text())
POOLS_TOML = ROOT / "ocsps" / "catalog" / "data" / "pools.toml"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_quorum_table(case: dict[str, Any]) -> None:
    names = members(case["size"])
    down = [names[i - 1] for i in case["down"]]
    verdict = may_take_down(names, down, names[case["candidate"] - 1], FACTS.quorum_rule(case["size"]))
    assert (verdict.allowed, verdict.running_after) == (case["allowed"], case["running_after"])
    assert ("quorum:" in verdict.reason) is not case["allowed"]


@pytest.mark.parametrize(
    ("size", "must_run", "of_first"),
    [
        (2, 1, None),
        (3, 2, None),
        (4, 2, None),
        (5, 3, None),
        (6, 3, None),
        (7, 4, None),
        (8, 4, 7),
        (9, 4, 7),
        (10, 5, 9),
        (11, 5, 9),
        (12, 5, 9),
    ],
)
def test_table_matches_the_domain_reference(size: int, must_run: int, of_first: int | None) -> None:
    rule = FACTS.quorum_rule(size)
    assert (rule.must_run, rule.of_first) == (must_run, of_first)


@pytest.mark.parametrize("size", [1, 13, 20])
def test_sizes_without_a_rule_are_refused(size: int) -> None:
    with pytest.raises(UsageError, match=f"no quorum rule for a pool of {size}"):
        FACTS.quorum_rule(size)


def test_spare_counts_only_the_counted_servers() -> None:
    names = members(9)
    rule = FACTS.quorum_rule(9)
    assert spare(names, [], rule) == 3  # 7 counted, 4 must run
    assert spare(names, names[7:], rule) == 3
    assert spare(names, names[:4], rule) == -1


def test_defaults_and_states_are_the_documented_ones() -> None:
    d = FACTS.defaults
    assert (d.stable_for, d.max_busy, d.busy_interval, d.failover_wait_time) == (1200, 3, 600, 3600)
    assert FACTS.verdict("Ready") is Verdict.READY
    assert FACTS.verdict("Busy") is Verdict.BUSY
    assert FACTS.verdict("InsufficientActiveFrontEnds") is Verdict.STOP
    assert FACTS.verdict("SomethingNew") is Verdict.STOP
    assert {p: (r.method.value, r.unit.value, r.readiness.value) for p, r in FACTS.products.items()} == {
        "lync2010": ("drain", "server", "members"),
        "lync2013": ("drain", "upgrade-domain", "cmdlet"),
        "sfb2015": ("failover", "server", "cmdlet"),
        "sfb2019": ("failover", "server", "cmdlet"),
    }
    assert FACTS.products["sfb2019"].readiness_cmdlet == "Get-CsUpgradeDomainInfo"
    assert FACTS.products["lync2010"].readiness_cmdlet == ""
    rgs = FACTS.drain_rule("rtcrgs")
    assert rgs is not None and (rgs.deadline, rgs.then) == (600, "force-stop")


def test_products_without_pool_maintenance_are_refused() -> None:
    with pytest.raises(UsageError, match="Communications Server 2007 R2 pools cannot be rolled"):
        FACTS.roll_for(load_catalog().product("ocs2007r2"))


def _broken(edit: str, replacement: str) -> dict[str, Any]:
    text = POOLS_TOML.read_text()
    assert edit in text
    return tomllib.loads(text.replace(edit, replacement, 1))


@pytest.mark.parametrize(
    ("edit", "replacement", "message"),
    [
        ('front_end_service = "RTCSRV"', 'front_end_service = "RTCNOPE"', "front_end_service 'RTCNOPE'"),
        (
            'readiness_cmdlet = "Get-CsUpgradeDomainInfo"',
            'readiness_cmdlet = "Get-CsPoolUpgradeReadinessState"',
            "products.sfb2019: Get-CsPoolUpgradeReadinessState is not listed",
        ),
        ("servers = [5, 6]", "servers = [6, 6]", "sizes must follow on"),
        ('stable_for = "20m"', 'stable_for = "twenty minutes"', "defaults.stable_for"),
        ('Busy = "busy"', 'Busy = "ready"', "readiness.busy 'Busy' is not a 'busy' state"),
        ("max_busy = 3", "max_busy = 0", "max_busy"),
        ('"server"\nreadiness = "members"', '"server"\nreadiness = "cmdlet"', "lync2010: Get-CsPoolFab"),
        ('"drain"\nunit = "server"', '"failover"\nunit = "server"', "goes with method drain"),
        ('then = "force-stop"', 'then = "maybe"', "service_drain.RTCRGS.then"),
    ],
)
def test_inconsistent_pool_facts_fail_at_load(edit: str, replacement: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("[", r"\[")):
        parse_pool_facts(_broken(edit, replacement), load_catalog())
