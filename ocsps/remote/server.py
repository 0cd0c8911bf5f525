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
from ocsps.errors import Cancelled, OperationFailed, UsageError
from ocsps.powershell.script import RenderedScript, render_action
from ocsps.remote.session import AuditCallback, ProgressCallback, RunResult, ServerSession
from ocsps.remote.settings import ConnectOptions, Secret, settings_from_keywords, show
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
    from collections.abc import Mapping

    from ocsps.operations.change import Action, Confirm, ServiceChange
    from ocsps.operations.drain import DrainReport, Then
    from ocsps.operations.restart import RestartReport, StepResult


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

    def _run(
        self,
        rendered: RenderedScript,
        timeout: float | None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> RunResult:
        """One remote call. A set ``cancel`` stops it before it is sent (``Cancelled``); ``deadline``
        (seconds) caps the call's ``timeout``, retries included. A call already sent runs to its end."""
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{rendered.action}: cancelled; nothing was sent", host=self.host)
        if deadline is not None:
            if not _positive(deadline):
                raise UsageError(f"deadline must be a positive number of seconds, not {show(deadline)}")
            timeout = deadline if timeout is None else min(timeout, deadline)
        return self.session.run(rendered, timeout=timeout).raise_for_errors()

    def check_computer(self, computer: str | None) -> None:
        """Refuse an answer from another computer than the one named (see :func:`answering_computer_ok`).

        One ``connect_address`` shared by several hosts, a DNS alias or a port forward to the wrong
        machine would otherwise make every answer look like the named host's.
        """
        expected = self.session.settings.expect_computer
        if not answering_computer_ok(self.host, computer, expected):
            named = f"{self.host} (expect_computer {expected})" if expected else self.host
            raise OperationFailed(
                f"the computer that answered is {computer}, not {named}; nothing is assumed from its answer. "
                "Behind NAT or an alias, set expect_computer to the name the server reports",
                host=self.host,
            )

    def check_answers(self, output: Sequence[object]) -> None:
        """Apply :meth:`check_computer` to every answered object that names its computer
        (``ComputerName``): for actions whose output is read by other modules (pool reads, checks)."""
        from ocsps.results.base import prop, to_text

        for obj in output:
            computer = to_text(prop(obj, "ComputerName"))
            if computer:
                self.check_computer(computer)

    def _statuses(self, result: RunResult, service: Service | None = None) -> list[ServiceStatus]:
        found = [parse_service_status(obj) for obj in result.output]
        for status in found:
            self.check_computer(status.computer)
            if service is not None and not _same_service(
                self.catalog.service_parameters(self.product, service), status
            ):
                asked = service.name or service.key
                raise OperationFailed(
                    f"asked about {asked}, the server answered about {status.name} ({status.status.value}); "
                    "the answer is not used",
                    host=self.host,
                )
        return found

    def _one(self, result: RunResult, service: Service) -> ServiceStatus:
        found = self._statuses(result, service)
        if not found:
            raise OperationFailed(
                f"{service.name or service.key} was not found on the server", host=self.host
            )
        return found[0]

    def event_ids(self, service: Service, *meanings: str) -> tuple[int, ...]:
        """The catalog's event ids for ``service`` with these meanings (``drain-started``, ``stopped``...)."""
        return tuple(e.id for e in self.catalog.events_for_service(service.key) if e.meaning in meanings)

    # ------------------------------------------------------------------ reads
    def services(
        self,
        service: str | Service | None = None,
        *,
        activity: bool = True,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> list[ServiceStatus]:
        """The product's services (or one), with their activity unless ``activity`` is False.

        Every read and change method takes ``cancel`` (checked before the call is sent: ``Cancelled``,
        nothing sent) and ``deadline`` (seconds for the whole call, retries included; the shorter of it
        and ``timeout`` applies). With ``activity=False`` every status has ``activity`` None.
        """
        values: dict[str, object] = {}
        if self.product.service_control == "cs" and not activity:
            values["ExcludeActivityLevel"] = True
        svc = None if service is None else self.resolve(service)
        rendered = self.render("status", svc, **values)
        found = self._statuses(self._run(rendered, timeout, cancel, deadline), svc)
        return found if activity else [dataclasses.replace(s, activity=None) for s in found]

    def status(
        self,
        service: str | Service,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> ServiceStatus:
        svc = self.resolve(service)
        return self._one(self._run(self.render("status", svc), timeout, cancel, deadline), svc)

    def events(
        self,
        ids: Iterable[int],
        since: datetime,
        *,
        log_name: str | None = None,
        max_events: int | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> list[EventRecord]:
        id_list = sorted({int(i) for i in ids})
        rendered = self.render(
            "events",
            LogName=log_name or self.product.event_log,
            Id=tuple(str(i) for i in id_list),
            Since=since.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            MaxEvents=max_events,
        )
        records = [parse_event_record(obj) for obj in self._run(rendered, timeout, cancel, deadline).output]
        for record in records:
            self.check_computer(record.computer)
        return sorted(records, key=lambda e: e.time)

    def queue_privacy(
        self,
        queue_path: str,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> QueuePrivacy:
        result = self._run(self.render("msmq-privacy", QueuePath=queue_path), timeout, cancel, deadline)
        if not result.output:
            raise OperationFailed("the queue privacy read returned nothing", host=self.host)
        privacy = parse_queue_privacy(result.output[0])
        self.check_computer(privacy.computer)
        return privacy

    def wmi_setting(
        self,
        wmi_class: str,
        properties: Sequence[str] = (),
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> list[WmiSetting]:
        rendered = self.render("wmi-setting", Class=wmi_class, Property=tuple(properties) or None)
        settings = [parse_wmi_setting(obj) for obj in self._run(rendered, timeout, cancel, deadline).output]
        for setting in settings:
            self.check_computer(setting.computer)
        return settings

    # ------------------------------------------------------------------ changes
    def begin_drain(
        self,
        service: str | Service,
        *,
        leave_running: Iterable[str] = (),
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> ServiceStatus:
        """Ask for a graceful stop and return at once (the service shows Paused while it drains)."""
        svc = self.resolve(service)
        values: dict[str, object] = {"NoWait": True}
        values.update(self.catalog.leave_running(self.product, leave_running).values)
        return self._one(self._run(self.render("drain", svc, **values), timeout, cancel, deadline), svc)

    def render_drain_watch(
        self,
        service: str | Service,
        *,
        request: bool,
        poll: float,
        until: float,
        since: datetime | None = None,
        leave_running: Iterable[str] = (),
    ) -> RenderedScript:
        """The script ``watch_drain`` sends, with its values bound: what a rehearsal shows."""
        svc = self.resolve(service)
        values = drain_watch_values(self.catalog, self.product, svc, poll=poll, until=until)
        if since is not None:
            values["Since"] = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if request:
            values.update(self.catalog.leave_running(self.product, leave_running).values)
        return self.render("drain-watch" if request else "drain-follow", svc, **values)

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
    ) -> None:
        """Watch a drain in one pipeline: each status (and new drain/stop event) is handed over as it comes.

        With ``request`` the script first asks for the graceful stop (``-NoWait``, a change: never sent
        twice); without it the script only watches a drain already asked for (a read, retried on a fresh
        session after a dropped connection). It writes the status every ``poll`` seconds until the service
        is Stopped or ``until`` seconds have passed by the server's own clock, then ends by itself, so a
        client that vanishes leaves nothing running past ``until``. ``timeout`` bounds the call on this
        side (default: ``until`` plus a margin for the last status and the teardown); ``cancel`` stops
        the pipeline after the next status (``StreamStopped``). Events are the service's drain and stop
        events logged since ``since`` (default: shortly before the script starts, by the server's clock).
        Returns when the pipeline has ended; every answer is checked as ``status`` checks it.
        """
        from ocsps.results.base import prop

        svc = self.resolve(service)
        rendered = self.render_drain_watch(
            svc, request=request, poll=poll, until=until, since=since, leave_running=leave_running
        )
        budget = timeout if timeout is not None else until + WATCH_MARGIN + poll

        def arrived(obj: object) -> None:
            if prop(obj, "TimeCreated") is not None:
                record = parse_event_record(obj)
                self.check_computer(record.computer)
                if on_event is not None:
                    on_event(record)
                return
            on_status(self._one(RunResult(self.host, rendered.action, (obj,)), svc))

        self.session.stream(rendered, arrived, timeout=budget, cancel=cancel).raise_for_errors()

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
        start_again: bool = False,
        deadline: float | None = None,
    ) -> DrainReport:
        """Drain ``service`` gracefully, watch it empty, and report; see :func:`ocsps.operations.drain.drain`.

        ``timeout`` (seconds) is how long the service may take to empty; ``poll`` how often the server
        writes its status (the request and the watch are one pipeline, see :meth:`watch_drain`). At the
        deadline ``then`` decides: ``"fail"`` (report it), ``"force-stop"`` or
        ``"leave"`` (let it stop on its own). ``start_again`` starts the service again once drained (a
        rolling drain). The drain's own outcome is in the returned ``DrainReport`` (``report.ok``,
        ``report.phase``); only bad arguments raise (a ``poll`` longer than ``timeout`` is one).
        ``cancel`` is observed before the request and after every status: the watch's pipeline is
        stopped on the server, the drain goes on (phase ``interrupted``);
        ``deadline`` (seconds) bounds the whole call, polls included (phase ``deadline`` when it passes).

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
        leave = tuple(leave_running)
        self.catalog.leave_running(self.product, leave)  # a name it cannot keep is refused: nothing sent
        return drain(
            self,
            service,
            timeout=timeout,
            poll=poll,
            then=policy,
            leave_running=leave,
            wait=wait,
            on_update=on_update,
            cancel=cancel,
            on_decision=on_decision,
            start_again=start_again,
            deadline=deadline,
        )

    def change(
        self,
        service: str,
        action: Action,
        *,
        force: bool = False,
        confirm: Confirm | None = None,
        on_decision: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> ServiceChange:
        """Stop, start or restart ``service`` as ``ocsps stop|start|restart`` does; see
        :func:`ocsps.operations.change.change_service`.

        The service is read first (already in the wanted state: nothing is sent), a plain stop of a
        service with active sessions needs ``confirm`` to answer True, and a lost reply is settled from
        evidence, never repeated on a guess. ``stop``/``start``/``restart`` below send the call as is.

        Example::

            done = server.change("RTCMEDSRV", "start")
            print(done.before.status.value, "->", done.after.status.value, done.note)
        """
        from ocsps.operations.change import change_service

        return change_service(
            self,
            service,
            action,
            force=force,
            confirm=confirm,
            on_decision=on_decision,
            cancel=cancel,
            deadline=deadline,
        )

    def stop(
        self,
        service: str | Service,
        *,
        force: bool = False,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> ServiceStatus:
        svc = self.resolve(service)
        rendered = self.render("stop", svc, Force=force or None)
        return self._one(self._run(rendered, timeout, cancel, deadline), svc)

    def start(
        self,
        service: str | Service,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> ServiceStatus:
        svc = self.resolve(service)
        return self._one(self._run(self.render("start", svc), timeout, cancel, deadline), svc)

    def restart(
        self,
        service: str | Service,
        *,
        force: bool = False,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> ServiceStatus:
        """Send the restart cmdlets as they are (stop, then start) and read the service once.

        What Windows stopped with the service (its running dependents) stays stopped: ``ocsps restart``
        runs :func:`ocsps.operations.restart.restart_service` instead, which stops them first, starts them
        again last and reports any found down. Use that, or ``change(service, "restart")`` for the read
        first and the settling of a lost reply.
        """
        svc = self.resolve(service)
        rendered = self.render("restart", svc, Force=force or None)
        return self._one(self._run(rendered, timeout, cancel, deadline), svc)

    def run_restart_plan(
        self,
        plan: Mapping[str, Any],
        *,
        restore: bool = True,
        on_step: Callable[[StepResult], None] | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
        on_decision: Callable[[str], None] | None = None,
    ) -> RestartReport:
        """Run a sealed restart plan; see :func:`ocsps.operations.restart.run_restart_plan`.

        Every planned service is looked up before anything stops (absent ones are skipped with a note);
        after a failure, a cancel or the ``deadline`` (seconds), what the run stopped is started again
        unless ``restore`` is False. The report lists each step and the services seen down at the end.

        Example::

            from ocsps.plans.sealed import load_plan

            report = server.run_restart_plan(load_plan(Path("plan.json"), "restart"), deadline=1800)
            print(report.phase.value, [s.display_name for s in report.down])
        """
        from ocsps.operations.restart import run_restart_plan

        return run_restart_plan(
            self,
            plan,
            restore=restore,
            on_step=on_step,
            cancel=cancel,
            deadline=deadline,
            on_decision=on_decision,
        )

    def deactivate(
        self,
        arguments: Sequence[str],
        log_path: str,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> LcsCmdOutcome:
        rendered = self.render(
            "deactivate", LcsCmdPath=self.catalog.lcscmd_path, Arguments=tuple(arguments), LogPath=log_path
        )
        result = self._run(rendered, timeout, cancel, deadline)
        if not result.output:
            raise OperationFailed("LcsCmd returned no outcome", host=self.host)
        return parse_lcscmd_outcome(result.output[0])


def drain_watch_values(
    catalog: Catalog, product: Product, service: Service, *, poll: float, until: float
) -> dict[str, object]:
    """The timing and event values of a drain watch (``drain-watch``/``drain-follow``), service aside.

    Shared by ``Server.watch_drain`` and what ``ocsps drain --what-if`` shows, so both name the same
    script with the same values: the poll and the server-side deadline in milliseconds, and the
    service's drain and stop events (none for a service the catalog knows no events for).
    """
    values: dict[str, object] = {
        "PollMilliseconds": max(1, round(poll * 1000)),
        "DeadlineMilliseconds": max(1, round(until * 1000)),
    }
    meanings = ("drain-started", "drain-completed", "stopped")
    ids = sorted({e.id for e in catalog.events_for_service(service.key) if e.meaning in meanings})
    if ids:
        values["EventId"] = tuple(str(i) for i in ids)
        values["LogName"] = product.event_log
    return values


WATCH_MARGIN = 30.0
"""Seconds a drain watch may run on this side past its server-side deadline: the last status, a slow
Receive and the release of the pipeline. The server ends the loop itself; this only bounds waiting."""


def answering_computer_ok(host: str, computer: str | None, expected: str | None = None) -> bool:
    """Whether ``computer`` (the name the server reports) is the host that was named.

    Equal names match, and so do equal first labels when one side is a short name (``med01`` for
    ``med01.contoso.com``). ``expected`` (the ``expect_computer`` setting) replaces ``host`` for a server
    reached by an alias. An answer without a name, or a host named by its IP address, cannot be compared
    and passes: set ``expect_computer`` to have it checked.
    """
    if not computer:
        return True
    name = (expected or host).casefold().rstrip(".")
    got = computer.casefold().rstrip(".")
    if name == got:
        return True
    if expected is None and _is_address(name):
        return True
    if "." in name and "." in got:
        return False
    return name.split(".")[0] == got.split(".")[0]


def _is_address(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _same_service(asked: dict[str, str], status: ServiceStatus) -> bool:
    """Whether a status object is about the service asked for: by short name, else by display pattern."""
    import fnmatch

    if "Name" in asked:
        return status.name.casefold() == asked["Name"].casefold()
    pattern = asked.get("DisplayPattern")
    if pattern and status.display_name:
        return fnmatch.fnmatchcase(status.display_name.casefold(), pattern.casefold())
    return True


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


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
    cat = catalog or load_catalog()
    prod = cat.product(product) if isinstance(product, str) else product
    try:
        conn = settings_from_keywords(
            host, product=prod.id, auth=auth, username=username, password=password, options=settings
        )
    except UsageError as exc:
        raise UsageError(exc.args[0], host=host, hint=exc.hint) from None
    session = ServerSession(conn, prod, default_timeout=timeout, on_progress=on_progress, audit=audit)
    return Server(session, cat)
