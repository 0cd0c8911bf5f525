"""A sealed plan file as a run takes it: checked again, keyed by its seal, with its journal and start step.

This is what ``ocsps deactivate run`` does around :func:`ocsps.deactivation.run.run_plan`, as library
calls an automation script makes the same way: open the approved plan (refusing an edited one, and a
plan with recorded progress that is not told where to resume), run it with its acknowledgements on the
audit trail, and learn from the report where a later run resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ocsps.deactivation.plan import (
    PLAN_KIND,
    DeactivationPlan,
    LcsCmdFacts,
    check_acknowledgements,
    check_plan,
)
from ocsps.deactivation.run import UNKNOWN, Journal, RunReport, StepResult, run_plan
from ocsps.deactivation.scripts import step_script, step_sha256
from ocsps.errors import UsageError

if TYPE_CHECKING:
    from ocsps.powershell.script import RenderedScript
    from ocsps.remote.server import Server

__all__ = [
    "ApprovedPlan",
    "PreviewDocument",
    "PreviewStep",
    "check_target_product",
    "execute",
    "open_plan",
    "preview",
    "require_acknowledgements",
    "resume_step",
    "start_step",
]


@dataclass(frozen=True)
class ApprovedPlan:
    """A plan read from its sealed file and checked against the current facts, ready to run."""

    path: Path
    plan: DeactivationPlan
    sha256: str
    journal: Journal
    journal_path: Path
    start: int
    reapproved: bool = False
    finished: bool = False
    """The journal records every step as done and no resume step was given: nothing is left to run
    (only when the caller asked for this answer with ``finished_ok``; otherwise that plan is refused)."""


def open_plan(
    path: Path,
    facts: LcsCmdFacts,
    *,
    reapprove: bool = False,
    journal_path: Path | None = None,
    resume_from: int | None = None,
    finished_ok: bool = False,
) -> ApprovedPlan:
    """Load, check and key the plan; decide where the run starts. Raises UsageError, nothing is sent.

    A plan whose journal records every step as done is refused (the command line says so and stops),
    unless ``finished_ok``: then it is returned with ``finished`` set and nothing to run, which is how an
    idempotent caller (the Ansible module) reports "already done" without working it out itself.
    """
    from ocsps.plans.sealed import load_plan, seal

    document = load_plan(path, PLAN_KIND, reapprove=reapprove)
    plan = check_plan(DeactivationPlan.from_json(document), facts=facts)
    # The journal is keyed by the approved sha256; a re-approved edit is a new plan with a new one.
    sealed = None if reapprove else json.loads(path.read_text(encoding="utf-8")).get("sha256")
    sha = str(sealed or seal(PLAN_KIND, document)["sha256"])
    where = journal_path or path.with_name(path.name + ".journal.json")
    journal = Journal.open(where, sha, plan.computer)
    if finished_ok and resume_from is None and journal.done_through >= len(plan.steps):
        return ApprovedPlan(path, plan, sha, journal, where, len(plan.steps) + 1, reapprove, finished=True)
    start = start_step(plan, journal, resume_from, path)
    return ApprovedPlan(path, plan, sha, journal, where, start, reapprove)


def start_step(plan: DeactivationPlan, journal: Journal, resume_from: int | None, path: Path) -> int:
    """Where the run starts; a plan with recorded progress is never silently run from the top."""
    if resume_from is not None:
        plan.step(resume_from)
        return resume_from
    done = journal.done_through
    if done >= len(plan.steps):
        raise UsageError(
            f"the journal records every step of {path} as done; nothing is left to run",
            hint="pass --resume-from 1 to run the plan again from the start",
        )
    if done:
        raise UsageError(
            f"the journal records steps 1 to {done} of {path} as done; continue with "
            f"--resume-from {done + 1} (or --resume-from 1 to run everything again)"
        )
    return 1


def require_acknowledgements(plan: DeactivationPlan, given: Iterable[str]) -> tuple[str, ...]:
    """The acknowledged checklist ids, in the plan's order; every item must be among ``given``.

    One refusal for every caller (command line, Ansible, scripts), raised before anything is sent: an
    id not on the checklist, or an item left out.
    """
    acked, missing = check_acknowledgements(plan, given)
    if missing:
        ids = ",".join(c.id for c in plan.checklist)
        raise UsageError(
            f"acknowledge the checklist first; missing: {', '.join(c.id for c in missing)}; nothing was sent",
            hint=f"read each item ('ocsps deactivate plan' shows them), then pass --ack {ids}",
        )
    return tuple(c.id for c in acked)


def resume_step(report: RunReport) -> int | None:
    """Where to resume: the failed step, or the next one when the outcome is unknown (the server decides)."""
    stopped = report.stopped_at
    if stopped is None:
        return None
    result = next(r for r in report.steps if r.step == stopped)
    if result.state == UNKNOWN and result.step < report.total:
        return stopped + 1
    return stopped


def check_target_product(plan: DeactivationPlan, product: str | None, host: str | None = None) -> None:
    """The server (or the product asked for) runs the product the plan was written for."""
    if product is not None and product != plan.product:
        where = f"{host} runs {product}" if host else f"not {product}"
        raise UsageError(f"the plan is for {plan.product}; {where}")


@dataclass(frozen=True)
class PreviewStep:
    """One step as ``--what-if`` shows it: the script, its bound values and the step sha256."""

    number: int
    label: str
    rendered: RenderedScript
    sha256: str


class PreviewDocument(msgspec.Struct):
    """A previewed step as ``deactivate run --what-if --json`` writes it (the script is shown as text)."""

    step: int
    label: str
    parameters: Mapping[str, object]
    body_sha256: str
    sha256: str

    @classmethod
    def of(cls, step: PreviewStep) -> PreviewDocument:
        rendered = step.rendered
        return cls(step.number, step.label, rendered.bound_parameters, rendered.body_sha256, step.sha256)


def preview(approved: ApprovedPlan, facts: LcsCmdFacts, when: datetime | None = None) -> list[PreviewStep]:
    """The steps a run would send from its start step, with the plan's LCSCmd.exe path; nothing is sent."""
    moment = when or datetime.now(UTC)
    shown = []
    for step in approved.plan.steps[approved.start - 1 :]:
        rendered = step_script(approved.plan, step, facts=facts, when=moment)
        shown.append(PreviewStep(step.number, step.label, rendered, step_sha256(rendered)))
    return shown


