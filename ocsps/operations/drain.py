"""Draining a service: ask for a graceful stop, watch it empty, confirm with events, own the deadline.

``Stop-CsWindowsService -Graceful`` documents no timeout, so ocsps sends it with ``-NoWait`` and does the
waiting itself: one pipeline asks for the stop and then writes the status and activity every poll until
the service is Stopped or the deadline passes on the server (a status read per poll would cost a whole
pipeline each time); at the deadline the operator's ``then`` policy applies. What happened is reported as
a ``DrainReport`` whatever the outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import msgspec

from ocsps.catalog import Service
from ocsps.errors import (
    Cancelled,
    ConnectError,
    OcspsError,
    OperationFailed,
    OutcomeUnknown,
    TimeoutExceeded,
    UsageError,
)
from ocsps.operations.change import (
    CLOCK_SKEW,
    DRAINING,
    STOPPING,
    DecisionCallback,
    ServiceControl,
    already_done,
    apply_change,
)
from ocsps.results import ActivityLevel, EventRecord, ServiceState, ServiceStatus


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
    """What was decided after a lost reply (re-read state, sent again or not), and on what evidence."""
    waited: bool = True
    """False for ``wait=False``: the drain was requested and accepted, and nobody watches it end."""
    drained: ServiceStatus | None = None
    """The status the drain ended in, kept when the service is started again afterwards (``last`` then
    shows the status after the start)."""
    error_code: int = 0
    """The exit code of the error that ended the drain (0 if none): 3 when it could not connect before the
    drain was confirmed (nothing sent, or a request whose outcome is unknown), 4 when a deadline cut a
    call short, 1 otherwise."""
    requested: bool = False
    """Whether the drain request was sent (or may have been: a reply lost on the way counts). False when
    the service was already stopped or the drain was interrupted before the request: nothing changed."""
    before: ServiceStatus | None = None
    """The status read before anything was sent."""

    @property
    def ok(self) -> bool:
        if self.error:
            return False
        if not self.waited and self.phase in (Phase.DRAINING, Phase.STOPPED):
            return True
        return self.phase in (Phase.STOPPED, Phase.FORCED, Phase.LEFT_DRAINING)

    @property
    def changed(self) -> bool:
        """Whether this drain changed (or may have changed) the server: its request was sent."""
        return self.requested

    @property
    def exit_code(self) -> int:
        """The process exit code this report stands for: 0 ok, 4 a deadline, 130 interrupted, the error's
        own code (3: could not connect) when it failed on one, 1 otherwise."""
        if self.ok:
            return 0
        if self.phase is Phase.DEADLINE:
            return 4
        if self.phase is Phase.INTERRUPTED:
            return 130
        if self.phase is Phase.FAILED and self.error_code:
            return self.error_code
        return 1

    @property
    def elapsed(self) -> float:
        end = self.finished or datetime.now(UTC)
        return (end - self.started).total_seconds()


class DrainReportDocument(msgspec.Struct):
    """A drain report as ``drain --json`` writes it (``docs/schemas/drain.schema.json``: a host's ``result``).

    A projection, since the report changes while the drain runs: its verdict (``ok``) and duration are
    read when the document is made, and of the statuses only their states are shown (the last one's
    activity counters too, when it has any).
    """

    host: str
    service: str
    phase: Phase
    ok: bool
    started: datetime
    finished: datetime | None
    elapsed_seconds: float
    polls: int
    status: ServiceState | None
    activity: ActivityLevel | None
    then: Then | None
    events: tuple[EventRecord, ...]
    note: str
    error: str
    decisions: tuple[str, ...]
    waited: bool
    drained_status: ServiceState | None

    @classmethod
    def of(cls, report: DrainReport) -> DrainReportDocument:
        last = report.last
        return cls(
            host=report.host,
            service=report.service,
            phase=report.phase,
            ok=report.ok,
            started=report.started,
            finished=report.finished,
            elapsed_seconds=round(report.elapsed, 3),
            polls=report.polls,
            status=last.status if last else None,
            activity=last.activity if last and last.activity else None,
            then=report.then,
            events=tuple(report.events),
            note=report.note,
            error=report.error,
            decisions=tuple(report.decisions),
            waited=report.waited,
            drained_status=report.drained.status if report.drained else None,
        )


UpdateCallback = Callable[[DrainReport], None]


def check_start_again(start_again: bool, *, wait: bool, then: Then) -> None:
    """A drain that starts the service again must see it stop: not without waiting, not left draining."""
    if start_again and not wait:
        raise UsageError("starting the service again needs the drain watched to its end; not with no-wait")
    if start_again and then is Then.LEAVE:
        raise UsageError(
            "starting the service again needs it stopped; 'leave' at the deadline would move on while it "
            "still drains"
        )


def check_timing(timeout: float, poll: float) -> None:
    """Refuse a poll interval longer than the deadline: the first read would come after the deadline."""
    if poll > timeout:
        raise UsageError(
            f"poll every {poll:g}s is longer than the {timeout:g}s timeout: the drain would be judged "
            "after its deadline; poll more often or give it more time"
        )


class DrainControl(ServiceControl, Protocol):
    """A server that can watch a drain in one streaming pipeline (``Server`` is one)."""

    def watch_drain(
        self,
        service: str | Service,
        *,
        request: bool,
        poll: float,
        until: float,
        on_status: Callable[[ServiceStatus], None],
        on_event: Callable[[EventRecord], None] | None = None,
        since: datetime | None = None,
        leave_running: Iterable[str] = (),
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> None: ...


WATCH_GRACE = 5.0
"""Seconds a watch may take on this side past its server-side deadline (the last status and the release
of the pipeline), on top of one poll interval: the server ends the loop by itself."""

MAX_RESUMES = 5
"""Read-only watches started after the first one ended early (a lost connection, a server-side loop that
ended before its time): a server that keeps cutting the watch short is given up on, with the message
that the drain goes on."""


class _WatchLost(Exception):
    """The watch's connection broke after the drain was seen under way: resume watching, never re-send."""

    def __init__(self, error: OcspsError) -> None:
        super().__init__(error.message)
        self.error = error


def drain(
    server: DrainControl,
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
    start_again: bool = False,
    deadline: float | None = None,
) -> DrainReport:
    """Drain ``service`` on ``server`` and report; never raises for the drain's own outcome.

    The drain is asked for and watched in one pipeline (``DrainControl.watch_drain``): the server writes
    the status every ``poll`` seconds, with the drain and stop events as they are logged, and ends the
    loop itself when the service is Stopped or the drain's ``timeout`` has passed; this side only
    receives (about one request per poll, where a read per poll costs three). ``on_update`` hears every
    status as it arrives.

    A request whose reply is lost before any status came back is settled by ``apply_change`` (re-read
    and look for its event for a settle time, then decide); the decisions are in ``report.decisions`` and
    go to ``on_decision`` as they are made. Once a status has come back the request is known to have
    been made: a connection lost later is answered by watching again over a new session, read only
    (``drain-follow``: its first status is the re-read), never by asking again. With ``start_again``
    (a rolling drain) a service this drain stopped is started again at the end, and the report's
    ``last`` is the status after that start (``drained`` keeps the one before).

    ``cancel`` is observed before the first read, before the request and after every status: the watch
    is then stopped on the server (its pipeline, not the drain) and the phase is ``interrupted`` (before
    the request: nothing was sent). ``deadline`` (seconds) bounds the whole call: reads get no more than
    the time left, the server-side watch ends with it, and when it passes while the service drains the
    phase is ``deadline`` (the ``then`` policy belongs to ``timeout`` and is not applied).
    """
    check_timing(timeout, poll)
    check_start_again(start_again, wait=wait, then=then)
    if deadline is not None and not deadline > 0:
        raise UsageError(f"deadline must be a positive number of seconds, not {deadline!r}")
    end = None if deadline is None else clock() + deadline
    svc = server.resolve(service)
    report = DrainReport(server.host, svc.name or svc.key, waited=wait)
    cancel = cancel or threading.Event()

    def left(budget: float | None = None) -> float | None:
        """Seconds a read may take: ``budget`` capped by the call's deadline (a little, once passed)."""
        if end is None:
            return budget
        rest = max(end - clock(), 0.5)
        return rest if budget is None else min(budget, rest)

    def cancelled(note: str) -> DrainReport:
        report.note = note
        update(phase=Phase.INTERRUPTED)
        return _finish(report)

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
    seen = 0  # statuses received since the request
    found: dict[tuple[int, datetime], EventRecord] = {}

    def on_status(status: ServiceStatus) -> None:
        nonlocal seen
        if seen:
            report.polls += 1
        seen += 1
        update(status, Phase.STOPPED if status.is_stopped else Phase.DRAINING)

    def on_event(event: EventRecord) -> None:
        found.setdefault((event.id, event.time), event)

    try:
        if cancel.is_set():
            return cancelled("interrupted before the first read: nothing was sent")
        report.before = before = server.status(svc, timeout=left())
        update(before)
        if already_done("drain", before):
            report.note = "already stopped: nothing to drain"
            update(phase=Phase.STOPPED)
            return _finish(report)
        if cancel.is_set():
            return cancelled("interrupted before the drain request: nothing was sent")
        started = clock()
        requested_at = datetime.now(UTC)

        def until() -> tuple[float, bool]:
            """Seconds the server-side watch may run, and whether the call's deadline (not the drain's
            timeout) is what ends it."""
            rest = max(timeout - (clock() - started), 0.0)
            if end is not None and end - clock() < rest:
                return max(end - clock(), 0.0), True
            return rest, False

        def watch(request: bool) -> None:
            span, _ = until()
            server.watch_drain(
                svc,
                request=request,
                poll=poll,
                until=max(span, 0.001),
                on_status=on_status,
                on_event=on_event,
                since=None if request else requested_at - CLOCK_SKEW,
                leave_running=leave_running,
                timeout=span + poll + WATCH_GRACE,
                cancel=cancel,
            )

        asked = report.requested = True  # from here on the drain may be running, whatever happens next
        if not wait:
            requested, _ = apply_change(
                server,
                svc,
                lambda: server.begin_drain(svc, leave_running=leave_running, timeout=left()),
                DRAINING,
                what="drain request",
                on_decision=decided,
                evidence=server.event_ids(svc, "drain-started"),
            )
            update(requested, Phase.STOPPED if requested.is_stopped else Phase.DRAINING)
            report.note = "drain requested; not waiting (--no-wait)"
            return _finish(report)

        def ask_and_watch() -> ServiceStatus:
            try:
                watch(request=True)
            except (ConnectError, TimeoutExceeded, OutcomeUnknown) as exc:
                if seen and not isinstance(exc, TimeoutExceeded):
                    raise _WatchLost(exc) from None
                raise
            assert report.last is not None
            return report.last

        try:
            settled, _ = apply_change(
                server,
                svc,
                ask_and_watch,
                DRAINING,
                what="drain request",
                on_decision=decided,
                evidence=server.event_ids(svc, "drain-started"),
            )
            if not seen:  # settled from a re-read after a lost reply: the drain runs, watch it
                update(settled, Phase.STOPPED if settled.is_stopped else Phase.DRAINING)
                seen = 1
        except _WatchLost as lost:
            decided(
                f"drain watch: {lost.error.message}; the drain was already under way (status seen), so "
                "watching resumes over a new session (read only); not sent again"
            )
        # The watch ends by itself at its deadline; one that ended before (a lost connection, a reply
        # lost before any status, a loop cut short on the server) is followed up, read only.
        for _ in range(MAX_RESUMES):
            if (report.last or before).is_stopped or until()[0] <= 0:
                break
            watch(request=False)
        last = report.last or before
        if not last.is_stopped:
            span, by_call = until()
            if span > 0:
                raise OperationFailed(
                    f"the watch of {report.service} kept ending early ({MAX_RESUMES} times)", host=server.host
                )
            if by_call:
                state = last.status.value
                report.note = f"the call's deadline passed while {state}; the service keeps draining"
                update(phase=Phase.DEADLINE)
                return _finish(report)
            _at_deadline(server, svc.name or svc.key, report, then, update, decided)
        elif report.phase is not Phase.STOPPED:
            update(phase=Phase.STOPPED)
        if report.phase is Phase.STOPPED and svc.drain_events:
            first = server.event_ids(svc, "drain-started")
            events = only_this_drain(list(found.values()), first)
            if set(svc.drain_events) - {e.id for e in events}:
                # Not all seen while watching (logged after the last status): one read settles it.
                events = _confirm_events(server, svc.drain_events, first, requested_at)
            report.events = [e for e in events if e.id in svc.drain_events]
            missing = sorted(set(svc.drain_events) - {e.id for e in report.events})
            if missing:
                report.note = f"stopped; events not found: {', '.join(map(str, missing))}"
        if start_again and report.phase in (Phase.STOPPED, Phase.FORCED):
            _start_again(server, svc.name or svc.key, report, update, decided)
    except Cancelled as exc:
        from ocsps.remote.session import StreamStopped

        if seen:
            return cancelled("interrupted: watching stopped, the service keeps draining on the server")
        if isinstance(exc, StreamStopped):
            return cancelled(
                "interrupted right after the drain request was sent: it may be under way; watch it with "
                f"'ocsps status -s {report.service}'"
            )
        return cancelled("interrupted before the drain request: nothing was sent")
    except OcspsError as exc:
        confirmed = report.phase is Phase.DRAINING
        report.error = exc.message
        if asked and isinstance(exc, ConnectError | TimeoutExceeded | OutcomeUnknown | OperationFailed):
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
            evidence=server.event_ids(server.resolve(name), "stopped"),
        )
        update(stopped, Phase.FORCED if stopped.is_stopped else Phase.FAILED)
        report.note = f"deadline reached while {state}; forced stop -> {stopped.status.value}"
    elif then is Then.LEAVE:
        update(phase=Phase.LEFT_DRAINING)
        report.note = f"deadline reached; left draining ({state}); it stops on its own when sessions end"
    else:
        update(phase=Phase.DEADLINE)
        report.note = f"deadline reached; the service is still {state}"


