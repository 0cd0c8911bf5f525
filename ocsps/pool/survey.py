"""What ``ocsps pool status`` shows: every member's services, readiness, fabric state and quorum.

Every read is attempted and every failure is reported next to what did work: an administrator looking at
a sick pool needs all the evidence there is, not the first exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ocsps.errors import OcspsError, UsageError
from ocsps.pool.driver import PoolDriver
from ocsps.pool.facts import PoolFacts, QuorumRule, Verdict, load_pool_facts
from ocsps.pool.model import Condition, FabricState, MemberState, PoolReadiness
from ocsps.pool.quorum import spare

__all__ = ["PoolSurvey", "survey_pool"]


@dataclass(frozen=True)
class PoolSurvey:
    pool: str
    product: str
    members: tuple[MemberState, ...]
    via: str | None
    readiness: PoolReadiness | None
    fabric: FabricState | None
    rule: QuorumRule | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def down(self) -> list[str]:
        return [m.host for m in self.members if m.condition is not Condition.UP]

    @property
    def spare(self) -> int | None:
        if self.rule is None:
            return None
        return spare([m.host for m in self.members], self.down, self.rule)

    def to_json(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "product": self.product,
            "via": self.via,
            "members": [
                {
                    **m.to_json(),
                    "upgrade_domain": (
                        d.name
                        if self.readiness is not None and (d := self.readiness.domain_of(m.host)) is not None
                        else None
                    ),
                }
                for m in self.members
            ],
            "readiness": self.readiness.to_json() if self.readiness else None,
            "fabric": self.fabric.to_json() if self.fabric else None,
            "quorum": None
            if self.rule is None
            else {**self.rule.to_json(), "down": self.down, "can_lose": max(0, self.spare or 0)},
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def survey_pool(
    driver: PoolDriver, pool: str, product: str, members: Sequence[str], facts: PoolFacts | None = None
) -> PoolSurvey:
    """Read everything a roll decides on; read-only, and it never stops at the first failure."""
    f = facts or load_pool_facts()
    problems: list[str] = []
    notes: list[str] = []
    states = tuple(driver.member(m) for m in members)
    problems += [f"{m.host}: {m.error}" for m in states if m.error]
    rule: QuorumRule | None = None
    try:
        rule = f.quorum_rule(len(members))
    except UsageError as exc:
        problems.append(exc.message)
    via = next((m.host for m in states if m.condition is Condition.UP), None)
    readiness: PoolReadiness | None = None
    fabric: FabricState | None = None
    if via is None:
        problems.append(f"no member of {pool} is up: readiness and fabric state cannot be read")
    else:
        try:
            readiness = driver.readiness(via)
        except OcspsError as exc:
            problems.append(f"readiness: {exc.message}")
        try:
            fabric = driver.fabric(via, pool)
        except OcspsError as exc:
            problems.append(f"fabric state: {exc.message}")
    if readiness is not None:
        if readiness.pool and readiness.pool.casefold() != pool.casefold():
            problems.append(f"{via} reports pool {readiness.pool}, not {pool}")
        verdict = f.verdict(readiness.state)
        if verdict is Verdict.STOP:
            problems.append(f"the pool upgrade state is {readiness.state!r}: no server may be taken out")
        elif verdict is Verdict.BUSY:
            notes.append(f"the pool upgrade state is {readiness.state!r}: wait before taking a server out")
        if not readiness.domains:
            notes.append("the readiness answer named no upgrade domains")
    if fabric is not None and fabric.missing:
        problems.append(f"missing replicas: {'; '.join(fabric.missing)}; recover with {f.recovery_for(pool)}")
    if rule is not None:
        left = spare(list(members), [m.host for m in states if m.condition is not Condition.UP], rule)
        if left < 0:
            problems.append(f"quorum lost: {rule.describe()}")
        elif left == 0:
            problems.append(f"at quorum: no server may go down now ({rule.describe()})")
    return PoolSurvey(pool, product, states, via, readiness, fabric, rule, tuple(problems), tuple(notes))
