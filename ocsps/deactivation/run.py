"""Running a deactivation plan on its computer: one step at a time, the next only on positive evidence.

The administration guide asks the administrator to read the log after every role and to go on only when
every task's Execution Result reads Success. The runner does exactly that, and cannot be talked out of
it: each LcsCmd call gets a log path of its own, chosen at run time, the log is read back and parsed,
and anything but Success for every task (an unreadable log, no task, a non-zero exit code, a lost
connection) stops the run at that step. The journal next to the plan records what each step did, so a
later ``--resume-from`` may only skip steps that are known to be done: recorded as successful, or shown
done by the server itself (a role no longer activated, every service stopped).

Before the first change the runner reads, and changes nothing (``ocsps.deactivation.preflight``): the
computer that answers must be the plan's computer, LCSCmd.exe must be found (and where is recorded), the
services the plan relies on must be installed, the server's activated roles must be exactly the plan's
remaining roles, and no service may show active sessions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ocsps.deactivation.plan import (
    DEACTIVATE,
    STOP_SERVICES,
    DeactivationPlan,
    DeactivationStep,
    LcsCmdFacts,
    StateReading,
    choose_log_path,
)
from ocsps.deactivation.preflight import LiveRead, read_server, read_state
from ocsps.deactivation.scripts import step_script, step_sha256
from ocsps.errors import (
    OcspsError,
    OperationFailed,
    OutcomeUnknown,
    TimeoutExceeded,
    UsageError,
)
from ocsps.results import LcsCmdOutcome, ServiceStatus, parse_lcscmd_outcome, parse_service_status

if TYPE_CHECKING:
    from ocsps.catalog import Catalog
    from ocsps.powershell.script import RenderedScript
    from ocsps.remote.server import Server

__all__ = [
    "Journal",
    "LiveCheck",
    "RunReport",
    "RunReportDocument",
    "StepResult",
    "StepResultDocument",
    "log_excerpt",
    "read_state",
    "resume_gaps",
    "run_plan",
    "step_verdict",
]

OK, FAILED, UNKNOWN, TIMEOUT, INTERRUPTED = "ok", "failed", "unknown", "timeout", "interrupted"
JOURNAL_KIND = "ocsps-deactivation-journal"
JOURNAL_FORMAT = 1
"""A journal written before the field existed has no ``format`` and reads as format 1."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepResult:
    """What one step did, with the evidence the verdict rests on."""

    step: int
    do: str
    label: str
    state: str
    detail: str = ""
    role: str | None = None
    log_path: str | None = None
    outcome: LcsCmdOutcome | None = None
    services: tuple[ServiceStatus, ...] = ()
    started: str = ""
    seconds: float = 0.0
    evidence: str = ""
    sha256: str = ""  # the step sha256 of what was sent (ocsps.deactivation.scripts)

    @property
    def ok(self) -> bool:
        return self.state == OK


class StepResultDocument(msgspec.Struct, omit_defaults=True):
    """A step result as the report writes it: what a step did not produce is left out."""

    step: int
    do: str
    label: str
    state: str
    detail: str
    started: str
    seconds: float
    role: str | None = None
    log_path: str | None = None
    evidence: str = ""
    sha256: str = ""
    lcscmd: LcsCmdOutcome | None = None
    services: tuple[ServiceStatus, ...] = ()

    @classmethod
    def of(cls, result: StepResult) -> StepResultDocument:
        return cls(
            step=result.step,
            do=result.do,
            label=result.label,
            state=result.state,
            detail=result.detail,
            started=result.started,
            seconds=round(result.seconds, 3),
            role=result.role,
            log_path=result.log_path,
            evidence=result.evidence,
            sha256=result.sha256,
            lcscmd=result.outcome,
            services=result.services,
        )


@dataclass(frozen=True)
class LiveCheck:
    """A precondition read from the server before anything changes: ok, or not checkable (and why)."""

    name: str
    state: str
    detail: str


