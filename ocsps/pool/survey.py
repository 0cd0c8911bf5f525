"""What ``ocsps pool status`` shows: every member's services, readiness, fabric state and quorum.

Every read is attempted and every failure is reported next to what did work: an administrator looking at
a sick pool needs all the evidence there is, not the first exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from ocsps.catalog import Product
from ocsps.errors import OcspsError, UsageError
from ocsps.pool.driver import PoolDriver
from ocsps.pool.facts import PoolFacts, QuorumRule, Readiness, Verdict, load_pool_facts
from ocsps.pool.model import (
    Condition,
    FabricState,
    FabricStateDocument,
    MemberState,
    MemberStateDocument,
    PoolReadiness,
    PoolReadinessDocument,
    ServiceLine,
    UpgradeDomain,
)
from ocsps.pool.quorum import spare
from ocsps.results import ServiceState

__all__ = [
    "PoolSurvey",
    "PoolSurveyDocument",
    "QuorumDocument",
    "SurveyMemberDocument",
    "read_domains",
    "survey_pool",
]


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
    def exit_code(self) -> int:
        """3 when no member answered, 1 when the survey found a problem, else 0 (``ocsps pool status``)."""
        if self.members and all(m.error for m in self.members):
            return 3
        return 1 if self.problems else 0

    @property
    def down(self) -> list[str]:
        return [m.host for m in self.members if m.condition is not Condition.UP]

    @property
    def spare(self) -> int | None:
        if self.rule is None:
            return None
        return spare([m.host for m in self.members], self.down, self.rule)


class SurveyMemberDocument(msgspec.Struct):
    """A member as ``pool status`` shows it: its state and the upgrade domain the pool puts it in."""

    host: str
    condition: Condition
    front_end: ServiceState | None
    services: tuple[ServiceLine, ...]
    error: str
    upgrade_domain: str | None


class QuorumDocument(msgspec.Struct):
    """The quorum rule of the pool's size, with the members down now and how many more may go."""

    min_servers: int
    max_servers: int
    must_run: int
    of_first: int | None
    down: list[str]
    can_lose: int


class PoolSurveyDocument(msgspec.Struct):
    """What ``pool status --json`` and the ``pool_info`` module write (``docs/schemas/pool-status``)."""

    pool: str
    product: str
    via: str | None
    members: tuple[SurveyMemberDocument, ...]
    readiness: PoolReadinessDocument | None
    fabric: FabricStateDocument | None
    quorum: QuorumDocument | None
    problems: tuple[str, ...]
    notes: tuple[str, ...]

    @classmethod
    def of(cls, survey: PoolSurvey) -> PoolSurveyDocument:
        readiness = survey.readiness
        members = []
        for m in survey.members:
            d = MemberStateDocument.of(m)
            domain = readiness.domain_of(m.host) if readiness is not None else None
            members.append(
                SurveyMemberDocument(
                    d.host, d.condition, d.front_end, d.services, d.error, domain.name if domain else None
                )
            )
        rule = survey.rule
        quorum = None
        if rule is not None:
            quorum = QuorumDocument(
                rule.min_servers,
                rule.max_servers,
                rule.must_run,
                rule.of_first,
                survey.down,
                max(0, survey.spare or 0),
            )
        return cls(
            survey.pool,
            survey.product,
            survey.via,
            tuple(members),
            PoolReadinessDocument.of(readiness) if readiness else None,
            FabricStateDocument.of(survey.fabric) if survey.fabric else None,
            quorum,
            survey.problems,
            survey.notes,
        )


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


def read_domains(
    driver: PoolDriver, pool: str, product: Product, members: Sequence[str], facts: PoolFacts | None = None
) -> tuple[UpgradeDomain, ...]:
    """The upgrade domains a new roll walks, as the pool reports them now; none for products whose pools
    have no readiness cmdlet (they roll one server at a time), without asking."""
    f = facts or load_pool_facts()
    if f.roll_for(product).readiness is not Readiness.CMDLET:
        return ()
    survey = survey_pool(driver, pool, product.id, members, f)
    return tuple(survey.readiness.domains) if survey.readiness is not None else ()
