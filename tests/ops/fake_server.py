"""A ``ServiceControl`` that acknowledges requests late, driven by a fake clock: no time passes for real.

It models what a real service does and the lab (so far) does not: the cmdlet returns, and the service
changes state ``ack_delay`` seconds later. A request may be "lost": the server acted (``after`` = True) or
never saw it (``after`` = False), and in both cases the caller gets ``OutcomeUnknown``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ocsps.catalog import Service, load_catalog
from ocsps.errors import OutcomeUnknown
from ocsps.results import EventRecord, ServiceState, ServiceStatus
from ocsps.results.activity import parse_activity_level

EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Pending:
    at: float
    state: ServiceState


@dataclass
class FakeServer:
    clock: FakeClock
    host: str = "med01.contoso.com"
    product_id: str = "sfb2015"
    state: ServiceState = ServiceState.RUNNING
    activity: str = "Inbound Calls=0"
    ack_delay: float = 2.0
    lose: dict[str, bool] = field(default_factory=dict)
    """action -> True: reply lost after the server acted; False: lost before it reached the server."""
    sent: list[str] = field(default_factory=list)
    """Requests that reached the server, in order."""
    events_logged: list[tuple[int, float]] = field(default_factory=list)
    log_event_at_request: dict[str, int] = field(default_factory=dict)
    """action -> event id the server logs as soon as it accepts the request (before the state shows)."""
    pending: list[Pending] = field(default_factory=list)
    reads: int = 0

    def __post_init__(self) -> None:
        self.catalog = load_catalog()
        self.product = self.catalog.product(self.product_id)

    # ------------------------------------------------------------------ ServiceControl
    def resolve(self, service: str | Service) -> Service:
        return service if isinstance(service, Service) else self.catalog.find_service(self.product, service)

    def event_ids(self, service: Service, *meanings: str) -> tuple[int, ...]:
        return tuple(e.id for e in self.catalog.events_for_service(service.key) if e.meaning in meanings)

    def _settle(self) -> None:
        due = [p for p in self.pending if p.at <= self.clock.now]
        for p in due:
            self.state = p.state
            self.pending.remove(p)

    def _view(self, service: str | Service) -> ServiceStatus:
        self._settle()
        svc = self.resolve(service)
        return ServiceStatus(
            name=svc.name or svc.key,
            status=self.state,
            status_text=self.state.value,
            computer=self.host,
            activity=parse_activity_level(self.activity),
        )

    def status(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus:
        self.reads += 1
        return self._view(service)

    def _request(self, action: str, service: str | Service, result: ServiceState) -> ServiceStatus:
        lost = self.lose.pop(action, None)
        if lost is False:
            raise OutcomeUnknown("connection dropped while sending", host=self.host)
        self.sent.append(action)
        if action in self.log_event_at_request:
            self.events_logged.append((self.log_event_at_request[action], self.clock.now))
        self.pending.append(Pending(self.clock.now + self.ack_delay, result))
        if lost is True:
            raise OutcomeUnknown("connection dropped before the reply", host=self.host)
        return self._view(service)

    def begin_drain(
        self, service: str | Service, *, leave_running: Iterable[str] = (), timeout: float | None = None
    ) -> ServiceStatus:
        return self._request("drain", service, ServiceState.PAUSED)

    def stop(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus:
        return self._request("stop", service, ServiceState.STOPPED)

    def start(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus:
        return self._request("start", service, ServiceState.RUNNING)

    def restart(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus:
        return self._request("restart", service, ServiceState.RUNNING)

    def events(
        self,
        ids: Iterable[int],
        since: datetime,
        *,
        log_name: str | None = None,
        max_events: int | None = None,
        timeout: float | None = None,
    ) -> list[EventRecord]:
        wanted = set(ids)
        found = []
        for event_id, at in self.events_logged:
            when = EPOCH + timedelta(seconds=at)
            if event_id in wanted:
                found.append(EventRecord(id=event_id, time=when, computer=self.host))
        return found