@dataclass
class RunReport:
    computer: str
    product: str
    plan_sha256: str
    start: int
    total: int
    acknowledged: tuple[str, ...] = ()
    checks: list[LiveCheck] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    interrupted: bool = False
    lcscmd_path: str | None = None  # where LCSCmd.exe was found on the computer

    @property
    def stopped_at(self) -> int | None:
        """The step that did not succeed, if any: where a resumed run starts."""
        for result in self.steps:
            if not result.ok:
                return result.step
        return None

    @property
    def ok(self) -> bool:
        done = {r.step for r in self.steps if r.ok}
        return not self.interrupted and all(n in done for n in range(self.start, self.total + 1))

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.ok:
            return 0
        if any(r.state == TIMEOUT for r in self.steps):
            return 4
        return 1


class RunReportDocument(msgspec.Struct):
    """A run report as ``deactivate run --json`` writes it, with the verdict worked out at that moment."""

    computer: str
    product: str
    plan_sha256: str
    start: int
    total: int
    acknowledged: tuple[str, ...]
    lcscmd_path: str | None
    checks: tuple[LiveCheck, ...]
    steps: tuple[StepResultDocument, ...]
    ok: bool
    stopped_at: int | None
    interrupted: bool

    @classmethod
    def of(cls, report: RunReport) -> RunReportDocument:
        return cls(
            computer=report.computer,
            product=report.product,
            plan_sha256=report.plan_sha256,
            start=report.start,
            total=report.total,
            acknowledged=report.acknowledged,
            lcscmd_path=report.lcscmd_path,
            checks=tuple(report.checks),
            steps=tuple(StepResultDocument.of(s) for s in report.steps),
            ok=report.ok,
            stopped_at=report.stopped_at,
            interrupted=report.interrupted,
        )


# ---------------------------------------------------------------------------------------------- journal


