"""Running one operation on many servers: in parallel for independent work, or rolling one at a time.

A failing host never hides the others: every host ends with an outcome (ok, failed, skipped, interrupted)
and the step it reached, so an administrator knows what state the estate is in after any stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ocsps.errors import OcspsError

T = TypeVar("T")
DEFAULT_PARALLEL = 16


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
    """One host at a time; the first failure stops the roll and the rest are reported as skipped."""
    run: FleetRun[T] = FleetRun([HostOutcome(h) for h in hosts], cancel=cancel or threading.Event())
    try:
        for outcome in run.outcomes:
            if run.cancel.is_set():
                break
            _record(outcome, work, judge, run.cancel)
            if outcome.state != "ok":
                break
    except KeyboardInterrupt:
        run.interrupted = True
        run.cancel.set()
    for outcome in run.outcomes:
        if outcome.state == "pending":
            outcome.state = "interrupted" if run.interrupted else "skipped"
    return run
