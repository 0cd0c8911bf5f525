"""``ocsps deactivate plan | run | render``: OCS 2007 / R2 role deactivation as an approved, ordered plan.

``plan`` writes the ordered steps (read live with --host/--lab, or from --roles) as a sealed plan file;
``run`` executes it step by step, continuing only on Success for every LcsCmd task; ``render`` writes the
same sequence as a change-board .ps1 that stops at the same point when run by hand.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.common import ChangeIdOpt as RunChangeIdOpt
from ocsps.cli.output import console, emit_json, err_console, is_quiet
from ocsps.cli.targets import (
    TargetOptions,
    audited_server,
    open_targets,
    with_target_options,
)
from ocsps.errors import UsageError

if TYPE_CHECKING:
    from ocsps.deactivation.approved import ApprovedPlan
    from ocsps.deactivation.plan import DeactivationPlan, LcsCmdFacts
    from ocsps.deactivation.run import RunReport, StepResult

deactivate_app = typer.Typer(
    help="Deactivate OCS 2007 / R2 server roles: plan, approve, run step by step.", no_args_is_help=True
)
app.add_typer(deactivate_app, name="deactivate")

DEFAULT_PRODUCT = "ocs2007r2"

ComputerOpt = Annotated[str, typer.Option("--computer", help="FQDN of the computer whose roles go")]
RolesOpt = Annotated[
    list[str] | None,
    typer.Option("--roles", "-r", help="Role keys, comma-separated or repeated ('ocsps deactivate roles')"),
]
PlanOpt = Annotated[Path, typer.Option("--plan", help="Plan file written by 'ocsps deactivate plan -o'")]
ReapproveOpt = Annotated[
    bool, typer.Option("--reapprove", help="Accept a plan edited after it was written (it is checked again)")
]
ChangeIdOpt = Annotated[str, typer.Option("--change-id", help="Change ticket id for the plan and script")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why the roles are deactivated")]
CheckRoleOpt = Annotated[
    str, typer.Option("--check-role", help="LcsCmd /Role: of the live state check (SE, EE, AP ...)")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON document on stdout; people-facing text on stderr")
]
TimeoutOpt = Annotated[str, typer.Option("--timeout", help="Deadline per step, e.g. 90s, 30m")]


def _for_computer(options: TargetOptions, computer: str, product: str | None) -> TargetOptions:
    """The plan's computer is the default target; --host/--hosts-file may name how to reach it instead."""
    hosts = options.hosts or ([] if options.hosts_file else [computer])
    return dataclasses.replace(options, hosts=list(hosts), product=product)


def _say(text: str, *, json_out: bool) -> None:
    if not is_quiet():
        console(json_mode=json_out).print(text, markup=False, highlight=False)


# ---------------------------------------------------------------------------------------------- roles
@deactivate_app.command("roles")
def roles_cmd(
    product: Annotated[str, typer.Option("--product", "-p", help="ocs2007 or ocs2007r2")] = DEFAULT_PRODUCT,
    json_out: JsonOpt = False,
) -> None:
    """The roles LcsCmd deactivates, in order, with their arguments and precautions (catalog data)."""
    from rich.table import Table

    from ocsps.catalog import load_catalog
    from ocsps.deactivation.configured import configured_lcscmd_facts
    from ocsps.deactivation.plan import list_roles
    from ocsps.jsonout import to_builtins

    prod = load_catalog().product(product)
    rows = list_roles(prod.id, facts=configured_lcscmd_facts())
    if json_out:
        emit_json({"command": "deactivate roles", "product": prod.id, "roles": to_builtins(rows)})
        return
    table = Table(title=f"Roles LcsCmd deactivates on {prod.id}, in order")
    for col in ("role", "label", "group", "LcsCmd arguments", "documented"):
        table.add_column(col)
    for row in rows:
        documented = "yes" if row.documented else f"no ({row.source})"
        table.add_row(row.role, row.label, row.group, " ".join(row.lcscmd), documented)
    console().print(table)


