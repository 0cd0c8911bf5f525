"""A state change sent once: what a service's status must show for a change to count as done, and the
rule for a lost reply (re-read, decide from evidence, never repeat on a guess).

``ServiceControl`` is the part of a server the operations need. Operations depend on it rather than on
``ocsps.remote.server.Server``, so that the server can offer them as methods without an import cycle, and
so that tests can drive them with a fake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import msgspec

from ocsps.catalog import Service
from ocsps.errors import Cancelled, OcspsError, OperationFailed, OutcomeUnknown, UsageError
from ocsps.results import EventRecord, ServiceState, ServiceStatus

DecisionCallback = Callable[[str], None]
Clock = Callable[[], float]
Sleep = Callable[[float], None]


class ServiceControl(Protocol):
    """The service calls of one server that the operations build on."""

    @property
    def host(self) -> str: ...

    def resolve(self, service: str | Service) -> Service: ...

    def event_ids(self, service: Service, *meanings: str) -> tuple[int, ...]: ...

    def status(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus: ...

    def begin_drain(
        self, service: str | Service, *, leave_running: Iterable[str] = (), timeout: float | None = None
    ) -> ServiceStatus: ...

    def stop(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus: ...

    def start(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus: ...

    def restart(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus: ...

    def events(
        self,
        ids: Iterable[int],
        since: datetime,
        *,
        log_name: str | None = None,
        max_events: int | None = None,
        timeout: float | None = None,
    ) -> list[EventRecord]: ...


STOPPING = frozenset({ServiceState.STOPPED, ServiceState.STOP_PENDING})
STARTING = frozenset({ServiceState.RUNNING, ServiceState.START_PENDING})
DRAINING = frozenset(
    {ServiceState.PAUSE_PENDING, ServiceState.PAUSED, ServiceState.STOP_PENDING, ServiceState.STOPPED}
)
"""Statuses that show a graceful stop was accepted: the service drains (Paused) or has stopped."""

SETTLE_SECONDS = 20.0
"""How long a re-read after a lost reply keeps watching before it may conclude "did not happen".

A service acknowledges a request some time after the cmdlet ran (a graceful stop shows Paused a moment
later), so one re-read that still shows the old state proves nothing. Read at call time, so a caller (or
a test against a server that acknowledges at once) can change it.
"""
SETTLE_INTERVAL = 2.0
"""Seconds between the re-reads of the settle window."""
CLOCK_SKEW = timedelta(minutes=1)
"""How far before the request (by our clock) an event may be stamped by the server's clock."""


