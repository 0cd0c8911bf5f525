"""The simulated servers' state and behaviour: services, drains, events, LcsCmd, MSMQ and WMI.

This is a model of what the product does, not a copy of it: drains empty activity counters linearly
over a configurable time, Mediation logs 25049/25050/25003 as documented, LcsCmd refuses roles out of the
seed 001 order and writes an XML log with an Execution Result per task. Everything is thread-safe behind
one lock per server, and time comes from an injectable clock so tests can move it deliberately.

Service control follows two rule sets, because real servers do:

- Windows' service control manager (``Stop-Service`` / ``Start-Service``, what OCS 2007 / R2 scripts
  use): stopping a service whose dependents run is refused unless forced, and forced it stops them first;
  starting a service starts its prerequisites first and never its dependents; a Disabled service does
  not start.
- ``Stop-CsWindowsService`` / ``Start-CsWindowsService`` (Lync / SfB): stopping also stops the dependent
  services; starting starts prerequisites, not dependents.

Dependencies come from the lab's own facts (``ocsps/lab/facts/services.toml``), never from the catalog
the product plans with. A graceful stop is acknowledged ``ack_delay`` seconds after the request, as a
real service does not change state in the instant the cmdlet returns.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from ocsps.catalog import Catalog, Product, Role, Service, load_catalog
from ocsps.lab.facts import load_lab_facts

Clock = Callable[[], float]

RUNNING, STOPPED, PAUSED = "Running", "Stopped", "Paused"
STARTUP_TYPES = ("Automatic", "Manual", "Disabled")


class LabError(Exception):
    """A simulated server refuses an operation the way the real one would; carries PowerShell fields."""

    def __init__(self, message: str, *, category: str = "InvalidOperation", error_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_id = error_id or "InvalidOperation"


@dataclass
class SimService:
    key: str
    name: str
    display_name: str
    roles: tuple[str, ...]
    status: str = RUNNING
    activity: dict[str, float] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    events: dict[str, int] = field(default_factory=dict)  # meaning -> event id (catalog events)
    fails_to_stop: bool = False
    stuck_drain: bool = False
    drain_started: float | None = None
    drain_initial: dict[str, float] = field(default_factory=dict)
    startup: str = "Automatic"  # Automatic | Manual | Disabled (Set-Service -StartupType)
    ack_due: float | None = None  # a graceful stop was requested: the clock time it is acknowledged
    graceful_requests: int = 0  # how many graceful stops reached this service (a re-sent stop shows here)

    def activity_text(self) -> str:
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.activity.items())


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


@dataclass(frozen=True)
class SimEvent:
    id: int
    time: datetime
    log: str
    source: str
    level: str
    message: str


@dataclass(frozen=True)
class SimCertificate:
    """A certificate of the simulated computer's Personal store; ``key_readers`` None: ACL unreadable."""

    thumbprint: str
    serial: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    has_private_key: bool = True
    archived: bool = False
    key_readers: tuple[str, ...] | None = None


