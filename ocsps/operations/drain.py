"""Draining a service: ask for a graceful stop, watch it empty, confirm with events, own the deadline.

``Stop-CsWindowsService -Graceful`` documents no timeout, so ocsps sends it with ``-NoWait`` and does the
waiting itself: it polls status and activity until the service is Stopped, and at the deadline applies
the operator's ``then`` policy. What happened is reported as a ``DrainReport`` whatever the outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ocsps.errors import ConnectError, OcspsError, OutcomeUnknown, TimeoutExceeded
from ocsps.operations.change import DRAINING, STOPPING, DecisionCallback, ServiceControl, apply_change
from ocsps.results import EventRecord, ServiceState, ServiceStatus


class Then(StrEnum):
    """What to do when the drain deadline passes and the service still has sessions."""

    FORCE_STOP = "force-stop"
    FAIL = "fail"
    LEAVE = "leave"


class Phase(StrEnum):
    REQUESTED = "requested"
    DRAINING = "draining"
    STOPPED = "stopped"
    DEADLINE = "deadline"
    FORCED = "forced"
    LEFT_DRAINING = "left-draining"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


def decide(status: ServiceStatus, elapsed: float, timeout: float) -> str:
    """One poll's verdict: "done" once Stopped, "deadline" when time is up, else "wait"."""
    if status.status is ServiceState.STOPPED:
        return "done"
    if elapsed >= timeout:
        return "deadline"
    return "wait"


@dataclass
class DrainReport:
    host: str
    service: str
    phase: Phase = Phase.REQUESTED
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    polls: int = 0
    last: ServiceStatus | None = None
    events: list[EventRecord] = field(default_factory=list)
    then: Then | None = None
    note: str = ""
    error: str = ""
    decisions: list[str] = field(default_factory=list)
    """What was decided after a lost reply (re-read state, sent again or not), in order."""
    error_code: int = 0
    """The exit code of the error that ended the drain (0 if none): 3 when it could not connect before the
    drain was confirmed (nothing sent, or a request whose outcome is unknown), 4 when a deadline cut a
    call short, 1 otherwise."""

    @property
    def ok(self) -> bool:
        return self.phase in (Phase.STOPPED, Phase.FORCED, Phase.LEFT_DRAINING)

    @property
    def elapsed(self) -> float:
        end = self.finished or datetime.now(UTC)
        return (end - self.started).total_seconds()

    def event_times(self) -> dict[str, str]:
        return {str(e.id): e.time.isoformat() for e in self.events}

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "service": self.service,
            "phase": self.phase.value,
            "ok": self.ok,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "elapsed_seconds": round(self.elapsed, 3),
            "polls": self.polls,
            "status": self.last.status.value if self.last else None,
            "activity": self.last.activity.to_json() if self.last and self.last.activity else None,
            "then": self.then.value if self.then else None,
            "events": [e.to_json() for e in self.events],
            "note": self.note,
            "error": self.error,
            "decisions": list(self.decisions),
        }


UpdateCallback = Callable[[DrainReport], None]

MIN_POLL_READ = 5.0
"""Seconds a status poll may take, retries included, when the drain deadline is closer than that."""


