"""Running one operation on many servers: in parallel for independent work, or rolling one at a time.

A failing host never hides the others: every host ends with an outcome (ok, failed, skipped, interrupted)
and the step it reached, so an administrator knows what state the estate is in after any stop. Reads run
in parallel; state changes run one host at a time unless the caller asks for a width (``run_changes``):
taking every Mediation server out of service at once must be a decision, never a default.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

import msgspec

from ocsps.errors import OcspsError, UsageError

T = TypeVar("T")
DEFAULT_PARALLEL = 16
"""Hosts read at once; state changes default to one at a time."""


class HostState(StrEnum):
    """How one host ended. A ``StrEnum``, so ``outcome.state == "ok"`` and the JSON text stay as they were."""

    PENDING = "pending"  # never reached an end (only seen while a run is under way)
    OK = "ok"  # the work returned and the judge accepted its result
    FAILED = "failed"  # the work raised, or the judge refused its result
    SKIPPED = "skipped"  # not tried (an earlier failure, a deadline), or the work raised ``Skip``
    INTERRUPTED = "interrupted"  # cancelled (Ctrl-C or the cancel event) before it could end by itself


class Skip(Exception):
    """Raised by a host's work to report the host as ``skipped`` with ``reason`` (in ``outcome.step``).

    For a host the work decides not to touch (a preflight that fails, nothing to do): a skip is not a
    failure, so a one-at-a-time run goes on with the next host.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class HostOutcome(Generic[T]):
    """One host's end: its state, the work's result, and the exception that ended it, if one did."""

    host: str
    state: HostState = HostState.PENDING
    result: T | None = None
    error: str = ""
    """The exception's one-line message (``OcspsError.message``), or why the judge refused the result."""
    exit_code: int = 0
    step: str = ""
    """Where the host got to, or why it was skipped."""
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    """The exception the work raised (``Skip`` included), kept so that a caller can tell its class."""

    def __post_init__(self) -> None:
        self.state = HostState(self.state)  # the plain strings of earlier versions are still accepted


class HostDocument(msgspec.Struct, omit_defaults=True):
    """One host of a fleet report as ``--json`` writes it: no error or result key when there is none.

    ``view`` turns the work's result into its document (for example ``RestartReportDocument.of``);
    without it the result is written as it is.
    """

    host: str
    state: HostState
    step: str
    error: str = ""
    result: Any = None

    @classmethod
    def of(cls, outcome: HostOutcome[T], view: Callable[[T], object] | None = None) -> HostDocument:
        result = outcome.result
        shown = None if result is None else (view(result) if view is not None else result)
        return cls(outcome.host, outcome.state, outcome.step, outcome.error, shown)


Work = Callable[[str, threading.Event], T]
Judge = Callable[[T], bool]
OutcomeCallback = Callable[[HostOutcome[T]], None]
"""Hears each host's outcome as it ends, in the thread that called the run (never two at once)."""


@dataclass
class FleetRun(Generic[T]):
    outcomes: list[HostOutcome[T]]
    interrupted: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    deadline_passed: bool = False
    """The run's ``deadline`` passed: hosts at work were told to stop, hosts not started were skipped."""

    @property
    def failed(self) -> list[HostOutcome[T]]:
        return [o for o in self.outcomes if o.state is HostState.FAILED]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.deadline_passed:
            return 4
        codes = [o.exit_code for o in self.outcomes if o.state is HostState.FAILED]
        if not codes:
            return 0
        return 1 if 1 in codes or len(set(codes)) > 1 else codes[0]


def _record(outcome: HostOutcome[T], work: Work[T], judge: Judge[T], run: FleetRun[T]) -> None:
    cancel = run.cancel
    if cancel.is_set():  # stopped before this host's turn came: its work is never called
        if run.deadline_passed:
            outcome.state, outcome.step = HostState.SKIPPED, "deadline reached before this host"
        else:
            outcome.state = HostState.INTERRUPTED
        return
    try:
        outcome.result = work(outcome.host, cancel)
        if judge(outcome.result):
            outcome.state = HostState.OK
        elif cancel.is_set():
            outcome.state, outcome.exit_code = HostState.INTERRUPTED, 130
        else:
            outcome.state, outcome.exit_code = HostState.FAILED, 1
    except Skip as exc:
        outcome.state, outcome.exception = HostState.SKIPPED, exc
        outcome.step = outcome.step or exc.reason
    except OcspsError as exc:
        outcome.exception, outcome.error = exc, exc.message
        if cancel.is_set():
            outcome.state, outcome.exit_code = HostState.INTERRUPTED, 130
        else:
            outcome.state, outcome.exit_code = HostState.FAILED, exc.exit_code
    except Exception as exc:  # a bug must still leave this host reported, never silently pending
        outcome.state, outcome.exit_code, outcome.exception = HostState.FAILED, 1, exc
        outcome.error = f"internal error: {exc.__class__.__name__}: {exc}"


