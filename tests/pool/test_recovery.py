"""``ocsps.pool.recovery`` against a scripted pool and a virtual clock: what is read, sent and reported.

The cases are data (tests/data/pool/recovery/cases.toml); the tests below the case runner cover what a
table cannot say well: refusals before anything is read, and the parser of the servers' answer.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ocsps.catalog import load_catalog
from ocsps.errors import ConnectError, ErrorRecord, RemoteError, UsageError
from ocsps.jsonout import to_builtins
from ocsps.pool.member import MemberCall
from ocsps.pool.recovery import (
    PoolCall,
    RecoveryResult,
    RecoveryResultDocument,
    parse_pool_call,
    recover_pool,
    start_pool,
)
from ocsps.pool.survey import PoolSurvey
from ocsps.results import ParseError
from tests.conftest import DATA
from tests.pool.fakes import ScriptedPool, VirtualClock, members

CASES = tomllib.loads((DATA / "pool" / "recovery" / "cases.toml").read_text(encoding="utf-8"))["case"]
CATALOG = load_catalog()
POOL = "pool.contoso.com"


@dataclass
class RecoveringPool(ScriptedPool):
    """A scripted pool whose pool-wide calls have a chosen effect, recorded like every other call."""

    effect: str = "all-up"
    skipped: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)

    def _apply(self, skip: Sequence[str]) -> None:
        if self.effect == "refuse":
            raise RemoteError([ErrorRecord("Cannot start the pool: fewer servers than it needs.")])
        if self.effect == "none":
            return
        keep = {s for s in self.down if s in skip}
        self.down = keep
        self.unreachable = set()
        if self.effect == "all-up":
            self.missing_replicas = ()

    def start_pool(
        self, via: str, pool: str, skip_servers: Sequence[str], quorum_loss_recovery: bool, timeout: float
    ) -> PoolCall:
        assert via not in self.unreachable, "the call must run on a member that answers"
        self.sent.append("start-pool")
        self._apply(skip_servers)
        return PoolCall(via, pool, "StartPool", True)

    def reset_registrar(self, via: str, pool: str, timeout: float) -> PoolCall:
        assert via not in self.unreachable
        self.sent.append("reset-registrar")
        self._apply(())
        return PoolCall(via, pool, "QuorumLossRecovery", True)


def _pool(case: dict[str, Any]) -> tuple[RecoveringPool, list[str]]:
    hosts = members(case["size"])
    pick = lambda key: {hosts[i - 1] for i in case.get(key, [])}  # noqa: E731
    pool = RecoveringPool(
        hosts,
        down=pick("down"),
        unreachable=pick("unreachable"),
        missing_replicas=tuple(case.get("missing", ())),
        effect=case["effect"],
    )
    return pool, hosts


def _run(case: dict[str, Any], pool: RecoveringPool, hosts: list[str], clock: VirtualClock) -> RecoveryResult:
    product = CATALOG.product(case.get("product", "sfb2015"))
    asked: list[tuple[PoolSurvey, MemberCall, str]] = []

    def approve(survey: PoolSurvey, call: MemberCall, via: str) -> bool:
        assert via not in pool.unreachable, "the operator is told the member that answers"
        asked.append((survey, call, via))
        return bool(case.get("approve", True))

    common: dict[str, Any] = {
        "approve": approve,
        "dry_run": case.get("dry_run", False),
        "wait": 300.0,
        "poll": 30.0,
        "clock": clock.clock,
        "sleep": clock.sleep,
    }
    if case["operation"] == "start":
        skip = [hosts[i - 1] for i in case.get("skip", [])]
        return start_pool(pool, POOL, product, hosts, skip_servers=skip, **common)
    return recover_pool(pool, POOL, product, hosts, **common)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_recovery_case(case: dict[str, Any]) -> None:
    pool, hosts = _pool(case)
    clock = VirtualClock()
    result = _run(case, pool, hosts, clock)
    assert result.outcome.value == case["outcome"], result.reason
    assert pool.sent == case["sent"]
    assert result.exit_code == case["exit_code"]
    assert result.changed == bool(case["sent"])
    assert [c for c in pool.calls if c != "close"] == [], "no per-member change is ever made"
    if case["outcome"] == "still-down":
        assert clock.now - 1000.0 >= 300.0, "the pool is read again until the wait is over"
        assert result.after is not None and result.reads > 2
    for snippet in case.get("notes_contain", []):
        assert any(snippet in note for note in result.notes), result.notes
    doc = to_builtins(RecoveryResultDocument.of(result))
    assert doc["outcome"] == case["outcome"] and doc["before"]["pool"] == POOL


def test_start_is_refused_for_lync_2013_before_anything_is_read() -> None:
    pool = RecoveringPool(members(3), down=set(members(3)))
    with pytest.raises(UsageError) as refused:
        start_pool(pool, POOL, CATALOG.product("lync2013"), members(3), approve=lambda s, c, v: True)
    assert "Start-CsPool arrived with Skype for Business Server 2015" in refused.value.message
    assert pool.sent == [] and pool.readings == []


@pytest.mark.parametrize("product", ["ocs2007r2", "lync2010"])
def test_recover_is_refused_before_lync_2013(product: str) -> None:
    pool = RecoveringPool(members(3), missing_replicas=("rg",))
    with pytest.raises(UsageError) as refused:
        recover_pool(pool, POOL, CATALOG.product(product), members(3))
    assert "Reset-CsPoolRegistrarState arrived with Lync Server 2013" in refused.value.message
    assert pool.sent == []


@pytest.mark.parametrize(
    ("skip", "message"),
    [(["fe09.contoso.com"], "is not a member of"), (members(3), "every member of")],
)
def test_bad_skip_servers_are_refused(skip: list[str], message: str) -> None:
    pool = RecoveringPool(members(3), down=set(members(3)))
    with pytest.raises(UsageError) as refused:
        start_pool(pool, POOL, CATALOG.product("sfb2019"), members(3), skip_servers=skip)
    assert message in refused.value.message and pool.sent == []


def test_the_operator_sees_the_reading_and_the_exact_call() -> None:
    pool = RecoveringPool(members(3), down={members(3)[0]})
    seen: list[MemberCall] = []
    start_pool(
        pool,
        POOL,
        CATALOG.product("sfb2015"),
        members(3),
        skip_servers=[members(3)[0]],
        quorum_loss_recovery=True,
        approve=lambda survey, call, via: seen.append(call) or False,
    )
    # fe01 is skipped and the others are up: already started, nothing to confirm
    assert seen == []
    pool.down = set(members(3))
    start_pool(
        pool,
        POOL,
        CATALOG.product("sfb2015"),
        members(3),
        skip_servers=[members(3)[0]],
        quorum_loss_recovery=True,
        approve=lambda survey, call, via: seen.append(call) or False,
    )
    assert seen == [
        MemberCall(
            "pool-start",
            {"PoolFqdn": POOL, "SkipServer": (members(3)[0],), "QuorumLossRecovery": True},
        )
    ]


def test_pool_call_answer_is_parsed() -> None:
    found = parse_pool_call(
        [
            {
                "ComputerName": "fe01.contoso.com",
                "PoolFqdn": POOL,
                "Operation": "StartPool",
                "Invoked": True,
                "Output": "",
                "Warnings": "first\n\nsecond",
            }
        ]
    )
    assert found == PoolCall("fe01.contoso.com", POOL, "StartPool", True, "", ("first", "second"))
    with pytest.raises(ParseError):
        parse_pool_call([])
    with pytest.raises(ParseError):
        parse_pool_call([{"ComputerName": "fe01.contoso.com", "Operation": "StartPool"}])


def test_no_member_answering_is_a_connection_failure_and_nothing_is_sent() -> None:
    pool = RecoveringPool(members(3), unreachable=set(members(3)))
    with pytest.raises(ConnectError) as caught:
        start_pool(pool, POOL, CATALOG.product("sfb2015"), members(3), approve=lambda s, c, v: True)
    assert caught.value.exit_code == 3 and "nothing was sent" in caught.value.message
    assert pool.sent == []