@dataclass
class SimServer:
    """One simulated computer of the estate."""

    fqdn: str
    product: Product
    roles: tuple[str, ...]
    services: dict[str, SimService]
    pool: str = ""
    site: str = ""
    drain_seconds: float = 5.0
    in_perfmon_group: bool = True
    msmq_installed: bool = False
    msmq_ad_integrated: bool | None = None
    queues: dict[str, str] = field(default_factory=dict)
    wmi: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    activated_roles: list[str] = field(default_factory=list)
    lcscmd_fail_roles: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)
    events: list[SimEvent] = field(default_factory=list)
    certificates: list[SimCertificate] = field(default_factory=list)  # LocalMachine\My (see check_sim)
    certificate_assignments: dict[str, str] = field(
        default_factory=dict
    )  # Get-CsCertificate Use -> thumbprint
    module_loads: bool = True
    powershell: str = ""  # $PSVersionTable.PSVersion reported by checks; the product's level when empty
    lcscmd_installed: bool = True
    lcscmd_path: str = field(default_factory=lambda: load_lab_facts().lcscmd_path)
    ack_delay: float = 0.0  # seconds between a graceful stop request and the service acting on it
    computer_name: str = ""  # the FQDN this computer reports about itself; empty: its own fqdn
    answer_as: dict[str, str] = field(default_factory=dict)  # asked name (casefolded) -> service answering
    clock: Clock = time.time
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    catalog: Catalog = field(default_factory=load_catalog, repr=False)

    # ------------------------------------------------------------------ identity and files
    @property
    def reported_name(self) -> str:
        """The FQDN the computer reports about itself (``computer_name``, else its own name)."""
        return self.computer_name or self.fqdn

    def lcscmd_at(self, path: str) -> bool:
        """Whether LCSCmd.exe is installed at ``path`` (environment variables expanded, case ignored)."""
        return self.lcscmd_installed and _same_path(path, self.lcscmd_path)

    def file_exists(self, path: str) -> bool:
        """What ``Test-Path`` answers: LCSCmd.exe where the topology put it, and files the lab wrote."""
        return self.lcscmd_at(path) or any(_same_path(path, known) for known in self.files)

    # ------------------------------------------------------------------ time
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def log_event(
        self,
        event_id: int,
        message: str,
        *,
        log: str | None = None,
        level: str = "Information",
        at: float | None = None,
    ) -> None:
        source = "LS Mediation Server" if 25000 <= event_id < 26000 else "LS Server"
        when = self.now() if at is None else datetime.fromtimestamp(at, UTC)
        log = log or load_lab_facts().event_logs.get(self.product.id, self.product.event_log)
        self.events.append(SimEvent(event_id, when, log, source, level, message))

    def _service_event(self, svc: SimService, meaning: str, at: float | None = None) -> None:
        """Log the event the lab's facts document for this service and moment, if there is one."""
        event_id = svc.events.get(meaning)
        if event_id is not None:
            self.log_event(event_id, f"{svc.display_name}: {meaning.replace('-', ' ')}.", at=at)

    def tick(self) -> None:
        """Advance to the current time: acknowledge graceful stops that are due, then advance drains
        (activity falls linearly, then the service stops)."""
        with self.lock:
            now = self.clock()
            for svc in self.services.values():
                if svc.ack_due is not None and svc.ack_due <= now:
                    due, svc.ack_due = svc.ack_due, None
                    if svc.status == RUNNING:
                        self._stop_now(svc, graceful=True, force=False, at=due)
            for svc in self.services.values():
                if svc.status != PAUSED or svc.drain_started is None or svc.stuck_drain:
                    continue
                left = max(0.0, 1.0 - (now - svc.drain_started) / max(self.drain_seconds, 1e-6))
                svc.activity = {k: round(v * left) for k, v in svc.drain_initial.items()}
                if left <= 0.0:
                    self._service_event(svc, "drain-completed")
                    self._stopped(svc)

    # ------------------------------------------------------------------ services
    def find(self, name: str) -> SimService:
        """The service ``name`` designates here; ``answer_as`` can make the server answer another one."""
        folded = self.answer_as.get(name.casefold(), name).casefold()
        for svc in self.services.values():
            if folded in (svc.name.casefold(), svc.key.casefold()):
                return svc
        raise LabError(
            f"Cannot find any service with service name '{name}'.",
            category="ObjectNotFound",
            error_id="NoServiceFoundForGivenName",
        )

    def find_display(self, pattern: str) -> list[SimService]:
        import fnmatch

        return [
            s
            for s in self.services.values()
            if fnmatch.fnmatchcase(s.display_name.casefold(), pattern.casefold())
        ]

    def list_services(self, name: str | None = None) -> list[SimService]:
        self.tick()
        with self.lock:
            return [self.find(name)] if name else list(self.services.values())

    def dependents(self, svc: SimService) -> list[SimService]:
        return [s for s in self.services.values() if svc.key in s.requires]

    def _dependents_first(self, svc: SimService) -> list[SimService]:
        """Every service that depends on ``svc``, directly or not, each before what it depends on."""
        ordered: list[SimService] = []

        def visit(node: SimService) -> None:
            for dep in self.dependents(node):
                if dep not in ordered and dep is not svc:
                    visit(dep)
                    ordered.append(dep)

        visit(svc)
        return ordered

    def _prerequisite(self, key: str) -> SimService | None:
        return next((s for s in self.services.values() if s.key == key), None)

    def _stopped(self, svc: SimService, at: float | None = None) -> None:
        svc.status = STOPPED
        svc.activity = {k: 0 for k in svc.activity}
        svc.drain_started = None
        svc.ack_due = None
        self._service_event(svc, "stopped", at)

    def _refuse_if_stuck(self, svc: SimService) -> None:
        if svc.fails_to_stop:
            raise LabError(
                f"Service '{svc.display_name} ({svc.name})' cannot be stopped due to the following "
                "error: "
                "Cannot stop the service on computer '.'.",
                error_id="CouldNotStopService",
            )

    def stop(self, name: str, *, graceful: bool = False, force: bool = False) -> SimService:
        """``Stop-CsWindowsService``: dependents stop too; ``graceful`` drains, once acknowledged."""
        self.tick()
        with self.lock:
            svc = self.find(name)
            if svc.status == STOPPED:
                return svc
            if graceful:
                svc.graceful_requests += 1
            self._refuse_if_stuck(svc)
            if graceful and not force and self.ack_delay > 0 and svc.status == RUNNING:
                if svc.ack_due is None:  # a repeated request while one is pending changes nothing
                    svc.ack_due = self.clock() + self.ack_delay
                return svc
            self._stop_now(svc, graceful=graceful, force=force)
            return svc

    def _stop_now(self, svc: SimService, *, graceful: bool, force: bool, at: float | None = None) -> None:
        for dep in self._dependents_first(svc):
            if dep.status != STOPPED:
                self._stopped(dep, at)
        if graceful and not force and any(v > 0 for v in svc.activity.values()):
            if svc.status != PAUSED:
                svc.status = PAUSED
                svc.drain_started = self.clock() if at is None else at
                svc.drain_initial = dict(svc.activity)
                self._service_event(svc, "drain-started", at)
            return
        if graceful and svc.status != PAUSED:
            self._service_event(svc, "drain-started", at)
            self._service_event(svc, "drain-completed", at)
        self._stopped(svc, at)

    def stop_service(self, name: str, *, force: bool = False) -> SimService:
        """``Stop-Service``: refused while a dependent runs, unless forced; forced, dependents stop first."""
        self.tick()
        with self.lock:
            svc = self.find(name)
            if svc.status == STOPPED:
                return svc
            running = [d for d in self._dependents_first(svc) if d.status != STOPPED]
            if running and not force:
                raise LabError(
                    f"Cannot stop service '{svc.display_name} ({svc.name})' because it has dependent "
                    "services. It can only be stopped if the Force flag is set.",
                    category="InvalidOperation",
                    error_id="ServiceHasDependentServices,Microsoft.PowerShell.Commands.StopServiceCommand",
                )
            for dep in running:
                self._refuse_if_stuck(dep)
                self._stopped(dep)
            self._refuse_if_stuck(svc)
            self._stopped(svc)
            return svc

    def start(self, name: str, *, windows: bool = False) -> SimService:
        """Start a service and, first, its prerequisites (as the service control manager does); its
        dependents stay as they are. ``windows``: errors read as ``Start-Service`` writes them."""
        self.tick()
        with self.lock:
            svc = self.find(name)
            blocked = self._disabled_on_the_way(svc, set())
            if blocked is not None:
                raise LabError(
                    f"Service '{svc.display_name} ({svc.name})' cannot be started due to the following "
                    f"error: Cannot start service {svc.name} on computer '.'.",
                    category="OpenError",
                    error_id="CouldNotStartService"
                    + (",Microsoft.PowerShell.Commands.StartServiceCommand" if windows else ""),
                )
            self._start(svc, set())
            return svc

    def _disabled_on_the_way(self, svc: SimService, seen: set[str]) -> SimService | None:
        """The first Disabled service that starting ``svc`` would need to start, if any."""
        if svc.key in seen:
            return None
        seen.add(svc.key)
        for key in svc.requires:
            prereq = self._prerequisite(key)
            if prereq is not None and prereq.status != RUNNING:
                blocked = self._disabled_on_the_way(prereq, seen)
                if blocked is not None:
                    return blocked
        return svc if svc.status != RUNNING and svc.startup == "Disabled" else None

    def _start(self, svc: SimService, seen: set[str]) -> None:
        if svc.key in seen:
            return
        seen.add(svc.key)
        for key in svc.requires:
            prereq = self._prerequisite(key)  # a prerequisite this server lacks is not modelled
            if prereq is not None:
                self._start(prereq, seen)
        if svc.status != RUNNING:
            svc.status = RUNNING
            svc.drain_started = None
            self._service_event(svc, "started")

    def set_startup(self, name: str, startup: str) -> SimService:
        """``Set-Service -StartupType``: only the start-up type changes, never the state."""
        with self.lock:
            svc = self.find(name)
            chosen = next((s for s in STARTUP_TYPES if s.casefold() == startup.casefold()), None)
            if chosen is None:
                raise LabError(
                    f"Cannot bind parameter 'StartupType'. Cannot convert value \"{startup}\" to type "
                    '"System.ServiceProcess.ServiceStartMode". Specify one of: '
                    f"{', '.join(STARTUP_TYPES)}.",
                    category="InvalidArgument",
                    error_id="CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.SetServiceCommand",
                )
            svc.startup = chosen
            return svc

    # ------------------------------------------------------------------ events
    def query_events(self, log: str, ids: Iterable[int], since: datetime) -> list[SimEvent]:
        self.tick()
        wanted = set(ids)
        with self.lock:
            return [
                e
                for e in self.events
                if e.log.casefold() == log.casefold() and e.id in wanted and e.time >= since
            ]

    # ------------------------------------------------------------------ LcsCmd
    def lcscmd(self, arguments: list[str], log_path: str) -> tuple[int, str]:
        """Deactivate the role the arguments name; refuse an out-of-order request like the wizard does."""
        with self.lock:
            if any(a.casefold() == "/action:checklcserverstate" for a in arguments):
                return self._lcscmd_state(log_path)
            role = self._role_for(arguments)
            if role is None:
                text = f"Unrecognized command line: {' '.join(arguments)}"
                self.files[log_path] = _lcscmd_log([("Parse command line", "Failure", text)])
                return 1, text
            tasks: list[tuple[str, str, str]] = []
            named = _context_value(arguments)
            if named and named.casefold() not in (self.fqdn.casefold(), self.reported_name.casefold()):
                tasks.append(
                    (
                        f"Check {role.label}",
                        "Failure",
                        f"{named} is not this computer ({self.reported_name}): roles are deactivated on "
                        "the computer that holds them.",
                    )
                )
            if role.key not in self.activated_roles:
                tasks.append(
                    (f"Check {role.label}", "Failure", f"{role.label} is not activated on {self.fqdn}")
                )
            blocking = self._blocking_roles(role)
            if blocking:
                names = ", ".join(self.catalog.roles[b].label for b in blocking)
                tasks.append((f"Check dependencies of {role.label}", "Failure", f"Deactivate first: {names}"))
            if not tasks and role.key in self.lcscmd_fail_roles:
                self.lcscmd_fail_roles.discard(role.key)
                tasks = [
                    (f"Stop {role.label} services", "Success", ""),
                    (
                        f"Remove {role.label} Active Directory objects",
                        "Failure",
                        "Access is denied (0x80070005).",
                    ),
                ]
            if not tasks:
                tasks = [
                    (f"Stop {role.label} services", "Success", ""),
                    (f"Remove {role.label} Active Directory objects", "Success", ""),
                    (f"Deactivate {role.label}", "Success", ""),
                ]
                self.activated_roles.remove(role.key)
                for key in role.services:
                    svc = next((s for s in self.services.values() if s.key == key), None)
                    if svc is not None:
                        self._stopped(svc)
            failed = any(result != "Success" for _, result, _ in tasks)
            self.files[log_path] = _lcscmd_log(tasks)
            return (1 if failed else 0), ("Deactivation failed. See the log." if failed else "Success")

    def _lcscmd_state(self, log_path: str) -> tuple[int, str]:
        """CheckLCServerState: one task per role of the product, named by its label (the lab's layout)."""
        tasks = [
            (role.label, "Activated" if role.key in self.activated_roles else "Not activated", "")
            for role in self.catalog.roles.values()
            if self.product.id in role.products
        ]
        self.files[log_path] = _lcscmd_log(tasks, action="CheckLCServerState")
        return 0, "Success"

    def _role_for(self, arguments: list[str]) -> Role | None:
        """The role a command line deactivates, by the forms the lab's facts accept (any order)."""
        given = sorted(
            _signature(a for a in arguments if a.partition(":")[0].casefold() not in _COMMON_SWITCHES)
        )
        for key, forms in load_lab_facts().lcscmd_forms.items():
            role = self.catalog.roles.get(key)
            accepted = any(sorted(_signature(form)) == given for form in forms)
            if accepted and role is not None and self.product.id in role.products:
                return role
        return None

    def _blocking_roles(self, role: Role) -> list[str]:
        """Roles on this computer that must go first, by the lab's documented sequence (never the
        catalog's order, which is what the lab checks)."""
        facts = load_lab_facts()
        step = facts.deactivation_step(role.key)
        if step is None:
            return []
        return [
            key
            for key in self.activated_roles
            if key != role.key and (earlier := facts.deactivation_step(key)) is not None and earlier < step
        ]