# ---------------------------------------------------------------------------------------------- plan
@deactivate_app.command("plan")
@with_target_options
def plan_cmd(
    computer: ComputerOpt,
    roles: RolesOpt = None,
    all_roles: Annotated[
        bool, typer.Option("--all", help="Every activated role, read from the server (--host or --lab)")
    ] = False,
    components: Annotated[
        list[str] | None, typer.Option("--components", help="Edge components to deactivate (AP, DP, MR)")
    ] = None,
    last_in_pool: Annotated[
        bool | None,
        typer.Option(
            "--last-in-pool/--not-last-in-pool",
            help="Whether this is the pool's last Front End (Enterprise pools; unknown counts as last)",
        ),
    ] = None,
    check_role: CheckRoleOpt = "SE",
    timeout: TimeoutOpt = "2m",
    change_id: ChangeIdOpt = "",
    reason: ReasonOpt = "",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Save the sealed plan for 'ocsps deactivate run'")
    ] = None,
    emit_script: Annotated[
        Path | None, typer.Option("--emit-script", help="Also write the plan as a change-board .ps1")
    ] = None,
    json_out: JsonOpt = False,
    *,
    connection: TargetOptions,
) -> None:
    """Order the deactivation of every role on a computer, with the precautions to acknowledge.

    With --host, --profile or --lab the activated roles are read from the server (LcsCmd's state check,
    read-only); otherwise name them with --roles.
    """
    from ocsps.deactivation.configured import configured_lcscmd_facts
    from ocsps.deactivation.plan import PLAN_KIND, plan_deactivation, plan_document

    facts = configured_lcscmd_facts()
    live = bool(connection.lab or connection.hosts or connection.hosts_file or connection.profile)
    if live:
        from ocsps.deactivation.preflight import plan_deactivation_live
        from ocsps.durations import parse_duration

        deadline = parse_duration(timeout)
        opts = _for_computer(connection, computer, connection.product)
        with open_targets(opts) as (targets, _), audited_server(targets[0], deadline) as server:
            plan = plan_deactivation_live(  # read-only: nothing on the server is changed
                server,
                computer,
                facts,
                roles=roles or [],
                all_roles=all_roles,
                components=components or [],
                last_in_pool=last_in_pool,
                change_id=change_id,
                reason=reason,
                check_role=check_role,
                timeout=deadline,
            ).plan
    else:
        plan = plan_deactivation(
            computer,
            product=connection.product or DEFAULT_PRODUCT,
            roles=roles or [],
            all_roles=all_roles,
            components=components or [],
            last_in_pool=last_in_pool,
            change_id=change_id,
            reason=reason,
            facts=facts,
        )
    document = plan_document(plan)
    if emit_script is not None:
        _write_script(plan, facts, emit_script, from_step=1)
    if output is not None:
        from ocsps.plans.sealed import save_plan

        save_plan(output, PLAN_KIND, document)
        err_console().print(f"wrote {output}", markup=False)
    if json_out:
        from ocsps.deactivation.scripts import step_script, step_sha256

        hashes = {str(s.number): step_sha256(step_script(plan, s)) for s in plan.steps}
        emit_json({"command": "deactivate plan", "live": live, **document, "step_sha256": hashes})
        return
    _print_plan(plan, output, connection)


