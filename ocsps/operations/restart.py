"""Restarts that leave a server as they found it: a service with its dependents, or a sealed restart plan.

Both run the same sequence of stop and start steps under the same rules:

1. **Check before.** Every service the steps name is looked up on the server before anything changes
   (one read of the product's services; one more per service outside the product, such as SQL Server).
   A service that is not on this computer is skipped, with a note, for all its steps: an expanded OCS
   topology has no Web Conferencing on its Front End, and a restart plan written from the rules must
   still run there. The run never stops a service it has not found.
2. **Change in dependency order.** Dependents stop before what they require (Windows refuses to stop a
   service whose dependents run); starts go in reverse.
3. **Restore after a failure.** If a step fails, the run is cancelled or its deadline passes, what this
   run stopped is started again, prerequisites first (unless ``restore=False``).
4. **Never send a change twice on a guess.** Each stop and start goes through
   :func:`ocsps.operations.change.apply_change`: after a lost reply the service is re-read and the
   decision rests on what the re-read shows.
5. **Report what was seen.** The services are read once more at the end; ``down`` lists those observed
   not running, and a report is ``ok`` only when every service the run stopped or was asked to start
   runs again.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import msgspec

from ocsps.catalog import Catalog, Product, Service
from ocsps.errors import (
    OcspsError,
    OperationFailed,
    OutcomeUnknown,
    RemoteError,
    TimeoutExceeded,
    UsageError,
)
from ocsps.operations.change import STARTING, STOPPING, ServiceControl, apply_change
from ocsps.plans.restart import ServiceStep, plan_steps, service_restart_steps
from ocsps.results import ServiceState, ServiceStatus

FORMAT_VERSION = 1
DEFAULT_RESTORE_TIMEOUT = 120.0


class RestartTarget(ServiceControl, Protocol):
    """What a restart needs of a server beyond single-service calls: its product, catalog and listing."""

    @property
    def product(self) -> Product: ...

    @property
    def catalog(self) -> Catalog: ...

    def services(
        self, service: str | Service | None = None, *, activity: bool = True, timeout: float | None = None
    ) -> list[ServiceStatus]: ...


class StepOutcome(StrEnum):
    DONE = "done"  # sent, and the status read back shows it
    ALREADY = "already"  # the service was already in the wanted state: nothing sent
    SKIPPED = "skipped"  # not on this computer, or (a dependent) not running before the run
    FAILED = "failed"  # sent and refused, or the status read back is not the wanted one
    UNKNOWN = "unknown"  # the reply was lost and the re-read could not decide
    NOT_RUN = "not-run"  # never reached: an earlier failure, a cancel or the deadline


class RunPhase(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DEADLINE = "deadline"


@dataclass(frozen=True)
class StepResult:
    number: int
    verb: str
    key: str
    display_name: str
    outcome: StepOutcome
    status: ServiceState | None = None
    note: str = ""
    seconds: float = 0.0
    restore: bool = False  # a start sent to bring back what this run stopped

    @property
    def label(self) -> str:
        return f"{self.verb} {self.display_name}"


@dataclass(frozen=True)
class ServiceSeen:
    """A service of the run as observed at the end (or last known, when the final read failed)."""

    key: str
    display_name: str
    status: ServiceState
    before: ServiceState | None
    note: str = ""


@dataclass(frozen=True)
class RestartReport:
    """What a restart or restart-plan run did on one server, and what it saw at the end."""

    host: str
    product: str
    phase: RunPhase
    steps: tuple[StepResult, ...]
    restored: tuple[StepResult, ...] = ()
    absent: tuple[tuple[str, str], ...] = ()  # (key, display name) not on this computer
    down: tuple[ServiceSeen, ...] = ()
    expected_running: tuple[str, ...] = ()  # keys that must run at the end for the run to be ok
    observed: bool = True  # False: the final read failed and ``down`` holds last known states
    computer: str = ""
    error: str = ""
    notes: tuple[str, ...] = ()
    read_before: Mapping[str, ServiceStatus] = field(default_factory=dict)
    """Each service found by the look-up before the run, by catalog key (without activity)."""
    read_after: Mapping[str, ServiceStatus] = field(default_factory=dict)
    """Each service as the final read found it, by catalog key (empty when that read failed)."""

    @property
    def changed(self) -> bool:
        """Whether the run sent a change (or may have: a lost reply counts); False when every step was
        already done, skipped or never reached."""
        quiet = (StepOutcome.ALREADY, StepOutcome.SKIPPED, StepOutcome.NOT_RUN)
        return any(s.outcome not in quiet for s in (*self.steps, *self.restored))

    @property
    def exit_code(self) -> int:
        """The process exit code this report stands for: 0 ok, 4 the deadline, 130 interrupted, else 1."""
        if self.ok:
            return 0
        return {RunPhase.DEADLINE: 4, RunPhase.INTERRUPTED: 130}.get(self.phase, 1)

    @property
    def ok(self) -> bool:
        """Completed, and every service the run stopped or was asked to start is seen running."""
        down = {s.key for s in self.down}
        return (
            self.phase is RunPhase.COMPLETED
            and self.observed
            and not (down & set(self.expected_running))
            and not any(s.outcome in (StepOutcome.FAILED, StepOutcome.UNKNOWN) for s in self.steps)
        )

    @property
    def stopped_by_run(self) -> tuple[str, ...]:
        """Keys this run stopped that are down at the end: what an operator must bring back by hand."""
        return tuple(s.key for s in self.down if s.key in self.expected_running)


class RestartRunStepDocument(msgspec.Struct):
    """A step as the restart report writes it (``docs/schemas/restart.schema.json``, ``$defs/step``)."""

    step: int
    do: str
    key: str
    display_name: str
    outcome: StepOutcome
    status: ServiceState | None
    note: str
    seconds: float
    restore: bool

    @classmethod
    def of(cls, step: StepResult) -> RestartRunStepDocument:
        return cls(
            step.number,
            step.verb,
            step.key,
            step.display_name,
            step.outcome,
            step.status,
            step.note,
            round(step.seconds, 3),
            step.restore,
        )


class AbsentDocument(msgspec.Struct):
    key: str
    display_name: str


class RestartReportDocument(msgspec.Struct):
    """The report as ``restart --json`` writes it (``docs/schemas/restart.schema.json``, ``$defs/report``)."""

    format: int
    host: str
    computer: str
    product: str
    phase: RunPhase
    ok: bool
    steps: tuple[RestartRunStepDocument, ...]
    restored: tuple[RestartRunStepDocument, ...]
    absent: tuple[AbsentDocument, ...]
    down: tuple[ServiceSeen, ...]
    down_observed: bool
    error: str
    notes: tuple[str, ...]

    @classmethod
    def of(cls, report: RestartReport) -> RestartReportDocument:
        return cls(
            format=FORMAT_VERSION,
            host=report.host,
            computer=report.computer,
            product=report.product,
            phase=report.phase,
            ok=report.ok,
            steps=tuple(RestartRunStepDocument.of(s) for s in report.steps),
            restored=tuple(RestartRunStepDocument.of(s) for s in report.restored),
            absent=tuple(AbsentDocument(key, name) for key, name in report.absent),
            down=report.down,
            down_observed=report.observed,
            error=report.error,
            notes=report.notes,
        )


StepCallback = Callable[[StepResult], None]
DecisionCallback = Callable[[str], None]


# ---------------------------------------------------------------------------------------------- lookup
def _matches(service: Service, product: Product, status: ServiceStatus, catalog: Catalog) -> bool:
    params = catalog.service_parameters(product, service)
    if "Name" in params:
        return status.name.casefold() == params["Name"].casefold()
    pattern = params["DisplayPattern"].casefold()
    return fnmatch.fnmatchcase((status.display_name or "").casefold(), pattern)


def _not_found(exc: OcspsError) -> bool:
    if isinstance(exc, OperationFailed):
        return "not found" in exc.message
    if isinstance(exc, RemoteError):
        return any("NoServiceFound" in r.fully_qualified_error_id for r in exc.records)
    return False


def lookup(
    server: RestartTarget, services: Iterable[Service], *, timeout: float | None = None
) -> dict[str, ServiceStatus | None]:
    """Each service's status on the server, or None when it is not there.

    One read lists the product's services; a service outside the product (SQL Server) is read by name,
    and only a "not found" answer counts as absent: any other failure raises.
    """
    wanted = list(dict.fromkeys(services))
    listing = server.services(activity=False, timeout=timeout)
    found: dict[str, ServiceStatus | None] = {}
    for service in wanted:
        match = next((s for s in listing if _matches(service, server.product, s, server.catalog)), None)
        if match is None and service.external:
            try:
                match = server.status(service, timeout=timeout)
            except (OperationFailed, RemoteError) as exc:
                if not _not_found(exc):
                    raise
        found[service.key] = match
    return found


# ---------------------------------------------------------------------------------------------- run
@dataclass
class _Run:
    server: RestartTarget
    steps: Sequence[ServiceStep]
    force: bool
    on_step: StepCallback | None
    on_decision: DecisionCallback | None
    clock: Callable[[], float]
    end: float | None
    results: list[StepResult] = field(default_factory=list)
    stopped_here: list[str] = field(default_factory=list)  # keys stopped and not started again yet
    ever_stopped: list[str] = field(default_factory=list)  # keys this run stopped (or may have)
    known: dict[str, ServiceState] = field(default_factory=dict)

    def remaining(self) -> float | None:
        return None if self.end is None else max(0.001, self.end - self.clock())

    def record(self, result: StepResult) -> StepResult:
        if self.on_step is not None:
            self.on_step(result)
        return result

    def send(
        self, number: int, step: ServiceStep, *, restore: bool = False, timeout: float | None
    ) -> StepResult:
        server, service = self.server, step.service
        display = service.display_name(server.product)
        started = self.clock()
        if step.verb == "stop":

            def call() -> ServiceStatus:
                return server.stop(service, force=self.force, timeout=timeout)

            took_effect, wanted = STOPPING, STOPPING
        else:

            def call() -> ServiceStatus:
                return server.start(service, timeout=timeout)

            took_effect, wanted = STARTING, STARTING

        def result(outcome: StepOutcome, status: ServiceState | None, note: str) -> StepResult:
            return StepResult(
                number,
                step.verb,
                service.key,
                display,
                outcome,
                status,
                note,
                self.clock() - started,
                restore,
            )

        try:
            status, note = apply_change(
                server, service, call, took_effect, what=step.verb, on_decision=self.on_decision
            )
        except (OutcomeUnknown, TimeoutExceeded) as exc:
            # the stop may have happened: count it as ours, so a restore starts it (harmless if it runs)
            self._stopped(step)
            return result(StepOutcome.UNKNOWN, None, exc.message)
        except OcspsError as exc:
            return result(StepOutcome.FAILED, None, exc.message)
        self.known[service.key] = status.status
        outcome = StepOutcome.DONE if status.status in wanted else StepOutcome.FAILED
        if outcome is StepOutcome.FAILED:
            note = (note + "; " if note else "") + f"status after {step.verb} is {status.status.value}"
        if status.status in STOPPING:
            self._stopped(step)
        if step.verb == "start" and status.status in STARTING and service.key in self.stopped_here:
            self.stopped_here.remove(service.key)
        return result(outcome, status.status, note)

    def _stopped(self, step: ServiceStep) -> None:
        if step.verb == "stop" and step.service.key not in self.stopped_here:
            self.stopped_here.append(step.service.key)
            self.ever_stopped.append(step.service.key)


def run_steps(
    server: RestartTarget,
    steps: Sequence[ServiceStep],
    *,
    force: bool = False,
    restore: bool = True,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
    restore_timeout: float = DEFAULT_RESTORE_TIMEOUT,
    on_decision: DecisionCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
    required: Iterable[str] = (),
) -> RestartReport:
    """Run stop/start steps on one server under the module's rules; see the module docstring.

    ``deadline`` (seconds) bounds the whole run before restoring; each restore call then has
    ``restore_timeout`` of its own, because leaving services down is worse than finishing late. A set
    ``cancel`` stops before the next step and restores. ``force`` sends the stop cmdlet's ``-Force``.
    A service whose key is in ``required`` must be on the computer: if it is not, nothing is sent
    (``OperationFailed``); any other absent service is skipped with a note. A ``KeyboardInterrupt``
    while a step runs counts as a cancel (the report's phase is ``interrupted``, the restore runs), so
    that Ctrl-C in a one-host-at-a-time run never leaves stopped services behind unreported.
    Connection and usage failures before the first change raise; later ones end in the report.
    """
    if deadline is not None and not deadline > 0:
        raise UsageError(f"deadline must be a positive number of seconds, not {deadline!r}")
    needed = set(required)
    run = _Run(
        server, steps, force, on_step, on_decision, clock, None if deadline is None else clock() + deadline
    )
    involved = list(dict.fromkeys(s.service for s in steps))
    before = lookup(server, involved, timeout=run.remaining())
    run.known = {k: s.status for k, s in before.items() if s is not None}
    absent = tuple((s.key, s.display_name(server.product)) for s in involved if before.get(s.key) is None)
    absent_keys = {k for k, _ in absent}
    missing = [display for key, display in absent if key in needed]
    if missing:
        raise OperationFailed(
            f"{', '.join(missing)} is not on this computer; nothing was changed", host=server.host
        )
    computer = next((s.computer for s in before.values() if s is not None and s.computer), "") or ""
    phase, error = RunPhase.COMPLETED, ""
    notes: list[str] = [f"{d} is not on this computer: its steps are skipped" for _, d in absent]
    expected: list[str] = []
    interrupted = threading.Event()  # Ctrl-C in the thread running the steps counts as a cancel
    for number, step in enumerate(steps, 1):
        key, display = step.service.key, step.service.display_name(server.product)
        if phase is RunPhase.COMPLETED:
            if interrupted.is_set() or (cancel is not None and cancel.is_set()):
                phase, error = RunPhase.INTERRUPTED, f"cancelled before step {number}"
            elif run.end is not None and clock() >= run.end:
                phase, error = RunPhase.DEADLINE, f"deadline reached before step {number}"
        if phase is not RunPhase.COMPLETED:
            run.results.append(run.record(StepResult(number, step.verb, key, display, StepOutcome.NOT_RUN)))
            continue
        skip = ""
        if key in absent_keys:
            skip = "not on this computer"
        elif step.verb == "start" and step.only_if_stopped_here and key not in run.stopped_here:
            state = run.known.get(key)
            skip = f"was {state.value if state else 'not running'} before the run: left as found"
        elif step.verb == "stop" and run.known.get(key) is ServiceState.STOPPED:
            result = StepResult(
                number, "stop", key, display, StepOutcome.ALREADY, ServiceState.STOPPED, "already stopped"
            )
            run.results.append(run.record(result))
            continue
        if skip:
            run.results.append(
                run.record(
                    StepResult(number, step.verb, key, display, StepOutcome.SKIPPED, run.known.get(key), skip)
                )
            )
            continue
        if step.verb == "start":
            expected.append(key)
        try:
            result = run.send(number, step, timeout=run.remaining())
        except KeyboardInterrupt:
            interrupted.set()
            run._stopped(step)  # it may have been sent: a restore starts it again, harmless if it runs
            result = StepResult(number, step.verb, key, display, StepOutcome.UNKNOWN, None, "interrupted")
            run.results.append(run.record(result))
            phase, error = RunPhase.INTERRUPTED, f"interrupted during step {number} ({result.label})"
            continue
        run.results.append(run.record(result))
        if result.outcome in (StepOutcome.FAILED, StepOutcome.UNKNOWN):
            phase, error = (
                RunPhase.FAILED,
                f"step {number} ({result.label}) {result.outcome.value}: {result.note}",
            )
    restored: list[StepResult] = []
    if phase is not RunPhase.COMPLETED and run.stopped_here:
        if restore:
            restored = _restore(run, len(steps), restore_timeout)
        else:
            notes.append("not restoring what this run stopped, as asked")
    # what the run stopped must run again, unless it was meant to stay stopped (a stop with no start)
    started_later = {s.service.key for s in steps if s.verb == "start"}
    expected += [k for k in run.ever_stopped if k in started_later or phase is not RunPhase.COMPLETED]
    seen, observed, read_error, after = _final_state(run, involved, before, absent_keys)
    if read_error:
        notes.append(f"the final read failed ({read_error}); states shown are the last known ones")
    return RestartReport(
        host=server.host,
        product=server.product.id,
        phase=phase,
        steps=tuple(run.results),
        restored=tuple(restored),
        absent=absent,
        down=tuple(s for s in seen if s.status is not ServiceState.RUNNING),
        expected_running=tuple(dict.fromkeys(expected)),
        observed=observed,
        computer=computer,
        error=error,
        notes=tuple(notes),
        read_before={k: s for k, s in before.items() if s is not None},
        read_after={k: s for k, s in after.items() if s is not None},
    )


def _restore(run: _Run, numbered: int, timeout: float) -> list[StepResult]:
    """Start again what this run stopped, prerequisites first (the reverse of the stop order)."""
    catalog = run.server.catalog
    stopped = [catalog.service_by_key(k) for k in run.stopped_here]
    ordered = list(reversed(catalog.stop_sequence(stopped)))
    results = []
    for offset, service in enumerate(ordered, 1):
        step = ServiceStep("start", service, "restore what this run stopped")
        results.append(run.record(run.send(numbered + offset, step, restore=True, timeout=timeout)))
    return results


def _final_state(
    run: _Run,
    involved: Sequence[Service],
    before: Mapping[str, ServiceStatus | None],
    absent: set[str],
) -> tuple[list[ServiceSeen], bool, str, Mapping[str, ServiceStatus | None]]:
    present = [s for s in involved if s.key not in absent]
    try:
        after = lookup(run.server, present, timeout=DEFAULT_RESTORE_TIMEOUT)
        observed, error = True, ""
    except OcspsError as exc:
        after, observed, error = {}, False, exc.message
    seen = []
    for service in present:
        first = before.get(service.key)
        status = after.get(service.key)
        state = status.status if status is not None else run.known.get(service.key, ServiceState.UNKNOWN)
        note = "" if observed else "last known"
        if observed and status is None:
            state, note = ServiceState.UNKNOWN, "not found at the final read"
        seen.append(
            ServiceSeen(
                service.key,
                service.display_name(run.server.product),
                state,
                first.status if first is not None else None,
                note,
            )
        )
    return seen, observed, error, after


# ---------------------------------------------------------------------------------------------- entry points
def run_restart_plan(
    server: RestartTarget,
    plan: Mapping[str, Any],
    *,
    restore: bool = True,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
    restore_timeout: float = DEFAULT_RESTORE_TIMEOUT,
    on_decision: DecisionCallback | None = None,
) -> RestartReport:
    """Run a sealed restart plan (the ``plan`` of a file ``ocsps.plans.sealed.load_plan`` accepted).

    The plan's product must be the server's. Services of the plan missing on this computer are skipped
    with a note; see the module docstring for the rest.
    """
    product, steps = plan_steps(plan, server.catalog)
    if product.id != server.product.id:
        raise UsageError(
            f"the plan is for {product.id}; {server.host} runs {server.product.id}", host=server.host
        )
    return run_steps(
        server,
        steps,
        restore=restore,
        on_step=on_step,
        cancel=cancel,
        deadline=deadline,
        restore_timeout=restore_timeout,
        on_decision=on_decision,
    )


def restart_service(
    server: RestartTarget,
    service: str | Service,
    *,
    force: bool = False,
    restore: bool = True,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
    restore_timeout: float = DEFAULT_RESTORE_TIMEOUT,
    on_decision: DecisionCallback | None = None,
) -> RestartReport:
    """Restart ``service`` and bring its running dependents back (the catalog's ``requires``).

    Dependents that run are stopped first (Windows will not stop a service whose dependents run) and
    started again last, in reverse order; a dependent found stopped is left stopped and listed in
    ``down``. ``force`` sends the stop cmdlet's ``-Force`` switch (Stop-Service: also stop dependents;
    Stop-CsWindowsService: its documented -Force); ocsps does not need it to handle dependents.
    """
    svc = server.resolve(service)
    return run_steps(
        server,
        service_restart_steps(server.catalog, server.product, svc),
        force=force,
        restore=restore,
        on_step=on_step,
        cancel=cancel,
        deadline=deadline,
        restore_timeout=restore_timeout,
        on_decision=on_decision,
        required=(svc.key,),
    )
