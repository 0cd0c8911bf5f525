"""Typed operations on one server: the library face of ocsps.

``Server`` turns catalog actions into calls on a ``ServerSession`` and parses what comes back, so an
automation script says ``server.services()`` and gets ``ServiceStatus`` objects, never text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from ocsps.catalog import Catalog, Product, Service, load_catalog
from ocsps.errors import OperationFailed
from ocsps.results import (
    EventRecord,
    LcsCmdOutcome,
    QueuePrivacy,
    ServiceStatus,
    WmiSetting,
    parse_event_record,
    parse_lcscmd_outcome,
    parse_queue_privacy,
    parse_service_status,
    parse_wmi_setting,
)
from ocsps.script import RenderedScript, render_action
from ocsps.session import RunResult, ServerSession


class Server:
    """Operations on one server over an open (or lazily opened) session."""

    def __init__(self, session: ServerSession, catalog: Catalog | None = None) -> None:
        self.session = session
        self.catalog = catalog or load_catalog()

    @property
    def host(self) -> str:
        return self.session.host

    @property
    def product(self) -> Product:
        return self.session.product

    def __enter__(self) -> Server:
        self.session.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    # ------------------------------------------------------------------ helpers
    def resolve(self, service: str | Service) -> Service:
        return service if isinstance(service, Service) else self.catalog.find_service(self.product, service)

    def render(self, action: str, service: str | Service | None = None, **values: object) -> RenderedScript:
        merged: dict[str, object] = {}
        if service is not None:
            merged.update(self.catalog.service_parameters(self.product, self.resolve(service)))
        merged.update({k: v for k, v in values.items() if v is not None})
        return render_action(action, self.product, merged, catalog=self.catalog)

    def _run(self, rendered: RenderedScript, timeout: float | None) -> RunResult:
        return self.session.run(rendered, timeout=timeout).raise_for_errors()

    def _statuses(self, result: RunResult) -> list[ServiceStatus]:
        return [parse_service_status(obj) for obj in result.output]

    def _one(self, result: RunResult, service: Service) -> ServiceStatus:
        found = self._statuses(result)
        if not found:
            raise OperationFailed(
                f"{service.name or service.key} was not found on the server", host=self.host
            )
        return found[0]

    # ------------------------------------------------------------------ reads
    def services(
        self, service: str | Service | None = None, *, activity: bool = True, timeout: float | None = None
    ) -> list[ServiceStatus]:
        values: dict[str, object] = {}
        if self.product.service_control == "cs" and not activity:
            values["ExcludeActivityLevel"] = True
        return self._statuses(self._run(self.render("status", service, **values), timeout))

    def status(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus:
        svc = self.resolve(service)
        return self._one(self._run(self.render("status", svc), timeout), svc)

    def events(
        self,
        ids: Iterable[int],
        since: datetime,
        *,
        log_name: str | None = None,
        max_events: int | None = None,
        timeout: float | None = None,
    ) -> list[EventRecord]:
        id_list = sorted({int(i) for i in ids})
        rendered = self.render(
            "events",
            LogName=log_name or self.product.event_log,
            Id=tuple(str(i) for i in id_list),
            Since=since.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            MaxEvents=max_events,
        )
        records = [parse_event_record(obj) for obj in self._run(rendered, timeout).output]
        return sorted(records, key=lambda e: e.time)

    def queue_privacy(self, queue_path: str, *, timeout: float | None = None) -> QueuePrivacy:
        result = self._run(self.render("msmq-privacy", QueuePath=queue_path), timeout)
        if not result.output:
            raise OperationFailed("the queue privacy read returned nothing", host=self.host)
        return parse_queue_privacy(result.output[0])

    def wmi_setting(
        self, wmi_class: str, properties: Sequence[str] = (), *, timeout: float | None = None
    ) -> list[WmiSetting]:
        rendered = self.render("wmi-setting", Class=wmi_class, Property=tuple(properties) or None)
        return [parse_wmi_setting(obj) for obj in self._run(rendered, timeout).output]

    # ------------------------------------------------------------------ changes
    def begin_drain(
        self, service: str | Service, *, leave_running: Iterable[str] = (), timeout: float | None = None
    ) -> ServiceStatus:
        """Ask for a graceful stop and return at once (the service shows Paused while it drains)."""
        svc = self.resolve(service)
        values: dict[str, object] = {"NoWait": True}
        for name in leave_running:
            switch = self.resolve(name).leave_running_switch
            if switch:
                values[switch] = True
        return self._one(self._run(self.render("drain", svc, **values), timeout), svc)

    def stop(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus:
        svc = self.resolve(service)
        return self._one(self._run(self.render("stop", svc, Force=force or None), timeout), svc)

    def start(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus:
        svc = self.resolve(service)
        return self._one(self._run(self.render("start", svc), timeout), svc)

    def restart(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus:
        svc = self.resolve(service)
        return self._one(self._run(self.render("restart", svc, Force=force or None), timeout), svc)

    def deactivate(
        self, arguments: Sequence[str], log_path: str, *, timeout: float | None = None
    ) -> LcsCmdOutcome:
        rendered = self.render(
            "deactivate", LcsCmdPath=self.catalog.lcscmd_path, Arguments=tuple(arguments), LogPath=log_path
        )
        result = self._run(rendered, timeout)
        if not result.output:
            raise OperationFailed("LcsCmd returned no outcome", host=self.host)
        return parse_lcscmd_outcome(result.output[0])