def _print_plan(plan: DeactivationPlan, output: Path | None, options: TargetOptions) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"Deactivation plan for {plan.computer} ({plan.product})")
    for col in ("step", "action", "LcsCmd arguments", "documented"):
        table.add_column(col)
    for step in plan.steps:
        documented = "-" if step.do != "deactivate" else ("yes" if step.documented else "no: check it")
        table.add_row(str(step.number), step.label, " ".join(step.arguments) or "-", documented)
    out.print(table)
    source = "read from the server" if plan.roles_source == "live" else "named by the operator"
    out.print(f"Roles ({source}): {', '.join(plan.roles)}", markup=False)
    out.print("Acknowledge before running:", markup=False)
    for item in plan.checklist:
        live = " (checked live where the server allows)" if item.live_check else ""
        out.print(f"  [{item.id}] {item.text}{live}", markup=False)
    for note in plan.notes:
        out.print(f"note: {note}", markup=False)
    if output is not None:
        acks = ",".join(c.id for c in plan.checklist)
        command = [
            "ocsps",
            "deactivate",
            "run",
            "--plan",
            str(output),
            "--ack",
            acks,
            *_target_parts(options),
        ]
        out.print(f"run it with: {shlex.join(command)}", markup=False)


# ---------------------------------------------------------------------------------------------- run
@deactivate_app.command("run")
@with_target_options
def run_cmd(
    plan_path: PlanOpt,
    reapprove: ReapproveOpt = False,
    resume_from: Annotated[
        int | None,
        typer.Option("--resume-from", min=1, help="Start at this step (earlier ones must be known done)"),
    ] = None,
    ack: Annotated[
        list[str] | None,
        typer.Option("--ack", help="Checklist ids acknowledged, comma-separated or repeated"),
    ] = None,
    journal: Annotated[
        Path | None, typer.Option("--journal", help="Run journal (default: beside the plan file)")
    ] = None,
    check_role: CheckRoleOpt = "SE",
    timeout: TimeoutOpt = "30m",
    what_if: Annotated[
        bool, typer.Option("--what-if", help="Show each step's script and parameters; send nothing")
    ] = False,
    json_out: JsonOpt = False,
    change_id: RunChangeIdOpt = "",
    *,
    connection: TargetOptions,
) -> None:
    """Run a deactivation plan in order; every LcsCmd log must show Success for every task to go on."""
    from ocsps.deactivation.approved import check_target_product, execute, open_plan
    from ocsps.deactivation.configured import configured_lcscmd_facts
    from ocsps.durations import parse_duration

    deadline = parse_duration(timeout)
    facts = configured_lcscmd_facts()
    approved = open_plan(plan_path, facts, reapprove=reapprove, journal_path=journal, resume_from=resume_from)
    if approved.journal.note and not is_quiet():
        err_console().print(f"note: {approved.journal.note}", markup=False)
    if what_if:
        _what_if(approved, facts, json_out)
        return
    plan = approved.plan
    acked = _acknowledge(plan, ack or [], json_out)
    check_target_product(plan, connection.product)
    opts = _for_computer(connection, plan.computer, plan.product)
    with open_targets(opts) as (targets, _):
        target = targets[0]
        check_target_product(plan, target.product.id, target.host)
        with audited_server(target, deadline) as server:
            started = time.monotonic()
            report = execute(
                server,
                approved,
                facts,
                acknowledged=acked,
                check_role=check_role,
                timeout=deadline,
                on_step=lambda result: _show_step(result, len(plan.steps)),
                change_id=change_id or None,
            )
            if not is_quiet() and not json_out:
                err_console().print(f"finished in {time.monotonic() - started:.1f}s", markup=False)
    rerun = _RunFlags(acked, journal, check_role, timeout, reapprove)
    from ocsps import audit

    with audit.change(change_id or plan.change_id):  # a resume command printed carries the same ticket
        _finish(report, approved, connection, rerun, json_out)


def _acknowledge(plan: DeactivationPlan, given: list[str], json_out: bool) -> tuple[str, ...]:
    """Every checklist item must be acknowledged: by --ack, or one by one at an interactive prompt."""
    from ocsps.deactivation.approved import require_acknowledgements
    from ocsps.deactivation.plan import check_acknowledgements

    _, missing = check_acknowledgements(plan, given)
    if missing and sys.stdin.isatty() and not json_out:
        for item in missing:
            if not typer.confirm(f"[{item.id}] {item.text} Confirmed?", default=False, err=True):
                raise UsageError(f"not acknowledged: {item.id}; nothing was sent")
        given = [*given, *(c.id for c in missing)]
    return require_acknowledgements(plan, given)