class _Deadline:
    """The run's deadline: when it passes, the hosts at work are told to stop through ``cancel``."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds is not None and not seconds > 0:
            raise UsageError(f"deadline must be a positive number of seconds, not {seconds!r}")
        self.clock = clock
        self.end = None if seconds is None else clock() + seconds

    def tick(self, run: FleetRun[T]) -> float:
        """Seconds to wait before looking again; sets the run's cancel once the deadline has passed."""
        if self.end is None:
            return 0.2
        left = self.end - self.clock()
        if left <= 0 and not run.deadline_passed:
            run.deadline_passed = True
            run.cancel.set()
        return min(0.2, max(left, 0.01))


def _tell(on_outcome: OutcomeCallback[T] | None, outcome: HostOutcome[T], run: FleetRun[T]) -> None:
    if on_outcome is None:
        return
    try:
        on_outcome(outcome)
    except BaseException:
        run.cancel.set()  # the caller's callback failed: the other hosts stop too, then it propagates
        raise


def _settle_rest(run: FleetRun[T], told: set[int], on_outcome: OutcomeCallback[T] | None) -> None:
    """Hosts that never ended by themselves: interrupted after a cancel, otherwise skipped.

    A cancel from the caller (not the run's own deadline) that stopped a host makes the whole run
    interrupted (exit 130); one set after every host had ended changes nothing.
    """
    unfinished = (HostState.PENDING, HostState.INTERRUPTED)
    if run.cancel.is_set() and not run.deadline_passed and any(o.state in unfinished for o in run.outcomes):
        run.interrupted = True
    for outcome in run.outcomes:
        if outcome.state is HostState.PENDING:
            outcome.state = HostState.INTERRUPTED if run.interrupted else HostState.SKIPPED
            if run.deadline_passed and not outcome.step:
                outcome.step = "deadline reached before this host"
    for outcome in run.outcomes:
        if id(outcome) not in told:
            told.add(id(outcome))
            _tell(on_outcome, outcome, run)


def _ended(ended: queue.SimpleQueue[Future[None]], timeout: float) -> list[Future[None]]:
    """The futures that ended: waits up to ``timeout`` for the first, then takes those already there."""
    try:
        done = [ended.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            done.append(ended.get_nowait())
        except queue.Empty:
            return done


def run_parallel(
    hosts: Sequence[str],
    work: Work[T],
    *,
    parallel: int = DEFAULT_PARALLEL,
    judge: Judge[T] = lambda _: True,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
    on_outcome: OutcomeCallback[T] | None = None,
) -> FleetRun[T]:
    """Run ``work`` for every host with at most ``parallel`` at once; Ctrl-C stops waiting, not reporting.

    ``work(host, cancel)`` returns the host's result (judged by ``judge``), raises ``Skip`` to skip the
    host, or raises to fail it. ``cancel`` (set by the caller, by Ctrl-C or when ``deadline`` seconds
    have passed) is handed to every work call: a work that ends because of it is reported
    ``interrupted``. Cancellation is cooperative: the work observes the event between its remote calls,
    and a remote call under way runs to its own timeout. ``on_outcome`` hears each host as it ends.
    """
    run: FleetRun[T] = FleetRun([HostOutcome(h) for h in hosts], cancel=cancel or threading.Event())
    clock = _Deadline(deadline)
    told: set[int] = set()
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(parallel, len(hosts) or 1)), thread_name_prefix="ocsps-host"
    )
    # Each host's future reports itself here when it ends (or is cancelled): waiting on the set of
    # pending futures instead costs a pass over all of them per host that ends, quadratic in hosts.
    ended: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()
    futures: dict[Future[None], HostOutcome[T]] = {}
    for o in run.outcomes:
        future = pool.submit(_record, o, work, judge, run)
        futures[future] = o
        future.add_done_callback(ended.put)
    try:
        left = len(futures)
        while left:
            done = _ended(ended, clock.tick(run))
            if run.cancel.is_set():
                for future, outcome in futures.items():
                    if future.done():
                        continue
                    if future.cancel() and run.deadline_passed:
                        outcome.state = HostState.SKIPPED
                        outcome.step = "deadline reached before this host"
                    elif future.cancelled():
                        outcome.state = HostState.INTERRUPTED
            for future in done:
                left -= 1
                told.add(id(futures[future]))
                _tell(on_outcome, futures[future], run)
    except KeyboardInterrupt:
        run.interrupted = True
        run.cancel.set()
        for future, outcome in futures.items():
            if future.cancel():
                outcome.state = HostState.SKIPPED
        wait(set(futures), timeout=10)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    _settle_rest(run, told, on_outcome)
    return run


