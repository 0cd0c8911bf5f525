"""One pool member at a time: take it out, bring it back, wait until the pool is Ready again.

``RollEngine`` walks a whole roll and keeps its own resumable state; schedulers that already hand out one
server at a time (a playbook with ``serial: 1``, a change calendar) need the same safety rules per call
instead. Each function here reads first and decides from what it read: a member already out is not sent
anything again, a take-out that would break quorum, or one asked of a pool that is not Ready or reports
missing replicas, is refused with the reason before anything is sent. The method is the product's own
(failover on Skype for Business Server, a graceful drain on Lync Server 2013), and every wait has a
deadline. Clock and sleep are injected, as for the engine, so that the rules are tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import msgspec

from ocsps.catalog import Product
from ocsps.errors import ConnectError, OperationFailed, TimeoutExceeded, UsageError
from ocsps.pool.driver import PoolDriver
from ocsps.pool.facts import Method, PoolFacts, Verdict, load_pool_facts
from ocsps.pool.model import (
    Condition,
    MemberState,
    MemberStateDocument,
    PoolReadiness,
    PoolReadinessDocument,
)
from ocsps.pool.plan import Gate, GateVerdict, RollOptions, gate_decision
from ocsps.pool.quorum import QuorumVerdict, may_take_down
from ocsps.pool.survey import PoolSurvey, survey_pool

__all__ = [
    "MemberCall",
    "MemberResult",
    "MemberResultDocument",
    "PoolRefused",
    "ReadyResult",
    "ReadyResultDocument",
    "bring_back",
    "take_out",
    "wait_ready",
]


class PoolRefused(OperationFailed):
    """The pool's state forbids the operation now; nothing was sent. ``survey`` is what was read."""

    def __init__(self, message: str, *, survey: PoolSurvey | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.survey = survey


@dataclass(frozen=True)
class MemberCall:
    """A state-changing call, as sent (or, in a dry run, as it would be sent)."""

    action: str
    values: dict[str, object]


@dataclass(frozen=True)
class MemberResult:
    """What ``take_out`` or ``bring_back`` found, did and left behind."""

    pool: str
    member: str
    operation: str  # "take-out" | "bring-back"
    method: Method
    changed: bool
    before: MemberState
    after: MemberState
    calls: tuple[MemberCall, ...] = ()
    quorum: QuorumVerdict | None = None
    readiness: PoolReadiness | None = None
    reason: str = ""
    dry_run: bool = False
    waited: float = 0.0


class MemberResultDocument(msgspec.Struct):
    """A take-out or bring-back as ``pool_member`` returns it: the member before and after, what was sent."""

    pool: str
    member: str
    operation: str
    method: Method
    changed: bool
    dry_run: bool
    before: MemberStateDocument
    after: MemberStateDocument
    calls: tuple[MemberCall, ...]
    quorum: QuorumVerdict | None
    readiness: PoolReadinessDocument | None
    reason: str
    waited: float

    @classmethod
    def of(cls, result: MemberResult) -> MemberResultDocument:
        r = result
        return cls(
            r.pool,
            r.member,
            r.operation,
            r.method,
            r.changed,
            r.dry_run,
            MemberStateDocument.of(r.before),
            MemberStateDocument.of(r.after),
            r.calls,
            r.quorum,
            PoolReadinessDocument.of(r.readiness) if r.readiness else None,
            r.reason,
            round(r.waited, 3),
        )


@dataclass(frozen=True)
class ReadyResult:
    """A readiness wait that passed: the pool answered Ready and kept answering it for ``stable_for``."""

    pool: str
    via: str
    state: str
    stable_for: float
    reads: int
    busy: int
    waited: float
    readings: tuple[str, ...] = field(default_factory=tuple)
    reason: str = ""


class ReadyResultDocument(msgspec.Struct):
    """A passed readiness wait as ``pool_wait_ready`` returns it (the wait in milliseconds' precision)."""

    pool: str
    via: str
    state: str
    stable_for: float
    reads: int
    busy: int
    waited: float
    readings: tuple[str, ...]
    reason: str

    @classmethod
    def of(cls, result: ReadyResult) -> ReadyResultDocument:
        r = result
        return cls(
            r.pool, r.via, r.state, r.stable_for, r.reads, r.busy, round(r.waited, 3), r.readings, r.reason
        )


# ------------------------------------------------------------------------------------------- helpers
def _member_of(members: Sequence[str], member: str, pool: str) -> str:
    if len({m.casefold() for m in members}) != len(members):
        raise UsageError(f"pool {pool}: a server is listed twice")
    found = next((m for m in members if m.casefold() == member.casefold()), None)
    if found is None:
        raise UsageError(f"{member} is not a member of {pool}; members: {', '.join(members) or 'none'}")
    return found


def _method(product: Product, facts: PoolFacts) -> Method:
    return facts.roll_for(product).method


def _is_out(member: MemberState, method: Method) -> bool:
    """The engine's rule: a drained server has every service stopped; a failed-over one its Front End."""
    if method is Method.DRAIN:
        return member.all_stopped
    return member.condition is Condition.DOWN


def _reachable(member: MemberState) -> MemberState:
    if member.error:
        raise ConnectError(f"cannot read the services of {member.host}: {member.error}")
    return member


def _options(options: RollOptions | None, facts: PoolFacts) -> RollOptions:
    return options or RollOptions.defaults(facts)


def _wait_member(
    driver: PoolDriver,
    host: str,
    done: Callable[[MemberState], bool],
    what: str,
    timeout: float,
    poll: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    first: MemberState | None = None,
) -> MemberState:
    """Poll ``host`` until ``done``; ``first`` is a reading already in hand. Past the deadline: raise."""
    deadline = clock() + timeout
    while True:
        member, first = first or driver.member(host), None
        if done(member):
            return member
        left = deadline - clock()
        if left <= 0:
            state = member.error or member.condition.value
            raise TimeoutExceeded(
                f"{host} did not {what} the pool within {timeout:g}s ({state}); nothing more was sent",
                hint="read the pool (pool_info / ocsps pool status) and call again to keep waiting",
            )
        sleep(max(0.0, min(poll, left)))


# ------------------------------------------------------------------------------------------ take out
def take_out(
    driver: PoolDriver,
    pool: str,
    product: Product,
    members: Sequence[str],
    member: str,
    *,
    options: RollOptions | None = None,
    facts: PoolFacts | None = None,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> MemberResult:
    """Take ``member`` out of ``pool`` (``members``: every member, in topology order) and wait until it
    is out, or refuse with the reason before anything is sent.

    A member already out: nothing sent, ``changed`` false. A member already leaving: nothing sent, the
    wait only. Otherwise the pool must be Ready (the member's upgrade domain too), report no missing
    replicas, and keep quorum with this member down. ``dry_run`` decides the same way and returns the
    call that would be sent, without sending it or waiting.
    """
    f = facts or load_pool_facts()
    opts = _options(options, f)
    method = _method(product, f)
    name = _member_of(members, member, pool)
    start = clock()
    before = _reachable(driver.member(name))
    if _is_out(before, method):
        return MemberResult(
            pool,
            name,
            "take-out",
            method,
            False,
            before,
            before,
            reason=f"{name} is already out of {pool}",
            dry_run=dry_run,
        )
    if before.condition is Condition.CHANGING and (method is Method.FAILOVER or before.draining):
        if dry_run:
            reason = f"{name} is already leaving {pool}: nothing would be sent, only waited for"
            return MemberResult(
                pool, name, "take-out", method, False, before, before, reason=reason, dry_run=True
            )
        after = _wait_member(
            driver,
            name,
            lambda m: _is_out(m, method),
            "leave",
            opts.drain_timeout,
            opts.service_poll,
            clock,
            sleep,
            before,
        )
        reason = f"{name} was already leaving {pool}: nothing sent, waited until it was out"
        return MemberResult(
            pool, name, "take-out", method, False, before, after, reason=reason, waited=clock() - start
        )
    survey = survey_pool(driver, pool, product.id, members, f)
    readiness, verdict = _check_take_out(survey, name, opts, f, clock())
    call = _take_out_call(name, method, opts)
    if dry_run:
        reason = f"{verdict.reason}; would send {call.action}"
        return MemberResult(
            pool, name, "take-out", method, True, before, before, (call,), verdict, readiness, reason, True
        )
    first: MemberState | None = None
    if method is Method.FAILOVER:
        driver.failover(name, opts.wait_time, opts.draining_timeout, opts.force_failover)
    else:
        first = driver.drain(name)
    after = _wait_member(
        driver,
        name,
        lambda m: _is_out(m, method),
        "leave",
        opts.drain_timeout,
        opts.service_poll,
        clock,
        sleep,
        first if isinstance(first, MemberState) else None,
    )
    how = "failed over" if method is Method.FAILOVER else "drained"
    return MemberResult(
        pool,
        name,
        "take-out",
        method,
        True,
        before,
        after,
        (call,),
        verdict,
        readiness,
        f"{name} {how}: it is out of {pool}",
        waited=clock() - start,
    )


def _take_out_call(name: str, method: Method, opts: RollOptions) -> MemberCall:
    if method is Method.DRAIN:
        return MemberCall("pool-drain-server", {"ComputerName": name, "NoWait": True})
    values: dict[str, object] = {"ComputerName": name, "WaitTimeSeconds": round(opts.wait_time)}
    if opts.draining_timeout:
        values["DrainingTimeoutSeconds"] = round(opts.draining_timeout)
    if opts.force_failover:
        values["Force"] = True
    return MemberCall("pool-failover", values)


def _check_take_out(
    survey: PoolSurvey, name: str, opts: RollOptions, facts: PoolFacts, now: float
) -> tuple[PoolReadiness, QuorumVerdict]:
    """Readiness (one reading through the roll's own gate, no stability time), fabric, then quorum."""
    pool = survey.pool
    unreachable = [m.host for m in survey.members if m.error]
    if survey.readiness is None:
        first = next(iter(survey.problems), "the pool's readiness could not be read")
        raise PoolRefused(f"{name} stays in {pool}: {first}", survey=survey)
    readiness = survey.readiness
    if readiness.pool and readiness.pool.casefold() != pool.casefold():
        raise PoolRefused(f"{survey.via} belongs to pool {readiness.pool}, not {pool}", survey=survey)
    decision = gate_decision(Gate(0.0), readiness, now, opts, facts, (name,))
    if decision.verdict is not GateVerdict.PASS:
        domain = readiness.domain_of(name)
        if facts.verdict(readiness.state) is Verdict.READY and domain is not None and domain.ready is False:
            why = f"its upgrade domain {domain.name} is not ready for upgrade"
        else:
            why = f"the pool answers {readiness.state!r}, not {facts.ready_state!r}"
        raise PoolRefused(
            f"{name} stays in {pool}: {why}",
            survey=survey,
            hint="wait until the pool is Ready (pool_wait_ready / ocsps pool status), then try again",
        )
    if survey.fabric is None:
        raise PoolRefused(
            f"{name} stays in {pool}: the Windows Fabric state could not be read", survey=survey
        )
    if survey.fabric.missing:
        raise PoolRefused(
            f"{name} stays in {pool}: the Windows Fabric reports missing replicas "
            f"({survey.fabric.missing[0]})",
            survey=survey,
            hint=f"recover first, e.g. {facts.recovery_for(pool)}",
        )
    if survey.rule is None:
        raise PoolRefused(f"{name} stays in {pool}: {survey.problems[0]}", survey=survey)
    members = [m.host for m in survey.members]
    verdict = may_take_down(members, survey.down, name, survey.rule)
    if not verdict.allowed:
        suffix = f" (unreachable counts as down: {', '.join(unreachable)})" if unreachable else ""
        raise PoolRefused(f"{name} stays in {pool}: {verdict.reason}{suffix}", survey=survey)
    return readiness, verdict


# ---------------------------------------------------------------------------------------- bring back
def bring_back(
    driver: PoolDriver,
    pool: str,
    product: Product,
    members: Sequence[str],
    member: str,
    *,
    options: RollOptions | None = None,
    facts: PoolFacts | None = None,
    dry_run: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> MemberResult:
    """Bring ``member`` back into ``pool`` (failback, or start every service) and wait until its Front End
    runs. A member already up: nothing sent, ``changed`` false. A member still leaving is refused: bringing
    it back half-way would race the server's own drain."""
    f = facts or load_pool_facts()
    opts = _options(options, f)
    method = _method(product, f)
    name = _member_of(members, member, pool)
    start = clock()
    before = _reachable(driver.member(name))
    if before.condition is Condition.UP:
        return MemberResult(
            pool,
            name,
            "bring-back",
            method,
            False,
            before,
            before,
            reason=f"{name} is already in {pool}",
            dry_run=dry_run,
        )
    if before.condition is Condition.CHANGING and before.draining and not _is_out(before, method):
        raise PoolRefused(
            f"{name} is still leaving {pool} (services draining); bring it back once it is out",
            hint="wait for the take-out to finish (pool_member state=out waits for it)",
        )
    if before.condition is Condition.CHANGING:
        if dry_run:
            reason = f"{name} is already coming back: nothing would be sent, only waited for"
            return MemberResult(
                pool, name, "bring-back", method, False, before, before, reason=reason, dry_run=True
            )
        after = _wait_member(
            driver,
            name,
            lambda m: m.condition is Condition.UP,
            "come back to",
            opts.drain_timeout,
            opts.service_poll,
            clock,
            sleep,
            before,
        )
        reason = f"{name} was already coming back: nothing sent, waited until it was up"
        return MemberResult(
            pool, name, "bring-back", method, False, before, after, reason=reason, waited=clock() - start
        )
    if method is Method.FAILOVER:
        call = MemberCall("pool-failback", {"ComputerName": name, "WaitTimeSeconds": round(opts.wait_time)})
    else:
        call = MemberCall("pool-start-server", {"ComputerName": name})
    if dry_run:
        return MemberResult(
            pool,
            name,
            "bring-back",
            method,
            True,
            before,
            before,
            (call,),
            reason=f"{name} is out of {pool}: would send {call.action}",
            dry_run=True,
        )
    first: MemberState | None = None
    if method is Method.FAILOVER:
        driver.failback(name, opts.wait_time)
    else:
        first = driver.start(name)
    after = _wait_member(
        driver,
        name,
        lambda m: m.condition is Condition.UP,
        "come back to",
        opts.drain_timeout,
        opts.service_poll,
        clock,
        sleep,
        first if isinstance(first, MemberState) else None,
    )
    how = "failed back" if method is Method.FAILOVER else "started"
    return MemberResult(
        pool,
        name,
        "bring-back",
        method,
        True,
        before,
        after,
        (call,),
        reason=f"{name} {how}: it is back in {pool}",
        waited=clock() - start,
    )


# ---------------------------------------------------------------------------------------- wait ready
def wait_ready(
    driver: PoolDriver,
    pool: str,
    members: Sequence[str],
    *,
    stable_for: float | None = None,
    options: RollOptions | None = None,
    facts: PoolFacts | None = None,
    next_servers: Collection[str] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReadyResult:
    """The roll's readiness wait, alone: Ready must hold ``stable_for`` (default: the options'), Busy is
    counted and ``max_busy`` of them stop, any other state stops at once (``PoolRefused``). The number of
    reads is bounded by the same rules as the roll's, so the wait always ends."""
    f = facts or load_pool_facts()
    opts = _options(options, f)
    if not members:
        raise UsageError(f"pool {pool}: no members given")
    stable = opts.stable_for if stable_for is None else stable_for
    if stable < 0:
        raise UsageError("stable_for cannot be negative")
    via = next((m for m in members if driver.member(m).condition is Condition.UP), None)
    if via is None:
        raise PoolRefused(
            f"no member of {pool} is up to read its readiness",
            hint="bring a member back (pool_member state=in) first",
        )
    start = clock()
    gate = Gate(stable)
    readings: list[str] = []
    watch = getattr(driver, "watch_readiness", None)
    if callable(watch):
        return _wait_ready_watched(watch, pool, via, gate, opts, f, next_servers, clock)
    while True:
        readiness = driver.readiness(via)
        if readiness.pool and readiness.pool.casefold() != pool.casefold():
            raise PoolRefused(f"{via} belongs to pool {readiness.pool}, not {pool}")
        readings.append(readiness.state)
        decision = gate_decision(gate, readiness, clock(), opts, f, next_servers)
        gate = decision.gate
        if decision.verdict is GateVerdict.PASS:
            return ReadyResult(
                pool,
                via,
                readiness.state,
                stable,
                gate.reads,
                gate.busy,
                clock() - start,
                tuple(readings),
                decision.reason,
            )
        if decision.verdict is GateVerdict.STOP:
            raise PoolRefused(f"{pool} is not ready: {decision.reason}")
        sleep(decision.wait)


class _Decided(Exception):
    """Raised from a reading that settles the wait: it stops the readiness watch's pipeline."""

    def __init__(self, result: ReadyResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass
class _WatchState:
    gate: Gate
    due: float
    """When the gate wants its next reading (monotonic clock)."""
    began: float
    """When the current watch was started: its readings are timed from there by the server's clock."""


WATCH_ROUNDS = 3
"""Readiness watches one wait may start: each runs to the longest the gate can wait, so a second or
third is only needed when the server's loop ended early; one that keeps ending early is given up on."""


def _wait_ready_watched(
    watch: Callable[..., None],
    pool: str,
    via: str,
    gate: Gate,
    opts: RollOptions,
    facts: PoolFacts,
    next_servers: Collection[str],
    clock: Callable[[], float],
) -> ReadyResult:
    """``wait_ready`` over one streaming pipeline: the member writes a reading every poll, this side
    only receives (one request per reading instead of three) and applies the same gate to each reading
    that is due, timed by when the server took it. A reading taken before the gate wanted the next one
    (the server reads at the Ready poll, a Busy answer asks to wait longer) is skipped, so Busy answers
    count as in the polled wait."""
    start = clock()
    poll = max(opts.ready_poll, 0.001)
    # The longest the gate can take: every Busy answer but the last, each after a Ready stretch just short
    # of stable, then Ready held; the server's loop is bounded by it (plus a poll).
    longest = opts.max_busy * (opts.busy_interval + gate.stable_for + poll) + gate.stable_for + 2 * poll
    readings: list[str] = []
    state = _WatchState(gate, start, start)

    def on_reading(readiness: PoolReadiness, taken: float) -> None:
        now = state.began + taken  # when it was read: readings may arrive together in one reply
        if now < state.due - poll / 2:
            return  # not due: the gate asked to wait longer than the server's poll
        if readiness.pool and readiness.pool.casefold() != pool.casefold():
            raise PoolRefused(f"{via} belongs to pool {readiness.pool}, not {pool}")
        readings.append(readiness.state)
        decision = gate_decision(state.gate, readiness, now, opts, facts, next_servers)
        state.gate = decided = decision.gate
        if decision.verdict is GateVerdict.PASS:
            raise _Decided(
                ReadyResult(
                    pool,
                    via,
                    readiness.state,
                    decided.stable_for,
                    decided.reads,
                    decided.busy,
                    clock() - start,
                    tuple(readings),
                    decision.reason,
                )
            )
        if decision.verdict is GateVerdict.STOP:
            raise PoolRefused(f"{pool} is not ready: {decision.reason}")
        state.due = now + decision.wait

    for _ in range(WATCH_ROUNDS):
        state.began = clock()
        try:
            watch(
                via,
                poll=poll,
                until=longest,
                on_reading=on_reading,
                busy_state=facts.busy_state,
                busy_poll=opts.busy_interval,
            )
        except _Decided as done:
            return done.result
    raise PoolRefused(
        f"{pool}: the readiness watch on {via} ended {WATCH_ROUNDS} times before the wait was decided"
    )