def _what_if(approved: ApprovedPlan, facts: LcsCmdFacts, json_out: bool) -> None:
    from ocsps.deactivation.approved import PreviewDocument, preview
    from ocsps.jsonout import to_builtins

    plan = approved.plan
    out = console(json_mode=json_out)
    out.rule(f"{plan.computer} ({plan.product}) - nothing is sent", style="dim")
    steps = preview(approved, facts)
    for step in steps:
        out.print(
            f"# step {step.number}: {step.label}; parameters {step.rendered.bound_parameters}; "
            f"step sha256 {step.sha256} (script and values)",
            markup=False,
        )
        out.print(step.rendered.script, markup=False, highlight=False)
    if json_out:
        shown = [PreviewDocument.of(s) for s in steps]
        emit_json({"command": "deactivate run", "what_if": True, "steps": to_builtins(shown)})


def _show_step(result: StepResult, total: int) -> None:
    mark = "ok" if result.ok else result.state.upper()
    where = f" (log {result.log_path})" if result.log_path else ""
    _say(f"step {result.step}/{total} {mark}: {result.label}: {result.detail}{where}", json_out=True)


@dataclass(frozen=True)
class _RunFlags:
    """What this run was given besides its target, so that the printed resume command runs as printed."""

    acked: tuple[str, ...]
    journal: Path | None
    check_role: str
    timeout: str
    reapprove: bool


def _resume_command(approved: ApprovedPlan, resume: int, options: TargetOptions, flags: _RunFlags) -> str:
    """The command that resumes this run: same plan, journal, acknowledgements, options and target."""
    parts = ["ocsps", "deactivate", "run", "--plan", str(approved.path), "--resume-from", str(resume)]
    if flags.acked:
        parts += ["--ack", ",".join(flags.acked)]
    if flags.journal is not None:
        parts += ["--journal", str(flags.journal)]
    if flags.reapprove:
        parts.append("--reapprove")
    if flags.check_role != "SE":
        parts += ["--check-role", flags.check_role]
    if flags.timeout != "30m":
        parts += ["--timeout", flags.timeout]
    from ocsps.audit import current_change_id

    if current_change_id() != approved.plan.change_id:  # given on the command line: not in the plan
        parts += ["--change-id", current_change_id()]
    return shlex.join(parts + _target_parts(options))


def _target_parts(options: TargetOptions) -> list[str]:
    """The options that chose the target, so that a printed command reaches the same server."""
    parts: list[str] = []
    for host in options.hosts:
        parts += ["--host", host]
    for flag, value in (
        ("--hosts-file", options.hosts_file),
        ("--profile", options.profile),
        ("--lab-topology", options.lab_topology),
    ):
        if value:
            parts += [flag, str(value)]
    if options.lab:
        parts.append("--lab")
    return parts


