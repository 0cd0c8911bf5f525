"""Running one operation on many servers: in parallel for independent work, or rolling one at a time.

A failing host never hides the others: every host ends with an outcome (ok, failed, skipped, interrupted)
and the step it reached, so an administrator knows what state the estate is in after any stop. Reads run
in parallel; state changes run one host at a time unless the caller asks for a width (``run_changes``):
taking every Mediation server out of service at once must be a decision, never a default.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ocsps.errors import OcspsError, UsageError

T = TypeVar("T")
DEFAULT_PARALLEL = 16
"""Hosts read at once; state changes default to one at a time."""


@dataclass
class HostOutcome(Generic[T]):
    host: str
    state: str = "pending"  # pending | ok | failed | skipped | interrupted
    result: T | None = None
    error: str = ""
    exit_code: int = 0
    step: str = ""

    def to_json(self, result_json: Callable[[T], object] | None = None) -> dict[str, object]:
        doc: dict[str, object] = {"host": self.host, "state": self.state, "step": self.step}
        if self.error:
            doc["error"] = self.error
        if self.result is not None and result_json is not None:
            doc["result"] = result_json(self.result)
        return doc


Work = Callable[[str, threading.Event], T]
Judge = Callable[[T], bool]


@dataclass
class FleetRun(Generic[T]):
    outcomes: list[HostOutcome[T]]
    interrupted: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def failed(self) -> list[HostOutcome[T]]:
        return [o for o in self.outcomes if o.state == "failed"]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        codes = [o.exit_code for o in self.outcomes if o.state == "failed"]
        if not codes:
            return 0
        return 1 if 1 in codes or len(set(codes)) > 1 else codes[0]


def _record(outcome: HostOutcome[T], work: Work[T], judge: Judge[T], cancel: threading.Event) -> None:
    try:
        outcome.result = work(outcome.host, cancel)
        outcome.state = "ok" if judge(outcome.result) else "failed"
        if outcome.state == "failed":
            outcome.exit_code = 1
    except OcspsError as exc:
        outcome.state, outcome.error, outcome.exit_code = "failed", exc.message, exc.exit_code
    except Exception as exc:  # a bug must still leave this host reported, never silently pending
        outcome.state, outcome.exit_code = "failed", 1
        outcome.error = f"internal error: {exc.__class__.__name__}: {exc}"


def run_parallel(
    hosts: Sequence[str],
    work: Work[T],
    *,
    parallel: int = DEFAULT_PARALLEL,
    judge: Judge[T] = lambda _: True,
    cancel: threading.Event | None = None,
) -> FleetRun[T]:
    """Run ``work`` for every host with at most ``parallel`` at once; Ctrl-C stops waiting, not reporting."""
    run: FleetRun[T] = FleetRun([HostOutcome(h) for h in hosts], cancel=cancel or threading.Event())
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(parallel, len(hosts) or 1)), thread_name_prefix="ocsps-host"
    )
    futures: dict[Future[None], HostOutcome[T]] = {
        pool.submit(_record, o, work, judge, run.cancel): o for o in run.outcomes
    }
    try:
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
    except KeyboardInterrupt:
        run.interrupted = True
        run.cancel.set()
        for future, outcome in futures.items():
            if future.cancel():
                outcome.state = "skipped"
        wait(set(futures), timeout=10)
        for outcome in run.outcomes:
            if outcome.state == "pending":
                outcome.state = "interrupted"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return run


def run_rolling(
    hosts: Sequence[str],
    work: Work[T],
    *,
    judge: Judge[T] = lambda _: True,
    cancel: threading.Event | None = None,
) -> FleetRun[T]:
    """One host at a time; the first failure stops the roll and the rest are reported as skipped.

    The work runs in a worker thread so that Ctrl-C reaches the caller's thread: the host at work is
    told to stop (``cancel``) and reports its own last state, as in ``run_parallel``.
    """
    run: FleetRun[T] = FleetRun([HostOutcome(h) for h in hosts], cancel=cancel or threading.Event())
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocsps-host")
    try:
        for outcome in run.outcomes:
            if run.cancel.is_set():
                break
            future = pool.submit(_record, outcome, work, judge, run.cancel)
            try:
                while not future.done():
                    wait({future}, timeout=0.2)
            except KeyboardInterrupt:
                run.interrupted = True
                run.cancel.set()
                wait({future}, timeout=10)
                if outcome.state == "pending":
                    outcome.state = "interrupted"
                break
            if outcome.state != "ok":
                break
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for outcome in run.outcomes:
        if outcome.state == "pending":
            outcome.state = "interrupted" if run.interrupted else "skipped"
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
) -> FleetRun[T]:
    """A state change on many hosts: one at a time (stopping at the first failure) unless ``parallel``
    is given, in which case up to that many at once and every host is tried."""
    if parallel is None:
        return run_rolling(hosts, work, judge=judge, cancel=cancel)
    return run_parallel(hosts, work, parallel=parallel, judge=judge, cancel=cancel)


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