def apply_change(
    server: ServiceControl,
    service: Service | str,
    send: Callable[[], ServiceStatus],
    took_effect: frozenset[ServiceState] | None,
    *,
    what: str,
    on_decision: DecisionCallback | None = None,
    evidence: tuple[int, ...] = (),
    settle: float | None = None,
    interval: float | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> tuple[ServiceStatus, str]:
    """Send a state-changing call; if its outcome is unknown, watch the service and decide from evidence.

    A connection lost after the call may have reached the server (``OutcomeUnknown``) is never answered
    with a blind repeat. The service is re-read for up to ``settle`` seconds (every ``interval``), because
    a real service takes a moment to acknowledge: a status in ``took_effect``, or one of the ``evidence``
    events (e.g. 25049 "drain started") logged since the request, means the change happened and it is not
    sent again. Only when the whole window shows the old state and no such event is the change sent once
    more, knowingly. With ``took_effect`` None the status cannot tell (a restart ends Running either way),
    so the outcome stays unknown and ``OutcomeUnknown`` is raised with the status read. Returns the status
    and a note saying what the decision was based on ("" when nothing unusual happened); ``on_decision``
    hears the note before anything is sent again (the CLI writes it to the audit log).
    """
    requested = datetime.now(UTC)
    try:
        return send(), ""
    except OutcomeUnknown as exc:
        lost = exc

    def decided(note: str) -> None:
        if on_decision is not None:
            on_decision(note)

    if took_effect is None:
        state = server.status(service).status.value
        decided(f"{what}: the reply was lost and a re-read shows {state}, which cannot tell; not sent again")
        raise OutcomeUnknown(f"{lost.args[0]}; re-read shows {state}; not sent again", host=lost.host)
    window = SETTLE_SECONDS if settle is None else settle
    step = SETTLE_INTERVAL if interval is None else interval
    end = clock() + window
    reads = 0
    events_note = ""
    while True:
        current = server.status(service)
        reads += 1
        state = current.status.value
        if current.status in took_effect:
            note = f"{what}: the reply was lost; a re-read shows {state}, so it ran; not sent again"
            decided(note)
            return current, note
        if evidence:
            found, events_note = _evidence(server, evidence, requested)
            if found is not None:
                note = (
                    f"{what}: the reply was lost; event {found.id} logged at {found.time:%H:%M:%S} (server "
                    f"clock, since the request allowing {CLOCK_SKEW.seconds}s of skew) shows it ran "
                    f"(re-read shows {state}); not sent again"
                )
                decided(note)
                return current, note
        left = end - clock()
        if left <= 0:
            break
        sleep(min(step, left))
    seen = f"{reads} re-read{'s' if reads != 1 else ''} over {window:g}s"
    events_part = f"; {events_note}" if events_note else ""
    note = (
        f"{what}: the request did not take effect (re-read shows {state} after {seen}{events_part}); "
        "sent once more"
    )
    decided(note)
    return send(), note


def _evidence(
    server: ServiceControl, ids: tuple[int, ...], requested: datetime
) -> tuple[EventRecord | None, str]:
    """The first of ``ids`` logged since the request, and a note on what the event search saw."""
    try:
        found = server.events(ids, requested - CLOCK_SKEW)
    except OcspsError as exc:
        return None, f"events could not be read ({exc.message})"
    listed = ", ".join(map(str, ids))
    return (found[0] if found else None), f"no event {listed} since the request"


# ------------------------------------------------------------------------------------ stop / start
Action = Literal["stop", "start", "restart"]
WANTED: dict[str, ServiceState | None] = {
    "stop": ServiceState.STOPPED,
    "start": ServiceState.RUNNING,
    "restart": ServiceState.RUNNING,
}
Confirm = Callable[[ServiceStatus], bool]
"""Asked before a plain stop that would cut active sessions; True goes ahead."""

DONE_WHEN: dict[str, ServiceState] = {
    "stop": ServiceState.STOPPED,
    "drain": ServiceState.STOPPED,
    "start": ServiceState.RUNNING,
}
"""The status in which an action has nothing left to do (a restart always has)."""


def already_done(action: str, status: ServiceStatus) -> bool:
    """Whether ``status`` already is what ``action`` brings about, so nothing is sent: the one rule of
    idempotence that ``change_service``, ``drain`` and every preview of them share."""
    return DONE_WHEN.get(action) is status.status


@dataclass
class ServiceChange:
    """One stop, start or restart on one server: what was read before, what came back, and why."""

    host: str
    service: str
    action: str
    before: ServiceStatus | None = None
    after: ServiceStatus | None = None
    changed: bool = False
    note: str = ""
    seconds: float = 0.0
    decisions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        wanted = WANTED[self.action]
        return self.after is not None and self.after.status is wanted

    @property
    def last_known(self) -> str:
        """The last state read, and when: shown for a host that failed or was interrupted."""
        if self.after is not None:
            return f"last known state: {self.after.status.value} (after {self.action})"
        if self.before is not None:
            return f"last known state: {self.before.status.value} (read before {self.action})"
        return "last known state: unknown (never read)"


class ServiceChangeDocument(msgspec.Struct):
    """A change as ``stop`` / ``start --json`` writes it under its host (which names host and service)."""

    before: ServiceStatus | None
    after: ServiceStatus | None
    changed: bool
    note: str
    seconds: float
    decisions: tuple[str, ...]

    @classmethod
    def of(cls, change: ServiceChange) -> ServiceChangeDocument:
        return cls(
            change.before,
            change.after,
            change.changed,
            change.note,
            round(change.seconds, 3),
            tuple(change.decisions),
        )


def active_sessions(status: ServiceStatus) -> int | float:
    """The sessions a service still carries by its ActivityLevel counters (0 when none are known)."""
    return status.activity.total if status.activity is not None else 0


def busy_stop(
    action: str,
    service: str,
    before: ServiceStatus,
    *,
    force: bool = False,
    host: str = "",
    how_to_confirm: str = "--yes",
) -> OperationFailed | None:
    """The refusal a plain stop of a service carrying sessions meets unless confirmed, or None when the
    change needs no confirmation (not a stop, a forced stop, or no sessions by its ActivityLevel).

    ``change_service`` asks its ``confirm`` then; a rehearsal (check mode) reports it as the run would.
    """
    count = active_sessions(before)
    if action != "stop" or force or not count > 0:
        return None
    return OperationFailed(
        f"{service} carries {count:g} active sessions by its ActivityLevel; a stop cuts them. "
        f"Use 'ocsps drain' to let them end, or confirm the stop ({how_to_confirm})",
        host=host or None,
    )


def change_service(
    server: ServiceControl,
    service: str,
    action: Action,
    *,
    force: bool = False,
    confirm: Confirm | None = None,
    on_decision: DecisionCallback | None = None,
    report: ServiceChange | None = None,
    cancel: threading.Event | None = None,
    clock: Clock = time.monotonic,
    deadline: float | None = None,
    how_to_confirm: str = "--yes",
) -> ServiceChange:
    """Stop, start or restart ``service``: read it first, change it only if needed, settle a lost reply.

    Already in the wanted state is success with nothing sent. A plain stop (no ``force``) of a service
    whose ActivityLevel shows sessions asks ``confirm`` first; without one (or when it answers no) the
    stop is refused, since a stop cuts those sessions and ``drain`` would not. ``report`` may be passed
    in so that a caller keeps the last state read if a later call raises. ``how_to_confirm`` names, in
    the refusal, how the caller's user confirms (the command line's ``--yes``).

    ``cancel`` is observed before the read and before the change is sent (``Cancelled``: the change was
    not sent); ``deadline`` (seconds) bounds the read and the change call (``timeout`` of each is the
    time left). A call already sent runs to its end, and a lost reply is settled as always.
    """
    if deadline is not None and not deadline > 0:
        raise UsageError(f"deadline must be a positive number of seconds, not {deadline!r}")
    svc = server.resolve(service)
    done = report or ServiceChange(server.host, svc.name or svc.key, action)
    started = clock()
    end = None if deadline is None else started + deadline

    def left() -> float | None:
        return None if end is None else max(end - clock(), 0.5)

    def check_cancel(what: str) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{action} {done.service}: cancelled {what}; nothing was sent", host=server.host)

    check_cancel("before the first read")
    done.before = before = server.status(svc, timeout=left())
    if already_done(action, before):
        done.after = before
        done.note = f"already {before.status.value.lower()}: nothing to do"
        return done
    refusal = busy_stop(
        action, done.service, before, force=force, host=server.host, how_to_confirm=how_to_confirm
    )
    cancelled = cancel is not None and cancel.is_set()
    if refusal is not None and (confirm is None or cancelled or not confirm(before)):
        raise refusal

    def decided(note: str) -> None:
        done.decisions.append(note)
        if on_decision is not None:
            on_decision(note)

    check_cancel("after the read")
    if action == "stop":
        send: Callable[[], ServiceStatus] = lambda: server.stop(svc, force=force, timeout=left())  # noqa: E731
        took_effect: frozenset[ServiceState] | None = STOPPING
        evidence = server.event_ids(svc, "stopped")
    elif action == "start":
        send, took_effect = (lambda: server.start(svc, timeout=left())), STARTING
        evidence = server.event_ids(svc, "started")
    else:
        send, took_effect, evidence = (lambda: server.restart(svc, force=force, timeout=left())), None, ()
    done.after, done.note = apply_change(
        server, svc, send, took_effect, what=action, on_decision=decided, evidence=evidence
    )
    done.changed = True
    done.seconds = clock() - started
    return done