@dataclass
class Journal:
    """Per-step results of earlier runs of one plan (matched by its sha256), kept beside the plan."""

    path: Path | None
    plan_sha256: str
    computer: str
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    @classmethod
    def open(cls, path: Path | None, plan_sha256: str, computer: str) -> Journal:
        if path is None or not path.exists():
            return cls(path, plan_sha256, computer)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("kind") != JOURNAL_KIND or doc.get("format", JOURNAL_FORMAT) != JOURNAL_FORMAT:
                raise ValueError("not a journal this version reads")
            steps = {int(k): dict(v) for k, v in dict(doc.get("steps", {})).items()}
        except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError):
            raise UsageError(
                f"cannot read the run journal {path}; move it away to start without it"
            ) from None
        if doc.get("plan_sha256") != plan_sha256 or doc.get("computer") != computer:
            return cls(path, plan_sha256, computer, note=f"{path} belonged to another plan; it is replaced")
        return cls(path, plan_sha256, computer, steps)

    def succeeded(self, number: int) -> bool:
        return self.steps.get(number, {}).get("state") == OK

    @property
    def done_through(self) -> int:
        """How many leading steps are recorded as successful."""
        count = 0
        while self.succeeded(count + 1):
            count += 1
        return count

    def record(self, result: StepResult) -> None:
        self.steps[result.step] = {
            "state": result.state,
            "label": result.label,
            "detail": result.detail,
            "log_path": result.log_path,
            "evidence": result.evidence,
            "started": result.started,
        }
        if self.path is None:
            return
        doc = {
            "kind": JOURNAL_KIND,
            "format": JOURNAL_FORMAT,
            "plan_sha256": self.plan_sha256,
            "computer": self.computer,
            "steps": {str(k): v for k, v in sorted(self.steps.items())},
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def resume_gaps(plan: DeactivationPlan, journal: Journal | None, start: int) -> list[DeactivationStep]:
    """Steps before ``start`` that no earlier run recorded as successful."""
    plan.step(start)
    return [s for s in plan.steps[: start - 1] if journal is None or not journal.succeeded(s.number)]


# ---------------------------------------------------------------------------------------------- reading


def log_excerpt(outcome: LcsCmdOutcome, limit: int = 20) -> list[str]:
    """The lines of the log around the tasks that failed (or its start), for the operator to read first."""
    lines = (outcome.log_text or "").splitlines()
    names = [t.name for t in outcome.failed_tasks if t.name]
    keep: list[int] = []
    for index, line in enumerate(lines):
        if any(name in line for name in names):
            keep += [i for i in range(max(0, index - 1), min(len(lines), index + 3)) if i not in keep]
    chosen = [lines[i] for i in keep] if keep else lines
    return chosen[:limit]


# ---------------------------------------------------------------------------------------------- running


def run_plan(
    server: Server,
    plan: DeactivationPlan,
    *,
    plan_sha256: str,
    facts: LcsCmdFacts,
    start: int = 1,
    journal: Journal | None = None,
    acknowledged: Sequence[str] = (),
    check_role: str = "SE",
    timeout: float = 1800.0,
    clock: Callable[[], datetime] = _now,
    on_step: Callable[[StepResult], None] | None = None,
) -> RunReport:
    """Run ``plan`` from ``start`` on an open ``server``; return what each step did.

    Refuses (raising, with nothing changed) when earlier steps are not known to be done, when the
    server's activated roles are not the plan's remaining roles, or when services show active sessions.
    Stops at the first step without positive evidence of success; the journal records every step.
    """
    journal = journal or Journal(None, plan_sha256, plan.computer)
    report = RunReport(
        computer=plan.computer,
        product=plan.product,
        plan_sha256=plan_sha256,
        start=start,
        total=len(plan.steps),
        acknowledged=tuple(acknowledged),
    )
    gaps = resume_gaps(plan, journal, start)
    live = read_server(
        server,
        plan.computer,
        facts,
        check_role=check_role,
        locations=(plan.lcscmd_path, *(p for p in facts.locations if p != plan.lcscmd_path)),
        what="the plan was not run",
        when=clock(),
        timeout=timeout,
    )
    report.checks.append(LiveCheck("computer", OK, f"{live.computer} answered: the plan's computer"))
    report.checks.append(_lcscmd_check(plan, live))
    report.lcscmd_path = live.lcscmd.path
    reading, statuses = live.reading, list(live.statuses)
    remaining = [str(s.role) for s in plan.deactivations if s.number >= start]
    report.checks.append(_services_check(plan, live, remaining, server.catalog))
    for gap in gaps:
        evidence = _done_evidence(gap, reading, statuses)
        if evidence is None:
            raise UsageError(
                f"cannot resume from step {start}: step {gap.number} ({gap.label}) is not recorded as "
                "successful and the server does not show it done; resume from that step",
                host=plan.computer,
            )
        result = StepResult(gap.number, gap.do, gap.label, OK, role=gap.role, evidence=evidence)
        journal.record(result)
        report.steps.append(result)
    report.checks.append(_roles_check(plan, reading, remaining))
    report.checks.append(_sessions_check(plan, statuses, start))
    for step in plan.steps[start - 1 :]:
        result = _run_step(server, plan, str(live.lcscmd.path), step, facts, timeout, clock)
        journal.record(result)
        report.steps.append(result)
        if on_step is not None:
            on_step(result)
        if result.state == INTERRUPTED:
            report.interrupted = True
        if not result.ok:
            break
    return report


def _lcscmd_check(plan: DeactivationPlan, live: LiveRead) -> LiveCheck:
    found = live.lcscmd.path
    if found is None:
        raise UsageError(
            f"LCSCmd.exe was not found on {plan.computer} (looked at {' and '.join(live.lcscmd.tried)}); "
            "nothing was changed",
            host=plan.computer,
            hint="install the OCS administrative tools there, or name where LCSCmd.exe is in the config "
            "file ([lcscmd] path), then write the plan again",
        )
    moved = "" if found == plan.lcscmd_path else f" (the plan expected {plan.lcscmd_path})"
    return LiveCheck("lcscmd", OK, f"LCSCmd.exe found at {found}{moved}")


def _services_check(
    plan: DeactivationPlan, live: LiveRead, remaining: Sequence[str], catalog: Catalog
) -> LiveCheck:
    """Every service the plan saw, and at least one service of each remaining role, is installed."""
    from ocsps.checks.common import present_services

    if not live.statuses:
        raise UsageError(
            f"no {plan.product} service was found on {plan.computer}; nothing was changed", host=plan.computer
        )
    names = {n.casefold() for s in live.statuses for n in (s.name, s.display_name) if n}
    gone = [n for n in plan.services_found if n.casefold() not in names]
    present = present_services(catalog, catalog.product(plan.product), live.statuses)
    roles = [catalog.roles[k] for k in remaining]
    lacking = [r.label for r in roles if r.services and not any(k in present for k in r.services)]
    edge = [s for s in plan.deactivations if s.components and str(s.role) in remaining]
    differs = [s for s in edge if live.components and tuple(live.components) != tuple(s.components)]
    if gone or lacking or differs:
        parts = [f"seen when the plan was written, not found now: {', '.join(gone)}"] if gone else []
        parts += [f"no service found for {', '.join(lacking)}"] if lacking else []
        parts += [
            f"step {s.number} deactivates edge roles {','.join(s.components)}, the server runs "
            f"{','.join(live.components)} (an Edge server goes whole, seed 001)"
            for s in differs
        ]
        raise UsageError(
            f"the services on {plan.computer} do not match the plan ({'; '.join(parts)}); nothing was "
            "changed: write a new plan",
            host=plan.computer,
        )
    return LiveCheck("services", OK, f"{len(live.statuses)} services found, every one the plan relies on")


def _done_evidence(
    step: DeactivationStep, reading: StateReading, statuses: Sequence[ServiceStatus]
) -> str | None:
    if step.do == STOP_SERVICES:
        if statuses and all(s.is_stopped for s in statuses):
            return f"all {len(statuses)} services read Stopped"
        return None
    if reading.activated is not None and step.role not in reading.activated:
        return "LcsCmd's state check no longer shows the role as activated"
    return None


def _roles_check(plan: DeactivationPlan, reading: StateReading, remaining: list[str]) -> LiveCheck:
    if reading.activated is None:
        return LiveCheck("roles", "not-checkable", reading.reason or "the activated roles could not be read")
    if set(reading.activated) != set(remaining):
        extra = sorted(set(reading.activated) - set(remaining))
        gone = sorted(set(remaining) - set(reading.activated))
        parts = []
        if extra:
            parts.append(f"activated but not in the plan's remaining steps: {', '.join(extra)}")
        if gone:
            parts.append(f"in the plan but not activated: {', '.join(gone)}")
        raise UsageError(
            f"the server's roles do not match the plan ({'; '.join(parts)}); nothing was changed: "
            "write a new plan",
            host=plan.computer,
        )
    return LiveCheck("roles", OK, f"activated roles match the plan: {', '.join(remaining) or 'none left'}")


def _sessions_check(plan: DeactivationPlan, statuses: Sequence[ServiceStatus], start: int) -> LiveCheck:
    counted = [s for s in statuses if s.activity is not None and not s.activity.is_empty]
    busy = [s for s in counted if not s.is_stopped and not (s.activity is not None and s.activity.is_idle)]
    if busy and start == 1:
        shown = ", ".join(f"{s.name} ({_activity(s)})" for s in busy[:5])
        raise OperationFailed(
            f"sessions are still active: {shown}; nothing was changed",
            host=plan.computer,
            hint="wait until they complete (the checklist says they have), then run again",
        )
    if not counted:
        return LiveCheck(
            "sessions",
            "not-checkable",
            "the services report no activity counters (OCS 2007 / R2 services have none): "
            "the operator's acknowledgement stands",
        )
    return LiveCheck("sessions", OK, f"no active sessions on {len(counted)} services with counters")


def _activity(status: ServiceStatus) -> str:
    return ", ".join(f"{c.name}={c.value}" for c in status.activity or ())


def _run_step(
    server: Server,
    plan: DeactivationPlan,
    lcscmd_path: str,
    step: DeactivationStep,
    facts: LcsCmdFacts,
    timeout: float,
    clock: Callable[[], datetime],
) -> StepResult:
    started = clock()
    result = StepResult(step.number, step.do, step.label, FAILED, role=step.role, started=started.isoformat())
    try:
        if step.do not in (STOP_SERVICES, DEACTIVATE):
            raise OperationFailed(f"unknown step kind {step.do!r}")
        result.log_path = choose_log_path(facts, step, started) if step.do == DEACTIVATE else None
        rendered = step_script(
            plan, step, lcscmd_path=lcscmd_path, log_path=result.log_path, catalog=server.catalog
        )
        result.sha256 = step_sha256(rendered)
        if step.do == STOP_SERVICES:
            _stop_services(server, rendered, result, timeout)
        else:
            _deactivate(server, rendered, result, timeout)
    except OutcomeUnknown as exc:
        result.state = UNKNOWN
        result.detail = exc.message
    except TimeoutExceeded as exc:
        result.state = TIMEOUT
        result.detail = exc.message
    except KeyboardInterrupt:
        result.state = INTERRUPTED
        result.detail = "interrupted by the operator while the step ran; its outcome is unknown"
    except OcspsError as exc:
        result.state = FAILED
        result.detail = exc.message
    result.seconds = (clock() - started).total_seconds()
    return result


def _stop_services(server: Server, rendered: RenderedScript, result: StepResult, timeout: float) -> None:
    run = server.session.run(rendered, timeout=timeout).raise_for_errors()
    statuses = tuple(parse_service_status(obj) for obj in run.output)
    result.services = statuses
    running = [s.name for s in statuses if not s.is_stopped]
    if not statuses:
        result.detail = "no service was reported back: there is no evidence that anything stopped"
    elif running:
        result.detail = f"still not stopped: {', '.join(running)}"
    else:
        result.state = OK
        result.detail = f"{len(statuses)} services read Stopped"


def _deactivate(server: Server, rendered: RenderedScript, result: StepResult, timeout: float) -> None:
    run = server.session.run(rendered, timeout=timeout).raise_for_errors()
    if not run.output:
        result.detail = "LcsCmd returned no outcome"
        return
    outcome = parse_lcscmd_outcome(run.output[0])
    result.outcome = outcome
    result.log_path = outcome.log_path or result.log_path
    reason = step_verdict(outcome)
    if reason is None:
        result.state = OK
        result.detail = f"all {len(outcome.tasks)} tasks report Success"
    else:
        result.detail = reason


def step_verdict(outcome: LcsCmdOutcome) -> str | None:
    """Why an LcsCmd run does not count as done, or None when every task reads Success.

    The script on the server applies its own copy of the rule (what a hand-run change-board script
    stops on); when it disagrees with ocsps's reading of the same log, the stricter answer wins.
    """
    reason = outcome.failure_reason
    failed = outcome.failed_tasks
    if reason is not None and failed and "did not report Success" not in reason:
        shown = "; ".join(f"{t.name}: {t.result or 'no result'}" for t in failed[:3])
        reason += f"; {len(failed)} of {len(outcome.tasks)} tasks did not report Success: {shown}"
    if reason is None and outcome.extra.get("ScriptVerdict") is False:
        why = outcome.extra.get("ScriptReason") or "failed"
        reason = f"the script's own check of the log disagrees: {why}"
    return reason