def drain(
    server: ServiceControl,
    service: str,
    *,
    timeout: float,
    poll: float,
    then: Then = Then.FAIL,
    leave_running: tuple[str, ...] = (),
    wait: bool = True,
    on_update: UpdateCallback | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_decision: DecisionCallback | None = None,
) -> DrainReport:
    """Drain ``service`` on ``server`` and report; never raises for the drain's own outcome.

    A drain request or forced stop whose reply is lost is settled by ``apply_change`` (re-read, then
    decide); the decisions are in ``report.decisions`` and go to ``on_decision`` as they are made. Status
    polls get the time left before the deadline (at least ``MIN_POLL_READ``) for their retries, so a
    server that stops answering fails the drain, with the last status read, instead of holding the
    operator for the session's whole timeout.
    """
    svc = server.resolve(service)
    report = DrainReport(server.host, svc.name or svc.key)
    cancel = cancel or threading.Event()

    def decided(note: str) -> None:
        report.decisions.append(note)
        if on_decision is not None:
            on_decision(note)

    def update(status: ServiceStatus | None = None, phase: Phase | None = None) -> None:
        if status is not None:
            report.last = status
        if phase is not None:
            report.phase = phase
        if on_update is not None:
            on_update(report)

    asked = False
    try:
        before = server.status(svc)
        update(before)
        if before.status is ServiceState.STOPPED:
            report.note = "already stopped: nothing to drain"
            update(phase=Phase.STOPPED)
            return _finish(report)
        started = clock()
        asked = True  # from here on the drain may be running on the server, whatever happens next
        requested, _ = apply_change(
            server,
            svc,
            lambda: server.begin_drain(svc, leave_running=leave_running),
            DRAINING,
            what="drain request",
            on_decision=decided,
        )
        update(requested, Phase.DRAINING)
        if not wait:
            report.note = "drain requested; not waiting (--no-wait)"
            return _finish(report)
        while True:
            verdict = decide(report.last or before, clock() - started, timeout)
            if verdict == "done":
                update(phase=Phase.STOPPED)
                break
            if verdict == "deadline":
                _at_deadline(server, svc.name or svc.key, report, then, update, decided)
                break
            if cancel.wait(min(poll, max(0.0, timeout - (clock() - started)))):
                report.note = "interrupted: polling stopped, the service keeps draining on the server"
                update(phase=Phase.INTERRUPTED)
                return _finish(report)
            report.polls += 1
            budget = max(timeout - (clock() - started), MIN_POLL_READ)
            update(server.status(svc, timeout=budget))
        if report.phase is Phase.STOPPED and svc.drain_events:
            report.events = _confirm_events(server, svc.drain_events, report.started)
            missing = sorted(set(svc.drain_events) - {e.id for e in report.events})
            if missing:
                report.note = f"stopped; events not found: {', '.join(map(str, missing))}"
    except OcspsError as exc:
        confirmed = report.phase is Phase.DRAINING
        report.error = exc.message
        if asked and isinstance(exc, ConnectError | TimeoutExceeded | OutcomeUnknown):
            report.error = exc.still_running("the drain", report.service, certain=confirmed)
        report.error_code = 1 if confirmed and exc.exit_code == 3 else exc.exit_code
        update(phase=Phase.FAILED)
    return _finish(report)


def _at_deadline(
    server: ServiceControl,
    name: str,
    report: DrainReport,
    then: Then,
    update: Callable[..., None],
    decided: DecisionCallback,
) -> None:
    report.then = then
    state = report.last.status.value if report.last else "unknown"
    if then is Then.FORCE_STOP:
        stopped, _ = apply_change(
            server,
            name,
            lambda: server.stop(name, force=True),
            STOPPING,
            what="forced stop",
            on_decision=decided,
        )
        update(stopped, Phase.FORCED if stopped.is_stopped else Phase.FAILED)
        report.note = f"deadline reached while {state}; forced stop -> {stopped.status.value}"
    elif then is Then.LEAVE:
        update(phase=Phase.LEFT_DRAINING)
        report.note = f"deadline reached; left draining ({state}); it stops on its own when sessions end"
    else:
        update(phase=Phase.DEADLINE)
        report.note = f"deadline reached; the service is still {state}"


def _confirm_events(server: ServiceControl, ids: tuple[int, ...], since: datetime) -> list[EventRecord]:
    """Events prove the drain on products that log them; clocks differ, so look a minute back."""
    try:
        return server.events(ids, since - timedelta(minutes=1))
    except OcspsError:
        return []


def _finish(report: DrainReport) -> DrainReport:
    report.finished = datetime.now(UTC)
    return report
