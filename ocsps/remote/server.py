"""Typed operations on one server: the library face of ocsps.

``Server`` turns catalog actions into calls on a ``ServerSession`` and parses what comes back, so an
automation script says ``server.services()`` and gets ``ServiceStatus`` objects, never text. ``connect``
is the short way to build one from keyword settings.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Unpack

from ocsps.catalog import Catalog, Product, Service, load_catalog
from ocsps.errors import OperationFailed, UsageError
from ocsps.powershell.script import RenderedScript, render_action
from ocsps.remote.session import AuditCallback, ProgressCallback, RunResult, ServerSession
from ocsps.remote.settings import ConnectionSettings, ConnectOptions, Secret, show
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

if TYPE_CHECKING:
    from ocsps.operations.drain import DrainReport, Then


class Server:
    """Operations on one server over an open (or lazily opened) session.

    Use it as a context manager: entering opens the session (one runspace pool, product module imported
    once), leaving closes it. Every method raises only ``ocsps.errors`` types.
    """

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

    def open(self) -> Server:
        """Open the session now (the first call would otherwise), to fail fast on a bad connection."""
        self.session.open()
        return self

    def close(self) -> None:
        """Release the session on the server; never raises."""
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

    def drain(
        self,
        service: str,
        *,
        timeout: float,
        poll: float,
        then: Then | str = "fail",
        leave_running: Iterable[str] = (),
        wait: bool = True,
        on_update: Callable[[DrainReport], None] | None = None,
        cancel: threading.Event | None = None,
        on_decision: Callable[[str], None] | None = None,
    ) -> DrainReport:
        """Drain ``service`` gracefully, watch it empty, and report; see :func:`ocsps.operations.drain.drain`.

        ``timeout`` (seconds) is how long the service may take to empty; ``poll`` how often its status
        is read. At the deadline ``then`` decides: ``"fail"`` (report it), ``"force-stop"`` or
        ``"leave"`` (let it stop on its own). The drain's own outcome is in the returned
        ``DrainReport`` (``report.ok``, ``report.phase``); only bad arguments raise.

        Example::

            report = server.drain("RTCMEDSRV", timeout=15 * 60, poll=30, then="leave")
            if not report.ok:
                print(report.note or report.error)
        """
        from ocsps.operations.drain import Then, drain

        for name, value in (("timeout", timeout), ("poll", poll)):
            if not _positive(value):
                raise UsageError(f"drain {name} must be a positive number of seconds, not {show(value)}")
        try:
            policy = Then(then)
        except ValueError:
            choices = ", ".join(t.value for t in Then)
            raise UsageError(f"then must be one of {choices}, not {show(then)}", host=self.host) from None
        return drain(
            self,
            service,
            timeout=timeout,
            poll=poll,
            then=policy,
            leave_running=tuple(leave_running),
            wait=wait,
            on_update=on_update,
            cancel=cancel,
            on_decision=on_decision,
        )

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


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


_SETTINGS: frozenset[str] = frozenset(
    {f.name for f in dataclasses.fields(ConnectionSettings)} - {"host", "password", "product"}
) | {"verify", "ca_bundle"}


def connect(
    host: str,
    *,
    product: str | Product,
    auth: str = "negotiate",
    username: str | None = None,
    password: str | Secret | None = None,
    timeout: float = 120.0,
    on_progress: ProgressCallback | None = None,
    audit: AuditCallback | None = None,
    catalog: Catalog | None = None,
    **settings: Unpack[ConnectOptions],
) -> Server:
    """A ``Server`` for ``host``, to use as a context manager: the short way in for automation scripts.

    ``product`` is a product id (``ocs2007r2``, ``lync2010``, ``lync2013``, ``sfb2015``, ``sfb2019``...).
    ``settings`` are the other connection settings (``port``, ``ssl``, ``verify``, ``ca_bundle``,
    ``encryption``, ``connect_address``, ``read_timeout``, ...; typed as ``ConnectOptions``, so a type
    checker catches a misspelt one).
    ``timeout`` is the default deadline of each call, in seconds; ``on_progress`` receives the remote
    progress records as ``ocsps.remote.session.Progress``. Settings are validated before anything is sent (a
    ``UsageError`` otherwise); nothing connects until the ``with`` block starts.

    Example::

        import os
        import ocsps

        with ocsps.connect(
            "med01.contoso.com",
            product="sfb2015",
            auth="ntlm",
            username="CONTOSO\\lyncadmin",
            password=os.environ["OCSPS_PASSWORD"],
        ) as server:
            for service in server.services():
                print(service.name, service.status.value)
            report = server.drain("RTCMEDSRV", timeout=900, poll=15)
            print(report.phase.value, report.note)

    Failures raise ``ocsps.OcspsError`` subclasses with a one-line message naming the host:
    ``ConnectError`` (DNS, refused, TLS, quota, dropped), ``AuthenticationError``, ``TimeoutExceeded``,
    ``RemoteError`` (PowerShell error records), ``OutcomeUnknown`` (a change hit by a lost connection).
    """
    if not _positive(timeout):
        raise UsageError(f"timeout must be a positive number of seconds, not {show(timeout)}", host=host)
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise UsageError(
            f"unknown connection setting {show(unknown[0])}; valid: {', '.join(sorted(_SETTINGS))}",
            host=host,
        )
    values: dict[str, Any] = dict(settings)
    verify = values.pop("verify", None)
    bundle = values.pop("ca_bundle", None)
    if bundle is not None and (verify is False or "cert_validation" in values):
        raise UsageError("ca_bundle contradicts verify=False / cert_validation", host=host)
    if bundle is not None:
        values["cert_validation"] = bundle
    elif verify is not None:
        values["cert_validation"] = verify
    cat = catalog or load_catalog()
    prod = cat.product(product) if isinstance(product, str) else product
    secret = Secret(password) if isinstance(password, str) else password
    conn = ConnectionSettings(
        host=host, auth=auth, username=username, password=secret, product=prod.id, **values
    )
    conn.check_local_files()
    session = ServerSession(conn, prod, default_timeout=timeout, on_progress=on_progress, audit=audit)
    return Server(session, cat)