def _finish(
    report: RunReport, approved: ApprovedPlan, options: TargetOptions, flags: _RunFlags, json_out: bool
) -> None:
    from ocsps.deactivation.approved import resume_step
    from ocsps.deactivation.run import RunReportDocument, log_excerpt
    from ocsps.jsonout import to_builtins

    resume = resume_step(report)
    command = None if resume is None else _resume_command(approved, resume, options, flags)
    document: dict[str, object] = {
        "command": "deactivate run",
        "plan": str(approved.path),
        "journal": str(approved.journal_path),
        **to_builtins(RunReportDocument.of(report)),
        "resume_from": resume,
        "resume_command": command,
        "exit_code": report.exit_code,
    }
    if json_out:
        emit_json(document)
    out = err_console() if json_out else console()
    for check in report.checks:
        out.print(f"check {check.name}: {check.state}: {check.detail}", markup=False)
    if report.ok:
        out.print(f"every step succeeded: the roles on {report.computer} are deactivated", markup=False)
        raise typer.Exit(0)
    failed = next((r for r in report.steps if r.step == report.stopped_at), None)
    if failed is not None:
        out.print(f"stopped at step {failed.step} ({failed.label}): {failed.detail}", markup=False)
        if failed.outcome is not None:
            for task in failed.outcome.failed_tasks:
                detail = f" - {task.detail}" if task.detail else ""
                out.print(f"  task {task.name!r}: {task.result or 'no result'}{detail}", markup=False)
            excerpt = log_excerpt(failed.outcome)
            if excerpt:
                out.print(f"log {failed.log_path} (excerpt):", markup=False)
                for line in excerpt:
                    out.print(f"  | {line}", markup=False)
    if report.interrupted:
        out.print(
            "interrupted: the step's outcome is unknown; the journal has the last known state", markup=False
        )
    if command is not None:
        if failed is not None and failed.state == "unknown":
            out.print(
                "the outcome is unknown: read the log on the server. If every task reads Success, resume "
                f"with: {command} (ocsps checks with the server that the role is gone); otherwise resume "
                f"from step {failed.step}.",
                markup=False,
            )
        else:
            out.print(f"resolve the problem on the server, then resume with: {command}", markup=False)
        if options.lab:
            out.print(
                "note: a lab started by --lab lives for one command; to rehearse a resume, serve it with "
                "'ocsps lab serve' and point both runs at it",
                markup=False,
            )
    raise typer.Exit(report.exit_code)


# ---------------------------------------------------------------------------------------------- render
@deactivate_app.command("render")
def render_cmd(
    plan_path: PlanOpt,
    reapprove: ReapproveOpt = False,
    from_step: Annotated[
        int, typer.Option("--from-step", min=1, help="Write the steps from this one (after a failure)")
    ] = 1,
    change_id: ChangeIdOpt = "",
    reason: ReasonOpt = "",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the .ps1 here (default stdout)")
    ] = None,
) -> None:
    """Write a plan as a change-board .ps1: checklist prompts, then the steps, up to the first failure."""
    from ocsps.deactivation.configured import configured_lcscmd_facts
    from ocsps.deactivation.plan import PLAN_KIND, DeactivationPlan, check_plan
    from ocsps.plans.sealed import load_plan

    facts = configured_lcscmd_facts()
    document = load_plan(plan_path, PLAN_KIND, reapprove=reapprove)
    plan = check_plan(DeactivationPlan.from_json(document), facts=facts)
    _write_script(plan, facts, output, from_step=from_step, change_id=change_id, reason=reason)


def _write_script(
    plan: DeactivationPlan,
    facts: LcsCmdFacts,
    output: Path | None,
    *,
    from_step: int,
    change_id: str = "",
    reason: str = "",
) -> None:
    from ocsps.cli.output import write_output
    from ocsps.deactivation.scripts import change_board_steps
    from ocsps.powershell.changeboard import ChangeInfo, render_change_board

    steps = change_board_steps(plan, facts, from_step=from_step)
    info = ChangeInfo(plan.computer, change_id or plan.change_id, reason or plan.reason)
    write_output(render_change_board("deactivate roles", steps, info), output)


def render_for_roles(
    *,
    computer: str,
    roles: list[str],
    product: str | None,
    change_id: str,
    reason: str,
    output: Path | None,
) -> None:
    """``ocsps render deactivate --computer X --roles ...``: plan offline and write the change-board .ps1."""
    from ocsps.deactivation.configured import configured_lcscmd_facts
    from ocsps.deactivation.plan import plan_deactivation

    if not computer:
        raise UsageError("render deactivate needs --computer (the FQDN whose roles go)")
    facts = configured_lcscmd_facts()
    plan = plan_deactivation(
        computer,
        product=product or DEFAULT_PRODUCT,
        roles=roles,
        change_id=change_id,
        reason=reason,
        facts=facts,
    )
    _write_script(plan, facts, output, from_step=1)