# Switches LcsCmd accepts with every action; they do not name a role.
_COMMON_SWITCHES = frozenset({"/xml", "/l", "/force", "/nostart"})


def _context_value(arguments: list[str]) -> str:
    """The FQDN a command line's context names (``/Server:<FQDN>``), or "" when it names none."""
    for token in arguments:
        head, _, value = token.partition(":")
        if head.casefold() not in (*_COMMON_SWITCHES, "/role", "/action", "/components") and value:
            return value
    return ""


def _signature(tokens: Iterable[str]) -> list[str]:
    """LcsCmd arguments with the values of contexts and /Components: removed, for matching a role."""
    out = []
    for token in tokens:
        head, sep, value = token.partition(":")
        keep_value = head.casefold() in ("/role", "/action")
        out.append((head + sep + value if keep_value else head).casefold())
    return out


def _lcscmd_log(tasks: list[tuple[str, str, str]], *, action: str = "Deactivate") -> str:
    """An XML log with one Execution Result per task (the lab's stand-in for LcsCmd's own format)."""
    rows = "".join(
        f'  <Task Name="{escape(name, {chr(34): "&quot;"})}">\n'
        f"    <ExecutionResult>{escape(result)}</ExecutionResult>\n"
        + (f"    <Detail>{escape(detail)}</Detail>\n" if detail else "")
        + "  </Task>\n"
        for name, result, detail in tasks
    )
    head = '<?xml version="1.0" encoding="utf-8"?>\n<Log Tool="LCSCmd.exe">\n'
    return f'{head}<Action Name="{action}">\n{rows}</Action>\n</Log>\n'


