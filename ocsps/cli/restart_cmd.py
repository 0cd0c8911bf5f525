"""``ocsps restart``: a service with its dependents, or a sealed restart plan, on one server or many.

Argument handling, one library call per host (``ocsps.operations.restart``), rendering: the rules (look up
before stopping, dependency order, restore after a failure, never resend on a guess) live in the library.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocsps import audit
from ocsps.cli.app import app
from ocsps.cli.common import FORCE_HELP, ChangeIdOpt
from ocsps.cli.output import console, emit_json, err_console, is_quiet
from ocsps.cli.targets import Target, TargetOptions, audited_server, open_targets, with_target_options
from ocsps.errors import UsageError

if TYPE_CHECKING:
    from ocsps.catalog import Product
    from ocsps.operations.fleet import FleetRun
    from ocsps.operations.restart import RestartReport, StepResult
    from ocsps.plans.restart import ServiceStep


@app.command()
@with_target_options
def restart(
    service: Annotated[
        str | None,
        typer.Option("--service", "-s", help="Service short name; its running dependents come back too"),
    ] = None,
    plan: Annotated[
        Path | None, typer.Option("--plan", help="Run a plan written by 'ocsps plan restart -o'")
    ] = None,
    reapprove: Annotated[
        bool, typer.Option("--reapprove", help="Accept a plan edited after it was written")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
    no_restore: Annotated[
        bool,
        typer.Option(
            "--no-restore",
            help="After a failed step, leave stopped what this run stopped (default: start it again)",
        ),
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="Deadline per host, e.g. 90s, 15m")] = "10m",
    rolling: Annotated[
        bool, typer.Option("--rolling", help="One host at a time; stop at the first failure (the default)")
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            min=1,
            max=256,
            help="Hosts changed at once. Default: one at a time, stopping at the first failure",
        ),
    ] = None,
    what_if: Annotated[
        bool, typer.Option("--what-if", help="Show the scripts and parameters per host; send nothing")
    ] = False,
    emit_script: Annotated[
        Path | None, typer.Option("--emit-script", help="Write the restart as a change-board .ps1")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout; people-facing text on stderr")
    ] = False,
    change_id: ChangeIdOpt = "",
    *,
    options: TargetOptions,
) -> None:
    """Restart a service and bring its dependents back, or run a restart plan's steps in order.

    Every service is looked up before anything stops (one not on the computer is skipped, with a note);
    dependents stop first and start last; if a step fails, what this run stopped is started again.
    """
    from ocsps.catalog import load_catalog
    from ocsps.durations import parse_duration
    from ocsps.jsonout import to_builtins
    from ocsps.operations.fleet import HostDocument
    from ocsps.operations.restart import RestartReportDocument

    if (service is None) == (plan is None):
        raise UsageError("give either --service or --plan")
    if plan is not None and force:
        raise UsageError("--force applies to --service; a plan's steps are run as approved")
    deadline = parse_duration(timeout)
    cat = load_catalog()
    plan_doc = None
    if plan is not None:
        from ocsps.plans.restart import plan_steps
        from ocsps.plans.sealed import load_plan

        plan_doc = load_plan(plan, "restart", reapprove=reapprove)
        plan_product, _ = plan_steps(plan_doc, cat)
        if options.product is None:
            options.product = plan_product.id
    with open_targets(options, service=service) as (targets, _), audit.change(change_id):
        steps_for = _steps_function(targets, service, plan_doc)
        if what_if:
            _what_if(targets, steps_for, force, json_out)
            return
        if emit_script is not None:
            _emit(targets, steps_for, emit_script, service, force)
            return
        run = _run(targets, service, plan_doc, force, not no_restore, deadline, rolling, parallel, json_out)
    document: dict[str, object] = {
        "command": "restart",
        "service": service,
        "plan": str(plan) if plan is not None else None,
        "force": force,
        "restore": not no_restore,
        "hosts": to_builtins([HostDocument.of(o, RestartReportDocument.of) for o in run.outcomes]),
        "exit_code": run.exit_code,
    }
    if json_out:
        emit_json(document)
    else:
        _print(run)
    if run.interrupted:
        err_console().print("interrupted: the states above are the last known ones", markup=False)
    raise typer.Exit(run.exit_code)


def _steps_function(
    targets: list[Target], service: str | None, plan_doc: dict[str, object] | None
) -> dict[str, list[ServiceStep]]:
    """Each host's steps, checked before anything is sent (bad input: exit 2, nothing sent)."""
    from ocsps.catalog import load_catalog
    from ocsps.plans.restart import plan_steps, service_restart_steps

    cat = load_catalog()
    steps: dict[str, list[ServiceStep]] = {}
    for target in targets:
        cat.template_for("stop", target.product)
        if plan_doc is not None:
            product, plan_list = plan_steps(plan_doc, cat)
            if product.id != target.product.id:
                raise UsageError(f"the plan is for {product.id}; {target.host} runs {target.product.id}")
            steps[target.host] = plan_list
        else:
            assert service is not None
            found = cat.find_service(target.product, service)
            steps[target.host] = service_restart_steps(cat, target.product, found)
    return steps