def _start_again(
    server: ServiceControl,
    name: str,
    report: DrainReport,
    update: Callable[..., None],
    decided: DecisionCallback,
) -> None:
    """A rolling drain brings the service back before the next host; the report shows both states."""
    from ocsps.operations.change import STARTING

    report.drained = report.last
    drained = report.last.status.value if report.last else "unknown"
    started, _ = apply_change(
        server,
        name,
        lambda: server.start(name),
        STARTING,
        what="start again",
        on_decision=decided,
        evidence=server.event_ids(server.resolve(name), "started"),
    )
    update(started)
    done = f"drained to {drained}, then started again: {started.status.value}"
    report.note = f"{report.note}; {done}" if report.note else done
    if not started.is_running:
        report.error = f"{name} did not come back to Running ({started.status.value})"


def only_this_drain(events: list[EventRecord], first: tuple[int, ...]) -> list[EventRecord]:
    """The events of the latest drain: from the last "drain started" on.

    The search looks back ``CLOCK_SKEW`` because the server's clock is not ours, so it can also find an
    earlier drain of the same service (drain, start, drain again within a minute); those are dropped.
    """
    ordered = sorted(events, key=lambda e: e.time)
    starts = [i for i, e in enumerate(ordered) if e.id in first]
    return ordered[starts[-1] :] if starts else ordered


def _confirm_events(
    server: ServiceControl, ids: tuple[int, ...], first: tuple[int, ...], since: datetime
) -> list[EventRecord]:
    """Events prove the drain on products that log them; only this drain's are kept."""
    try:
        return only_this_drain(server.events(ids, since - CLOCK_SKEW), first)
    except OcspsError:
        return []


def _finish(report: DrainReport) -> DrainReport:
    report.finished = datetime.now(UTC)
    return report