def run_rolling(
    hosts: Sequence[str],
    work: Work[T],
    *,
    judge: Judge[T] = lambda _: True,
    cancel: threading.Event | None = None,
    continue_on_failure: bool = False,
    deadline: float | None = None,
    on_outcome: OutcomeCallback[T] | None = None,
) -> FleetRun[T]:
    """One host at a time; by default the first failure stops the roll and the rest are reported skipped.

    With ``continue_on_failure`` every host is tried in turn whatever the others did; a ``Skip`` never
    stops the roll. The work runs in a worker thread so that Ctrl-C reaches the caller's thread: the host
    at work is told to stop (``cancel``) and reports its own last state (``interrupted``), as in
    ``run_parallel``; the hosts after it are ``interrupted`` too, never started. ``deadline`` (seconds,
    for the whole roll) sets ``cancel`` when it passes; hosts not started by then are ``skipped``.
    """
    run: FleetRun[T] = FleetRun([HostOutcome(h) for h in hosts], cancel=cancel or threading.Event())
    clock = _Deadline(deadline)
    told: set[int] = set()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocsps-host")
    try:
        for outcome in run.outcomes:
            clock.tick(run)
            if run.cancel.is_set():
                break
            future = pool.submit(_record, outcome, work, judge, run)
            try:
                while not future.done():
                    wait({future}, timeout=clock.tick(run))
            except KeyboardInterrupt:
                run.interrupted = True
                run.cancel.set()
                wait({future}, timeout=10)
                if outcome.state is HostState.PENDING:
                    outcome.state = HostState.INTERRUPTED
                break
            told.add(id(outcome))
            _tell(on_outcome, outcome, run)
            if outcome.state in (HostState.FAILED, HostState.INTERRUPTED) and not continue_on_failure:
                break
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    _settle_rest(run, told, on_outcome)
    return run


def change_width(parallel: int | None, *, rolling: bool = False) -> int | None:
    """The width a state change runs at: None (one at a time, stop at the first failure) unless asked.

    ``rolling`` is one host at a time by definition, so an explicit width above one contradicts it.
    """
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel must be at least 1, not {parallel}")
    if rolling and parallel is not None and parallel > 1:
        raise UsageError(
            f"--rolling works on one host at a time; --parallel {parallel} contradicts it: choose one"
        )
    return None if rolling else parallel


def run_changes(
    hosts: Sequence[str],
    work: Work[T],
    *,
    parallel: int | None = None,
    judge: Judge[T] = lambda _: True,
    cancel: threading.Event | None = None,
    continue_on_failure: bool = False,
    deadline: float | None = None,
    on_outcome: OutcomeCallback[T] | None = None,
) -> FleetRun[T]:
    """A state change on many hosts: one at a time (stopping at the first failure unless
    ``continue_on_failure``) unless ``parallel`` is given, in which case up to that many at once and
    every host is tried. ``cancel``, ``deadline`` and ``on_outcome`` are as in ``run_rolling``."""
    if parallel is None:
        return run_rolling(
            hosts,
            work,
            judge=judge,
            cancel=cancel,
            continue_on_failure=continue_on_failure,
            deadline=deadline,
            on_outcome=on_outcome,
        )
    return run_parallel(
        hosts, work, parallel=parallel, judge=judge, cancel=cancel, deadline=deadline, on_outcome=on_outcome
    )


def check_distinct_endpoints(endpoints: Sequence[tuple[str, str, int, str]]) -> None:
    """Refuse several hosts that would all be reached at the same address, port and path.

    Each entry is (host, address dialled, port, path). One ``connect_address`` given for several hosts
    makes one server answer for all of them; its answers would be reported (and audited) as theirs.
    """
    reached: dict[tuple[str, int, str], list[str]] = {}
    for host, address, port, path in endpoints:
        names = reached.setdefault((address.casefold(), port, path.strip("/").casefold()), [])
        if host.casefold() not in (n.casefold() for n in names):
            names.append(host)
    for (address, port, path), names in reached.items():
        if len(names) > 1:
            raise UsageError(
                f"{', '.join(names)} would all be reached at {address}:{port}/{path}: one connect_address "
                "answers for one host. Give each host its own connect_address (or port), or name one host"
            )