def _what_if(targets: list[Target], steps: dict[str, list[ServiceStep]], force: bool, json_out: bool) -> None:
    """Show, per host, exactly what would be sent: the look-up read, then each step's script."""
    from ocsps.plans.restart_script import rendered_steps
    from ocsps.powershell.script import render_action

    hosts: list[dict[str, object]] = []
    out = console()
    for target in targets:
        listing = render_action("status", target.product, {})
        planned = rendered_steps(steps[target.host], target.product, force=force)
        hosts.append(
            {
                "host": target.host,
                "product": target.product.id,
                "lookup": {"action": listing.action, "body_sha256": listing.body_sha256},
                "steps": [
                    {
                        "step": number,
                        "label": step.label,
                        "action": step.rendered.action,
                        "parameters": step.rendered.bound_parameters,
                        "body_sha256": step.rendered.body_sha256,
                        "script": step.rendered.script,
                    }
                    for number, step in enumerate(planned, 1)
                ],
            }
        )
        if json_out:
            continue
        out.rule(f"{target.host} ({target.product.id}) - nothing is sent", style="dim")
        out.print(f"# look up every service first: status, body sha256 {listing.body_sha256}", markup=False)
        for step in planned:
            rendered = step.rendered
            out.print(
                f"# {step.label}: parameters {rendered.bound_parameters}; body sha256 {rendered.body_sha256}",
                markup=False,
            )
            out.print(rendered.script, markup=False, highlight=False)
    if json_out:
        emit_json({"command": "restart", "what_if": True, "force": force, "hosts": hosts, "exit_code": 0})


def _emit(
    targets: list[Target],
    steps: dict[str, list[ServiceStep]],
    path: Path,
    service: str | None,
    force: bool,
) -> None:
    from ocsps.cli.output import write_output
    from ocsps.plans.action_board import action_board
    from ocsps.plans.restart_script import render_restart_board
    from ocsps.powershell.changeboard import ChangeInfo

    products: set[Product] = {t.product for t in targets}
    if len(products) != 1:
        raise UsageError(
            "--emit-script writes one script for one product; these hosts run "
            + ", ".join(sorted(p.id for p in products))
        )
    first = targets[0]
    computer = first.host if len(targets) == 1 else ""
    info = ChangeInfo(computer, audit.current_change_id(), "")
    if service is not None:  # one service with its dependents: the board 'ocsps render restart' writes
        text = action_board("restart", first.product, service=service, force=force, info=info)
    else:
        text = render_restart_board("restart plan", first.product, steps[first.host], info)
    write_output(text, path)


def _run(
    targets: list[Target],
    service: str | None,
    plan_doc: dict[str, object] | None,
    force: bool,
    restore: bool,
    deadline: float,
    rolling: bool,
    parallel: int | None,
    json_out: bool,
) -> FleetRun[RestartReport]:
    from ocsps import audit
    from ocsps.operations.fleet import change_width, run_changes
    from ocsps.operations.restart import RunPhase, restart_service, run_restart_plan

    width = change_width(parallel, rolling=rolling)
    audit.require_writable(f"restart {service or '--plan'}", [t.host for t in targets])
    by_host = {t.host: t for t in targets}
    reached: dict[str, str] = {}
    lock = threading.Lock()

    def work(host: str, cancel: threading.Event) -> RestartReport:
        def on_step(result: StepResult) -> None:
            with lock:
                reached[host] = f"step {result.number}: {result.label} ({result.outcome.value})"
            if not is_quiet():
                err_console().print(f"{host}: {reached[host]}", markup=False)

        server = audited_server(by_host[host], deadline + 120)
        try:
            if plan_doc is not None:
                return run_restart_plan(
                    server,
                    plan_doc,
                    restore=restore,
                    on_step=on_step,
                    cancel=cancel,
                    deadline=deadline,
                    on_decision=audit.decision_recorder(host, "restart", {}),
                )
            assert service is not None
            return restart_service(
                server,
                service,
                force=force,
                restore=restore,
                on_step=on_step,
                cancel=cancel,
                deadline=deadline,
                on_decision=audit.decision_recorder(host, "restart", {}),
            )
        finally:
            server.close()

    def judge(report: RestartReport) -> bool:
        return report.ok

    run = run_changes(list(by_host), work, parallel=width, judge=judge)
    for outcome in run.outcomes:
        report = outcome.result
        outcome.step = reached.get(outcome.host, "not started")
        if report is None:
            continue
        if not report.ok and not outcome.error:
            outcome.error = report.error or _down_text(report) or "not every service runs again"
        if not report.ok:
            outcome.exit_code = report.exit_code
            run.interrupted = run.interrupted or report.phase is RunPhase.INTERRUPTED
    return run


def _down_text(report: RestartReport) -> str:
    if not report.down:
        return ""
    seen = "seen" if report.observed else "last known"
    return "down (" + seen + "): " + ", ".join(f"{s.display_name} {s.status.value}" for s in report.down)


def _print(run: FleetRun[RestartReport]) -> None:
    from rich.table import Table

    out = console()
    for outcome in run.outcomes:
        report = outcome.result
        colour = "green" if outcome.state == "ok" else "red"
        out.print(f"[{colour}]{outcome.host}: {outcome.state}[/{colour}]")
        if report is None:
            out.print(f"  {outcome.error or outcome.step}", markup=False)
            continue
        table = Table(show_header=True, box=None)
        for col in ("step", "do", "service", "outcome", "status", "note"):
            table.add_column(col)
        for s in (*report.steps, *report.restored):
            table.add_row(
                str(s.number),
                s.verb + (" (restore)" if s.restore else ""),
                s.display_name,
                s.outcome.value,
                s.status.value if s.status else "-",
                s.note or "-",
            )
        out.print(table)
        for note in report.notes:
            out.print(f"  note: {note}", markup=False)
        if report.down:
            out.print(f"  {_down_text(report)}", markup=False)
        else:
            out.print(
                "  every service of the run is running ("
                + ("seen" if report.observed else "last known")
                + ")",
                markup=False,
            )
        if report.error:
            out.print(f"  {report.error}", markup=False)
