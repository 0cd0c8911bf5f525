"""One member at a time: take out, bring back, wait for Ready, against a scripted pool and a virtual clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ocsps.catalog import Product, load_catalog
from ocsps.errors import ConnectError, TimeoutExceeded, UsageError
from ocsps.jsonout import to_builtins
from ocsps.pool import (
    Method,
    PoolRefused,
    UpgradeDomain,
    bring_back,
    take_out,
    wait_ready,
)
from ocsps.pool.member import MemberResultDocument
from tests.pool.fakes import FACTS, ScriptedPool, VirtualClock, changes, members, options

POOL = "pool.contoso.com"
SFB = load_catalog().product("sfb2015")
LYNC = load_catalog().product("lync2013")


@dataclass(frozen=True)
class Refusal:
    """A pool state in which taking ``member`` out must be refused, with words the reason must hold."""

    name: str
    member: str
    expect: str
    count: int = 4
    down: frozenset[str] = frozenset()
    unreachable: frozenset[str] = frozenset()
    readiness: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    domains: tuple[UpgradeDomain, ...] = field(default_factory=tuple)


REFUSALS = [
    Refusal(
        "quorum",
        "fe03.contoso.com",
        "must keep 2 running",
        down=frozenset({"fe01.contoso.com", "fe02.contoso.com"}),
    ),
    Refusal(
        "unreachable-counts-as-down",
        "fe03.contoso.com",
        "unreachable counts as down: fe02.contoso.com",
        down=frozenset({"fe01.contoso.com"}),
        unreachable=frozenset({"fe02.contoso.com"}),
    ),
    Refusal("busy", "fe01.contoso.com", "answers 'Busy'", readiness=("Busy",)),
    Refusal(
        "insufficient",
        "fe01.contoso.com",
        "answers 'InsufficientActiveFrontEnds'",
        readiness=("InsufficientActiveFrontEnds",),
    ),
    Refusal("undocumented-state", "fe01.contoso.com", "answers 'Upgrading'", readiness=("Upgrading",)),
    Refusal(
        "missing-replicas", "fe01.contoso.com", "missing replicas", missing=("Routing group 1: missing",)
    ),
    Refusal(
        "domain-not-ready",
        "fe02.contoso.com",
        "upgrade domain UD2 is not ready",
        domains=(
            UpgradeDomain("UD1", ("fe01.contoso.com",), True),
            UpgradeDomain("UD2", ("fe02.contoso.com",), False),
        ),
    ),
    Refusal("no-rule", "fe01.contoso.com", "no quorum rule for a pool of 13", count=13),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
def test_take_out_is_refused_before_anything_is_sent(case: Refusal) -> None:
    pool = ScriptedPool(
        members(case.count),
        readiness_script=list(case.readiness),
        down=set(case.down),
        unreachable=set(case.unreachable),
        missing_replicas=case.missing,
        domains=case.domains,
    )
    clock = VirtualClock()
    with pytest.raises(PoolRefused) as caught:
        take_out(pool, POOL, SFB, members(case.count), case.member, clock=clock.clock, sleep=clock.sleep)
    assert case.expect in caught.value.message and case.member in caught.value.message
    assert changes(pool.calls) == []
    assert caught.value.exit_code == 1 and caught.value.survey is not None


@pytest.mark.parametrize(("product", "sent"), [(SFB, "failover"), (LYNC, "drain")])
def test_take_out_uses_the_products_method_and_waits_until_out(product: Product, sent: str) -> None:
    pool = ScriptedPool(members(4), drain_reads=3)
    clock = VirtualClock()
    result = take_out(
        pool, POOL, product, members(4), "FE02.contoso.com", clock=clock.clock, sleep=clock.sleep
    )
    assert changes(pool.calls) == [f"{sent} fe02.contoso.com"]
    assert result.changed and result.member == "fe02.contoso.com"
    assert result.method is (Method.FAILOVER if sent == "failover" else Method.DRAIN)
    assert result.after.condition.value == "down" and result.before.condition.value == "up"
    assert result.quorum is not None and result.quorum.allowed
    # the drain takes reads to finish: the wait polled with the configured interval, on the virtual clock
    if sent == "drain":
        assert clock.sleeps and all(s == options().service_poll for s in clock.sleeps)


def test_take_out_twice_sends_once() -> None:
    pool = ScriptedPool(members(4))
    first = take_out(pool, POOL, SFB, members(4), "fe01.contoso.com")
    again = take_out(pool, POOL, SFB, members(4), "fe01.contoso.com")
    assert first.changed and not again.changed and "already out" in again.reason
    assert changes(pool.calls) == ["failover fe01.contoso.com"]


def test_dry_run_predicts_the_call_and_sends_nothing() -> None:
    pool = ScriptedPool(members(4))
    result = take_out(pool, POOL, SFB, members(4), "fe01.contoso.com", dry_run=True)
    assert result.changed and result.dry_run and changes(pool.calls) == []
    (call,) = result.calls
    assert call.action == "pool-failover"
    assert call.values == {"ComputerName": "fe01.contoso.com", "WaitTimeSeconds": 3600}
    back = bring_back(pool, POOL, SFB, members(4), "fe01.contoso.com", dry_run=True)
    assert not back.changed and changes(pool.calls) == []


def test_dry_run_still_refuses_what_the_real_call_would_refuse() -> None:
    pool = ScriptedPool(members(3), down={"fe01.contoso.com"})
    with pytest.raises(PoolRefused, match="quorum"):
        take_out(pool, POOL, SFB, members(3), "fe02.contoso.com", dry_run=True)


def test_a_member_still_draining_is_waited_for_not_drained_again() -> None:
    pool = ScriptedPool(members(4), draining={"fe01.contoso.com": 2})
    clock = VirtualClock()
    result = take_out(pool, POOL, LYNC, members(4), "fe01.contoso.com", clock=clock.clock, sleep=clock.sleep)
    assert not result.changed and "already leaving" in result.reason
    assert changes(pool.calls) == [] and result.after.all_stopped


def test_take_out_deadline() -> None:
    pool = ScriptedPool(members(4), drain_reads=1000)
    clock = VirtualClock()
    opts = options(drain_timeout=60.0, service_poll=10.0)
    with pytest.raises(TimeoutExceeded, match="did not leave the pool within 60s"):
        take_out(
            pool,
            POOL,
            LYNC,
            members(4),
            "fe01.contoso.com",
            options=opts,
            clock=clock.clock,
            sleep=clock.sleep,
        )
    assert changes(pool.calls) == ["drain fe01.contoso.com"]
    assert sum(clock.sleeps) == pytest.approx(60.0)


@pytest.mark.parametrize(("product", "sent"), [(SFB, "failback"), (LYNC, "start")])
def test_bring_back_then_again_sends_once(product: Product, sent: str) -> None:
    pool = ScriptedPool(members(4), down={"fe03.contoso.com"})
    result = bring_back(pool, POOL, product, members(4), "fe03.contoso.com")
    again = bring_back(pool, POOL, product, members(4), "fe03.contoso.com")
    assert result.changed and result.after.condition.value == "up"
    assert not again.changed and "already in" in again.reason
    assert changes(pool.calls) == [f"{sent} fe03.contoso.com"]


def test_bring_back_refuses_a_member_still_draining() -> None:
    pool = ScriptedPool(members(4), draining={"fe01.contoso.com": 5})
    with pytest.raises(PoolRefused, match="still leaving"):
        bring_back(pool, POOL, LYNC, members(4), "fe01.contoso.com")
    assert changes(pool.calls) == []


@pytest.mark.parametrize(
    ("member", "product", "message"),
    [
        ("fe09.contoso.com", SFB, "not a member"),
        ("fe01.contoso.com", load_catalog().product("ocs2007r2"), "cannot be rolled"),
    ],
)
def test_bad_input_is_a_usage_error_and_nothing_is_read(member: str, product: Product, message: str) -> None:
    pool = ScriptedPool(members(4))
    with pytest.raises(UsageError, match=message):
        take_out(pool, POOL, product, members(4), member)
    assert pool.calls == [] and pool.readings == []


WAITS = [
    # (readings, stable_for, passes, busy counted, reads)
    ((), 0.0, True, 0, 1),
    (("Ready",) * 5, 180.0, True, 0, 4),
    (("Busy", "Ready", "Ready", "Ready", "Ready"), 120.0, True, 1, 4),
    (("Busy", "Busy", "Busy"), 60.0, False, 3, 3),
    (("Ready", "InsufficientActiveFrontEnds"), 120.0, False, 0, 2),
    (("Ready", "Busy", "Ready", "Ready", "Ready", "Ready"), 120.0, True, 1, 5),
]


@pytest.mark.parametrize(("readings", "stable", "passes", "busy", "reads"), WAITS)
def test_wait_ready_follows_the_rolls_gate(
    readings: tuple[str, ...], stable: float, passes: bool, busy: int, reads: int
) -> None:
    pool = ScriptedPool(members(4), readiness_script=list(readings))
    clock = VirtualClock()
    opts = options(ready_poll=60.0, busy_interval=600.0)
    call = lambda: wait_ready(  # noqa: E731
        pool, POOL, members(4), stable_for=stable, options=opts, clock=clock.clock, sleep=clock.sleep
    )
    if passes:
        result = call()
        assert result.reads == reads and result.busy == busy and result.state == "Ready"
        assert result.waited >= stable and result.via == "fe01.contoso.com"
    else:
        with pytest.raises(PoolRefused, match="is not ready"):
            call()
        assert len(pool.readings) == reads
    assert changes(pool.calls) == []


def test_wait_ready_reads_through_a_member_that_is_up() -> None:
    pool = ScriptedPool(members(3), down={"fe01.contoso.com"})
    assert wait_ready(pool, POOL, members(3), stable_for=0).via == "fe02.contoso.com"
    pool = ScriptedPool(members(2), down=set(members(2)))
    with pytest.raises(PoolRefused, match="no member"):
        wait_ready(pool, POOL, members(2), stable_for=0)


def test_results_serialise() -> None:
    pool = ScriptedPool(members(4))
    doc = to_builtins(MemberResultDocument.of(take_out(pool, POOL, SFB, members(4), "fe01.contoso.com")))
    assert doc["changed"] is True and doc["method"] == "failover"
    assert doc["calls"] == [
        {"action": "pool-failover", "values": {"ComputerName": "fe01.contoso.com", "WaitTimeSeconds": 3600}}
    ]
    assert FACTS.defaults.front_end_service == "RTCSRV"


@pytest.mark.parametrize("call", [take_out, bring_back])
def test_an_unreachable_member_is_a_connection_error_and_nothing_is_sent(call: Any) -> None:
    pool = ScriptedPool(members(4), unreachable={"fe02.contoso.com"})
    with pytest.raises(ConnectError, match=r"cannot read the services of fe02\.contoso\.com"):
        call(pool, POOL, SFB, members(4), "fe02.contoso.com")
    assert changes(pool.calls) == []