def execute(
    server: Server,
    approved: ApprovedPlan,
    facts: LcsCmdFacts,
    *,
    acknowledged: Sequence[str],
    check_role: str = "SE",
    timeout: float = 1800.0,
    on_step: Callable[[StepResult], None] | None = None,
    change_id: str | None = None,
) -> RunReport:
    """Run the approved plan on ``server``, with the acknowledgement and every step on the audit trail.

    Every record carries the change ticket: ``change_id`` if given, else the one already in force
    (``audit.change``), else the plan's own, so that the board's report finds the run under its ticket.
    """
    from ocsps import audit

    if approved.finished:
        raise UsageError(f"the journal records every step of {approved.path} as done; nothing is left to run")
    check_target_product(approved.plan, server.product.id, server.host)
    ticket = change_id if change_id is not None else audit.current_change_id() or approved.plan.change_id
    try:
        audit.check_change_id(ticket)
    except ValueError as exc:
        raise UsageError(f"change id {ticket!r}: {exc}") from None
    with audit.change(ticket):
        return _execute(server, approved, facts, acknowledged, check_role, timeout, on_step)


def _execute(
    server: Server,
    approved: ApprovedPlan,
    facts: LcsCmdFacts,
    acknowledged: Sequence[str],
    check_role: str,
    timeout: float,
    on_step: Callable[[StepResult], None] | None,
) -> RunReport:
    from ocsps import audit

    # The first record, before anything is sent: a run that cannot be audited does not start.
    audit.require_writable(f"deactivate run {approved.plan.computer}", [server.host])
    audit.record(
        host=server.host,
        action="deactivate-acknowledged",
        parameters={"items": list(acknowledged), "start": approved.start},
        outcome="ok",
        duration=0.0,
        detail=f"plan sha256 {approved.sha256}",
    )

    def audited(result: StepResult) -> None:
        audit.record(
            host=server.host,
            action="deactivate-step",
            parameters={
                "step": result.step,
                "role": result.role or "",
                "log_path": result.log_path or "",
                "step_sha256": result.sha256,
            },
            outcome="ok" if result.ok else f"{result.state}: {result.detail}",
            duration=result.seconds,
            detail=f"plan sha256 {approved.sha256}",
        )
        if on_step is not None:
            on_step(result)

    return run_plan(
        server,
        approved.plan,
        plan_sha256=approved.sha256,
        facts=facts,
        start=approved.start,
        journal=approved.journal,
        acknowledged=acknowledged,
        check_role=check_role,
        timeout=timeout,
        on_step=audited,
    )
