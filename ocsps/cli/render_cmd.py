"""``ocsps render``: a standalone, reviewable .ps1 for a change board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.common import OWN_OPTIONS, leave_running_values, parse_param_pairs
from ocsps.cli.output import write_output
from ocsps.errors import UsageError

ProductOpt = Annotated[
    str | None,
    typer.Option("--product", "-p", help="Target product id (default sfb2019; ocs2007r2 for deactivate)"),
]


@app.command()
def render(
    action: Annotated[
        str, typer.Argument(help="status, drain, stop, start, restart, events, msmq-privacy, wmi-setting")
    ],
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Service short name, e.g. RTCMEDSRV")
    ] = None,
    product: ProductOpt = None,
    roles: Annotated[
        list[str] | None, typer.Option("--roles", "-r", help="deactivate: the computer's role keys")
    ] = None,
    computer: Annotated[
        str, typer.Option("--computer", help="FQDN the script is meant for (checked when run)")
    ] = "",
    change_id: Annotated[str, typer.Option("--change-id", help="Change ticket id shown in the header")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why the change is made")] = "",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Extra template value NAME=VALUE; repeat it for a list value. Values with their own "
            "option (the service, --leave-running) are refused here",
        ),
    ] = None,
    leave_running: Annotated[
        list[str] | None,
        typer.Option("--leave-running", help="Keep a service running during a drain (2013+)"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the .ps1 here (default stdout)")
    ] = None,
) -> None:
    """Write a change-board .ps1: header, -WhatIf support, quoted defaults, transcript, exit code."""
    from ocsps.catalog import load_catalog
    from ocsps.plans.action_board import action_board, action_values
    from ocsps.powershell.changeboard import ChangeInfo

    if action == "deactivate":  # a whole ordered sequence, not one action: see ocsps deactivate
        from ocsps.cli.deactivate_cmd import render_for_roles

        render_for_roles(
            computer=computer,
            roles=roles or [],
            product=product,
            change_id=change_id,
            reason=reason,
            output=output,
        )
        return
    cat = load_catalog()
    prod = cat.product(product or "sfb2019")
    cat.template_for(action, prod)
    leave = leave_running_values(cat, prod, leave_running) if leave_running else {}
    extra = parse_param_pairs(cat, action, prod, param or [])
    values = action_values(action, prod, service=service, leave_running=leave, extra=extra, catalog=cat)
    for p in cat.action_params(cat.action(action), prod):
        if p.required and p.name not in values and p.name.casefold() in OWN_OPTIONS:
            raise UsageError(f"render {action} needs {OWN_OPTIONS[p.name.casefold()]}")
    if action == "restart" and service is None:  # a service with its dependents, as 'ocsps restart' does
        raise UsageError("render restart needs --service")
    info = ChangeInfo(computer, change_id, reason)
    text = action_board(
        action, prod, service=service, leave_running=leave, extra=extra, info=info, catalog=cat
    )
    write_output(text, output)