def default_services(catalog: Catalog, product: Product, roles: Iterable[str]) -> list[Service]:
    """Services a server of these roles runs, per the catalog."""
    wanted = set(roles)
    found = []
    for svc in catalog.services_for(product):
        if set(svc.roles) & wanted or "All" in svc.roles:
            found.append(svc)
    return found


def build_service(
    catalog: Catalog,
    product: Product,
    service: Service,
    *,
    activity: Mapping[str, float] | None = None,
    status: str = RUNNING,
    server_roles: Iterable[str] = (),
) -> SimService:
    """A service as the lab runs it: names from the catalog, dependencies and events from the lab's facts."""
    name = service.name or _ocs_short_name(service.key)
    return SimService(
        key=service.key,
        name=name,
        display_name=service.display_name(product),
        roles=service.roles,
        status=status,
        activity=dict(activity or {}),
        requires=load_lab_facts().requires(product.id, service.key),
        events=load_lab_facts().events_for(name, tuple(server_roles)),
    )


def _normal_path(path: str) -> str:
    """A Windows path as the file system compares it: variables expanded, one separator, case folded."""
    program_files = load_lab_facts().program_files
    expanded = re.sub(
        r"%programfiles%|\$env:programfiles", lambda _: program_files, path, flags=re.IGNORECASE
    )
    return re.sub(r"[\\/]+", r"\\", expanded).rstrip("\\").casefold()


def _same_path(a: str, b: str) -> bool:
    return _normal_path(a) == _normal_path(b)


def _ocs_short_name(key: str) -> str:
    """OCS short names are undocumented; the lab invents stable ones and ocsps finds them by display name."""
    return "RTC" + key.removeprefix("ocs-").replace("-", "").upper()
