"""Starting a whole Front End pool, and recovering routing groups in quorum loss: read before and after.

``Start-CsPool`` (Skype for Business Server 2015 and 2019) brings a pool up after a cold start or a
pool-level quorum loss; ``Reset-CsPoolRegistrarState -ResetType QuorumLossRecovery`` (Lync Server 2013 and
later) reloads routing groups in quorum loss from the backup store, and may lose data not yet written.
Both act on every server of the pool at once, so neither is sent on a guess: the pool is read first
(``survey_pool``), a pool that needs nothing gets nothing, the caller's ``approve`` sees the reading and
the exact call before anything is sent, and the pool is read again until it is up or the deadline
passes. The result says what was read, what was sent and what was seen afterwards. A product that lacks
the cmdlet is refused while rendering, in Python, before any connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import msgspec

from ocsps.catalog import Product
from ocsps.errors import ConnectError, OcspsError, OperationFailed, RemoteError, UsageError
from ocsps.pool.driver import PoolDriver, RemoteDriver
from ocsps.pool.facts import PoolFacts, load_pool_facts
from ocsps.pool.member import MemberCall
from ocsps.pool.model import Condition, FabricState, MemberState, PoolReadiness, StepOutcome
from ocsps.pool.plan import StepSpec
from ocsps.pool.survey import PoolSurvey, PoolSurveyDocument, survey_pool
from ocsps.powershell.script import RenderedScript, render_action
from ocsps.results.base import ParseError, PropertyReader

__all__ = [
    "PoolCall",
    "RecoveryDriver",
    "RecoveryOutcome",
    "RecoveryResult",
    "RecoveryResultDocument",
    "RemoteRecoveryDriver",
    "parse_pool_call",
    "recover_call",
    "recover_pool",
    "start_call",
    "start_pool",
]

START = "pool-start"
RECOVER = "pool-recover"


class RecoveryOutcome(StrEnum):
    """How a start or a recovery ended; ``ok`` says which of them count as success (exit code 0)."""

    STARTED = "started"
    ALREADY_STARTED = "already-started"
    RECOVERED = "recovered"
    NOTHING_TO_RECOVER = "nothing-to-recover"
    STILL_DOWN = "still-down"
    FAILED = "failed"
    DECLINED = "declined"
    DRY_RUN = "dry-run"

    @property
    def ok(self) -> bool:
        return self not in (RecoveryOutcome.STILL_DOWN, RecoveryOutcome.FAILED, RecoveryOutcome.DECLINED)


@dataclass(frozen=True)
class PoolCall:
    """What the server answered to a pool-wide call: whether the cmdlet ran, and what it printed."""

    computer: str
    pool: str
    operation: str
    invoked: bool
    output: str = ""
    warnings: tuple[str, ...] = ()


def parse_pool_call(objects: Sequence[object]) -> PoolCall:
    """The one object the pool-start and pool-recover templates send."""
    if not objects:
        raise ParseError("PoolCall", None, "no object was returned")
    reader = PropertyReader(objects[-1], "PoolCall")
    warnings = reader.multiline("Warnings") or ""
    return PoolCall(
        computer=reader.required_text("ComputerName"),
        pool=reader.text("PoolFqdn") or "",
        operation=reader.required_text("Operation"),
        invoked=bool(reader.boolean("Invoked", required=True)),
        output=reader.multiline("Output") or "",
        warnings=tuple(line for line in warnings.splitlines() if line.strip()),
    )


class RecoveryDriver(PoolDriver, Protocol):
    """The pool reads of a roll, plus the two pool-wide calls; each blocks until the server answered."""

    def start_pool(
        self, via: str, pool: str, skip_servers: Sequence[str], quorum_loss_recovery: bool, timeout: float
    ) -> PoolCall: ...

    def reset_registrar(self, via: str, pool: str, timeout: float) -> PoolCall: ...


class RemoteRecoveryDriver:
    """A ``RecoveryDriver`` over a ``RemoteDriver``: its reads, and the pool-wide calls in its sessions."""

    def __init__(self, remote: RemoteDriver) -> None:
        self.remote = remote

    def member(self, host: str) -> MemberState:
        return self.remote.member(host)

    def readiness(self, via: str) -> PoolReadiness:
        return self.remote.readiness(via)

    def fabric(self, via: str, pool: str) -> FabricState:
        return self.remote.fabric(via, pool)

    def drain(self, host: str) -> MemberState:
        return self.remote.drain(host)

    def start(self, host: str) -> MemberState:
        return self.remote.start(host)

    def stop_service(self, host: str, name: str) -> None:
        self.remote.stop_service(host, name)

    def failover(self, host: str, wait_time: float, draining_timeout: float | None, force: bool) -> None:
        self.remote.failover(host, wait_time, draining_timeout, force)

    def failback(self, host: str, wait_time: float) -> None:
        self.remote.failback(host, wait_time)

    def run_step(self, host: str, step: StepSpec, timeout: float) -> StepOutcome:
        return self.remote.run_step(host, step, timeout)

    def close(self) -> None:
        self.remote.close()

    def _call(self, via: str, call: MemberCall, timeout: float) -> PoolCall:
        server = self.remote.server(via)
        rendered = server.render(call.action, None, **dict(call.values))
        result = server.session.run(rendered, timeout=timeout).raise_for_errors()
        server.check_answers(result.output)
        found = parse_pool_call(result.output)
        if not found.invoked:
            raise OperationFailed(f"{call.action}: the server did not run the cmdlet", host=via)
        return found

    def start_pool(
        self, via: str, pool: str, skip_servers: Sequence[str], quorum_loss_recovery: bool, timeout: float
    ) -> PoolCall:
        return self._call(via, start_call(pool, skip_servers, quorum_loss_recovery), timeout)

    def reset_registrar(self, via: str, pool: str, timeout: float) -> PoolCall:
        return self._call(via, recover_call(pool), timeout)


@dataclass(frozen=True)
class RecoveryResult:
    """What a start or a recovery read, sent and saw afterwards."""

    pool: str
    operation: str  # "start" | "recover"
    outcome: RecoveryOutcome
    reason: str
    before: PoolSurvey
    after: PoolSurvey | None = None
    via: str | None = None
    call: MemberCall | None = None
    answer: PoolCall | None = None
    script: RenderedScript | None = None
    notes: tuple[str, ...] = ()
    waited: float = 0.0
    reads: int = 0

    @property
    def changed(self) -> bool:
        """Whether the pool-wide cmdlet was sent (a call the server failed was sent too)."""
        return self.answer is not None or self.outcome is RecoveryOutcome.FAILED

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


class RecoveryResultDocument(msgspec.Struct):
    """A start or recovery as ``pool start`` / ``pool recover --json`` and the ``pool_start`` module write
    it: the verdicts (``ok``, ``changed``) read when the document is made, the pool before and after."""

    pool: str
    operation: str
    outcome: RecoveryOutcome
    ok: bool
    changed: bool
    reason: str
    via: str | None
    call: MemberCall | None
    answer: PoolCall | None
    before: PoolSurveyDocument
    after: PoolSurveyDocument | None
    notes: tuple[str, ...]
    waited: float
    reads: int

    @classmethod
    def of(cls, result: RecoveryResult) -> RecoveryResultDocument:
        r = result
        return cls(
            r.pool,
            r.operation,
            r.outcome,
            r.ok,
            r.changed,
            r.reason,
            r.via,
            r.call,
            r.answer,
            PoolSurveyDocument.of(r.before),
            None if r.after is None else PoolSurveyDocument.of(r.after),
            r.notes,
            round(r.waited, 3),
            r.reads,
        )


# ------------------------------------------------------------------------------------------ calls (pure)
def start_call(pool: str, skip_servers: Sequence[str] = (), quorum_loss_recovery: bool = False) -> MemberCall:
    values: dict[str, object] = {"PoolFqdn": pool}
    if skip_servers:
        values["SkipServer"] = tuple(skip_servers)
    if quorum_loss_recovery:
        values["QuorumLossRecovery"] = True
    return MemberCall(START, values)


def recover_call(pool: str) -> MemberCall:
    return MemberCall(RECOVER, {"PoolFqdn": pool})


def render_call(call: MemberCall, product: Product) -> RenderedScript:
    """The script exactly as it would be sent; refuses a product that lacks the cmdlet (UsageError)."""
    return render_action(call.action, product, dict(call.values))


# ------------------------------------------------------------------------------------------ helpers
def _members(pool: str, members: Sequence[str], skip: Sequence[str]) -> list[str]:
    if not members:
        raise UsageError(f"pool {pool}: no members given")
    if len({m.casefold() for m in members}) != len(members):
        raise UsageError(f"pool {pool}: a server is listed twice")
    known = {m.casefold() for m in members}
    stray = [s for s in skip if s.casefold() not in known]
    if stray:
        raise UsageError(f"{stray[0]} is not a member of {pool}; members: {', '.join(members)}")
    if len(skip) >= len(members):
        raise UsageError(f"every member of {pool} would be skipped: nothing would start")
    return list(members)


def _via(survey: PoolSurvey) -> str:
    """The member the pool-wide call runs on: the first that answers, up ones first."""
    reachable = [m for m in survey.members if not m.error]
    if not reachable:
        detail = "; ".join(f"{m.host}: {m.error}" for m in survey.members)
        raise ConnectError(f"no member of {survey.pool} answers, nothing was sent ({detail})")
    up = [m for m in reachable if m.condition is Condition.UP]
    return (up or reachable)[0].host


def _is_up(survey: PoolSurvey, skip: Sequence[str]) -> bool:
    skipped = {s.casefold() for s in skip}
    counted = [m for m in survey.members if m.host.casefold() not in skipped]
    return bool(counted) and all(m.condition is Condition.UP for m in counted)


def _recovered(survey: PoolSurvey) -> bool:
    return _is_up(survey, ()) and survey.fabric is not None and not survey.fabric.missing


def _describe(survey: PoolSurvey) -> str:
    up = [m.host for m in survey.members if m.condition is Condition.UP]
    missing = len(survey.fabric.missing) if survey.fabric is not None else None
    fabric = (
        "fabric state not read"
        if missing is None
        else "no missing replicas"
        if not missing
        else f"{missing} fabric line(s) name missing replicas"
    )
    return f"{len(up)}/{len(survey.members)} member(s) up; {fabric}"


def _wait(
    driver: PoolDriver,
    pool: str,
    product: str,
    members: Sequence[str],
    done: Callable[[PoolSurvey], bool],
    facts: PoolFacts,
    timeout: float,
    poll: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[PoolSurvey, int]:
    """Read the pool until ``done`` or past ``timeout``; the last reading either way, and the count."""
    deadline = clock() + timeout
    reads = 0
    while True:
        survey = survey_pool(driver, pool, product, members, facts)
        reads += 1
        left = deadline - clock()
        if done(survey) or left <= 0:
            return survey, reads
        sleep(max(0.0, min(poll, left)))


def _failed(
    driver: PoolDriver,
    operation: str,
    cmdlet: str,
    error: OcspsError,
    before: PoolSurvey,
    via: str,
    call: MemberCall,
    script: RenderedScript,
    facts: PoolFacts,
    start: float,
    clock: Callable[[], float],
) -> RecoveryResult:
    """The server answered the call with an error: read the pool once more and say what it looks like."""
    after = survey_pool(driver, before.pool, before.product, [m.host for m in before.members], facts)
    return RecoveryResult(
        before.pool,
        operation,
        RecoveryOutcome.FAILED,
        f"{cmdlet} failed on {via}: {error.message}; now: {_describe(after)}",
        before,
        after,
        via,
        call,
        None,
        script,
        waited=clock() - start,
        reads=2,
    )


Approve = Callable[[PoolSurvey, MemberCall, str], bool]
"""Asked just before sending, with the reading, the exact call and the member it will run on."""


# ------------------------------------------------------------------------------------------ start
def start_pool(
    driver: RecoveryDriver,
    pool: str,
    product: Product,
    members: Sequence[str],
    *,
    skip_servers: Sequence[str] = (),
    quorum_loss_recovery: bool = False,
    approve: Approve | None = None,
    dry_run: bool = False,
    call_timeout: float = 1800.0,
    wait: float | None = None,
    poll: float | None = None,
    facts: PoolFacts | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RecoveryResult:
    """Start ``pool`` with Start-CsPool unless every member (but the skipped ones) is already up.

    ``members``: every member, in topology order. ``approve`` is asked with the reading and the call just
    before sending; False leaves the pool as it was (``declined``). After the call the pool is read every
    ``poll`` seconds until the members that were not skipped are up, for ``wait`` seconds at most.
    """
    f = facts or load_pool_facts()
    call = start_call(pool, skip_servers, quorum_loss_recovery)
    script = render_call(call, product)  # refuses Lync Server 2013 and older before anything is read
    names = _members(pool, members, skip_servers)
    start = clock()
    before = survey_pool(driver, pool, product.id, names, f)
    notes: list[str] = []
    if _is_up(before, skip_servers):
        if before.fabric is not None and before.fabric.missing:
            notes.append(
                "every member is up but routing groups report missing replicas: that is a routing-group "
                f"quorum loss (ocsps pool recover --pool {pool}), not a stopped pool"
            )
        return RecoveryResult(
            pool,
            "start",
            RecoveryOutcome.ALREADY_STARTED,
            f"{pool} is already started ({_describe(before)}): Start-CsPool was not sent",
            before,
            call=call,
            script=script,
            notes=tuple(notes),
            waited=clock() - start,
            reads=1,
        )
    via = _via(before)
    if before.readiness is not None and before.spare is not None and before.spare >= 0:
        notes.append(
            f"{pool} is running with {len(before.down)} member(s) down: Start-CsPool starts those; for one "
            "server under maintenance, bring it back the way it left (ocsps pool maintain --resume)"
        )
    if dry_run:
        return RecoveryResult(
            pool,
            "start",
            RecoveryOutcome.DRY_RUN,
            f"{_describe(before)}: would send Start-CsPool on {via}",
            before,
            via=via,
            call=call,
            script=script,
            notes=tuple(notes),
            reads=1,
        )
    if approve is not None and not approve(before, call, via):
        return RecoveryResult(
            pool,
            "start",
            RecoveryOutcome.DECLINED,
            "not confirmed: nothing was sent",
            before,
            via=via,
            call=call,
        )
    try:
        answer = driver.start_pool(via, pool, tuple(skip_servers), quorum_loss_recovery, call_timeout)
    except (RemoteError, OperationFailed) as exc:  # the server answered: it refused or failed
        return _failed(driver, "start", "Start-CsPool", exc, before, via, call, script, f, start, clock)
    after, reads = _wait(
        driver,
        pool,
        product.id,
        names,
        lambda s: _is_up(s, skip_servers),
        f,
        f.defaults.drain_timeout if wait is None else wait,
        f.defaults.service_poll if poll is None else poll,
        clock,
        sleep,
    )
    if _is_up(after, skip_servers):
        outcome, reason = RecoveryOutcome.STARTED, f"{pool} started: {_describe(after)}"
        if after.fabric is not None and after.fabric.missing:
            notes.append(
                f"routing groups still report missing replicas: consider ocsps pool recover --pool {pool}"
            )
    else:
        down = [m.host for m in after.members if m.condition is not Condition.UP]
        outcome = RecoveryOutcome.STILL_DOWN
        reason = (
            f"Start-CsPool ran on {via}, but {pool} is not up: {_describe(after)}; down: {', '.join(down)}"
        )
    return RecoveryResult(
        pool,
        "start",
        outcome,
        reason,
        before,
        after,
        via,
        call,
        answer,
        script,
        tuple(notes) + tuple(f"warning from {via}: {w}" for w in answer.warnings),
        clock() - start,
        reads + 1,
    )


# ------------------------------------------------------------------------------------------ recover
def recover_pool(
    driver: RecoveryDriver,
    pool: str,
    product: Product,
    members: Sequence[str],
    *,
    approve: Approve | None = None,
    dry_run: bool = False,
    call_timeout: float = 1800.0,
    wait: float | None = None,
    poll: float | None = None,
    facts: PoolFacts | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RecoveryResult:
    """Run Reset-CsPoolRegistrarState -ResetType QuorumLossRecovery unless the pool shows nothing to recover.

    Nothing to recover means: every member up and the fabric state read with no missing replicas. A pool
    that cannot be read (every member down, say) is not proof of health, so the call is offered then, as
    Microsoft's guidance for a two-server pool brought back in the wrong order requires. After the call the
    pool is read until every member is up and no replica is missing, for ``wait`` seconds at most.
    """
    f = facts or load_pool_facts()
    call = recover_call(pool)
    script = render_call(call, product)  # refuses products before Lync Server 2013
    names = _members(pool, members, ())
    start = clock()
    before = survey_pool(driver, pool, product.id, names, f)
    if _recovered(before):
        return RecoveryResult(
            pool,
            "recover",
            RecoveryOutcome.NOTHING_TO_RECOVER,
            f"{pool} shows no quorum loss ({_describe(before)}): Reset-CsPoolRegistrarState was not sent",
            before,
            call=call,
            script=script,
            waited=clock() - start,
            reads=1,
        )
    via = _via(before)
    notes: list[str] = []
    if before.rule is not None and (before.spare or 0) < 0:
        notes.append(
            f"the pool is below its functional quorum ({before.rule.describe()}): start enough servers; "
            "a recovery reloads routing groups, it does not replace running servers"
        )
    if dry_run:
        return RecoveryResult(
            pool,
            "recover",
            RecoveryOutcome.DRY_RUN,
            f"{_describe(before)}: would send Reset-CsPoolRegistrarState (QuorumLossRecovery) on {via}",
            before,
            via=via,
            call=call,
            script=script,
            notes=tuple(notes),
            reads=1,
        )
    if approve is not None and not approve(before, call, via):
        return RecoveryResult(
            pool,
            "recover",
            RecoveryOutcome.DECLINED,
            "not confirmed: nothing was sent",
            before,
            via=via,
            call=call,
        )
    try:
        answer = driver.reset_registrar(via, pool, call_timeout)
    except (RemoteError, OperationFailed) as exc:  # the server answered: it refused or failed
        cmdlet = "Reset-CsPoolRegistrarState"
        return _failed(driver, "recover", cmdlet, exc, before, via, call, script, f, start, clock)
    after, reads = _wait(
        driver,
        pool,
        product.id,
        names,
        _recovered,
        f,
        f.defaults.drain_timeout if wait is None else wait,
        f.defaults.service_poll if poll is None else poll,
        clock,
        sleep,
    )
    if _recovered(after):
        outcome, reason = RecoveryOutcome.RECOVERED, f"{pool} recovered: {_describe(after)}"
    else:
        outcome = RecoveryOutcome.STILL_DOWN
        reason = f"Reset-CsPoolRegistrarState ran on {via}, but {pool} is not healthy: {_describe(after)}"
    return RecoveryResult(
        pool,
        "recover",
        outcome,
        reason,
        before,
        after,
        via,
        call,
        answer,
        script,
        tuple(notes) + tuple(f"warning from {via}: {w}" for w in answer.warnings),
        clock() - start,
        reads + 1,
    )
