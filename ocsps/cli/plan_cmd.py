"""``ocsps plan restart``: which services a setting change needs stopped or restarted, and in what order."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.output import console, emit_json

if TYPE_CHECKING:
    from ocsps.plans.restart import RestartPlan

plan_app = typer.Typer(help="Plan changes without touching a server.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@plan_app.command("restart")
def plan_restart_cmd(
    changed: Annotated[
        list[str],
        typer.Option(
            "--changed", "-c", help="WMIClass.Property, a WMI class, a snap-in setting or a task id"
        ),
    ],
    product: Annotated[str, typer.Option("--product", "-p", help="ocs2007 or ocs2007r2")] = "ocs2007r2",
    certificate_renewed_same_subject: Annotated[
        bool,
        typer.Option(
            "--certificate-renewed-same-subject",
            help="The new certificate differs from the old one only in its expiration date.",
        ),
    ] = False,
    computer: Annotated[str, typer.Option("--computer", help="FQDN for --emit-script")] = "",
    change_id: Annotated[str, typer.Option("--change-id", help="Change ticket id for --emit-script")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why, for --emit-script")] = "",
    emit_script: Annotated[
        Path | None,
        typer.Option(
            "--emit-script",
            help="Write the plan as a change-board .ps1 (looks services up first, restores on failure)",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Save the plan as JSON for 'ocsps restart --plan'")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON")] = False,
) -> None:
    """Answer from OCS 2007 / R2 Appendix C: services to stop or restart, in order, and the rule matched."""
    from ocsps.plans.restart import plan_restart

    plan = plan_restart(
        changed, product=product, certificate_renewed_same_subject=certificate_renewed_same_subject
    )
    if emit_script is None and output is None and not json_out:
        _print_plan(plan, console())  # no document needed: the JSON encoder is not even loaded
        return
    from ocsps.plans.restart_document import plan_document

    document = plan_document(plan)
    if emit_script is not None:
        from ocsps.catalog import load_catalog
        from ocsps.cli.output import write_output
        from ocsps.plans.restart import plan_steps
        from ocsps.plans.restart_script import render_restart_board
        from ocsps.powershell.changeboard import ChangeInfo

        prod, steps = plan_steps(document, load_catalog())
        info = ChangeInfo(computer, change_id, reason)
        write_output(render_restart_board("restart plan", prod, steps, info), emit_script)
    if output is not None:
        from ocsps.plans.sealed import save_plan

        save_plan(output, "restart", document)
    if json_out:
        emit_json(document)
        return
    _print_plan(plan, console())


def _print_plan(plan: RestartPlan, out: object) -> None:
    from rich.console import Console
    from rich.table import Table

    assert isinstance(out, Console)
    product = plan.product
    if not plan.services:
        out.print("No service needs a stop or restart.", markup=False)
    else:
        table = Table(title=f"Restart plan ({product.id})")
        for col in ("service", "short name", "action", "rules (Appendix C)"):
            table.add_column(col)
        for s in plan.services:
            rules = "\n".join(f"{m.rule.id}: {m.setting.label}" for m in s.rules)
            table.add_row(s.service.display_name(product), s.service.name or "-", s.action, rules)
        out.print(table)
        for dep in plan.dependents:
            out.print(
                f"{dep.service.display_name(product)} is stopped first and started last: it requires "
                + ", ".join(dep.requires),
                markup=False,
            )
        out.print(
            "Order: "
            + "; ".join(f"{s.number}. {s.verb} {s.service.display_name(product)}" for s in plan.steps),
            markup=False,
        )
    for setting, why in plan.not_needed:
        out.print(f"{setting}: no restart needed: {why}", markup=False)
