"""A state change sent once: what a service's status must show for a change to count as done, and the
rule for a lost reply (re-read, decide from evidence, never repeat on a guess).

``ServiceControl`` is the part of a server the operations need. Operations depend on it rather than on
``ocsps.remote.server.Server``, so that the server can offer them as methods without an import cycle, and
so that tests can drive them with a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from ocsps.catalog import Service
from ocsps.errors import OutcomeUnknown
from ocsps.results import EventRecord, ServiceState, ServiceStatus

DecisionCallback = Callable[[str], None]


class ServiceControl(Protocol):
    """The service calls of one server that the operations build on."""

    @property
    def host(self) -> str: ...

    def resolve(self, service: str | Service) -> Service: ...

    def status(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus: ...

    def begin_drain(
        self, service: str | Service, *, leave_running: Iterable[str] = (), timeout: float | None = None
    ) -> ServiceStatus: ...

    def stop(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus: ...

    def start(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus: ...

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


def apply_change(
    server: ServiceControl,
    service: Service | str,
    send: Callable[[], ServiceStatus],
    took_effect: frozenset[ServiceState] | None,
    *,
    what: str,
    on_decision: DecisionCallback | None = None,
) -> tuple[ServiceStatus, str]:
    """Send a state-changing call; if its outcome is unknown, re-read the service and decide.

    A connection lost after the call may have reached the server (``OutcomeUnknown``) is never answered
    with a blind repeat. The service's status is read again (a read, retried inside its deadline): a status
    in ``took_effect`` means the change happened and it is not sent again; any other status means it did
    not happen, and it is sent once more, knowingly. With ``took_effect`` None the status cannot tell (a
    restart ends Running either way), so the outcome stays unknown and ``OutcomeUnknown`` is raised with
    the status read. Returns the status and a note for the operator ("" when nothing unusual happened);
    ``on_decision`` hears the note before anything is sent again (the CLI writes it to the audit log).
    """
    try:
        return send(), ""
    except OutcomeUnknown as exc:
        lost = exc
    current = server.status(service)
    state = current.status.value
    if took_effect is None:
        note = f"{what}: the reply was lost and a re-read shows {state}, which cannot tell; not sent again"
        if on_decision is not None:
            on_decision(note)
        raise OutcomeUnknown(f"{lost.args[0]}; re-read shows {state}; not sent again", host=lost.host)
    if current.status in took_effect:
        note = f"{what}: the reply was lost; a re-read shows {state}, so it ran; not sent again"
        if on_decision is not None:
            on_decision(note)
        return current, note
    note = f"{what}: the connection was lost before it took effect (re-read shows {state}); sent once more"
    if on_decision is not None:
        on_decision(note)
    return send(), note
