"""The change-board script for one action (drain, stop, start, restart, status, ...), chosen in one place.

``ocsps render``, the ``--emit-script`` of ``drain``, ``stop``, ``start`` and ``restart``, and the Ansible
module ``changeboard_script`` all write this script, so a board approves the same text whichever door it came
through. The choices made here are the ones ocsps makes when it runs the action itself:

- the service's parameters come from the catalog (``Name`` or ``DisplayPattern``, per product);
- a drain written for a board waits for the service to stop (``NoWait`` off unless asked), since the script
  is the whole change, with no watch after it;
- a restart is the restart of the service with its dependents (``ocsps restart``: dependents stop first and
  start last, what the script stopped is started again after a failure), never the bare stop-and-start of
  the one service, which leaves the dependents its stop took down stopped (Stop-CsWindowsService) or is
  refused while they run (Restart-Service on OCS 2007 / R2, without ``-Force``);
- ``leave_running`` are the drain's keep-running switches, already decided and checked by the caller.

It lives with the planners, not in ``ocsps.powershell``, because a restart's board is built from a restart
plan: plans build on the PowerShell layer (``changeboard``, ``script``), never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping

from ocsps.catalog import Catalog, Product, load_catalog
from ocsps.errors import UsageError
from ocsps.plans.restart import service_restart_steps
from ocsps.plans.restart_script import render_restart_board
from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board
from ocsps.powershell.script import render_action


def action_values(
    action: str,
    product: Product | str,
    *,
    service: str | None = None,
    leave_running: Mapping[str, object] | None = None,
    force: bool = False,
    extra: Mapping[str, object] | None = None,
    catalog: Catalog | None = None,
) -> dict[str, object]:
    """The template values of the board for ``action``: the service's parameters, the keep-running
    switches, a drain's ``NoWait`` default (off: the script waits), ``Force`` and then ``extra``.

    ``extra`` (further template values, such as ``ocsps render --param``) wins over the defaults. An action
    the product lacks, or a service it does not have, is refused here, before anything is rendered.
    """
    cat = catalog or load_catalog()
    prod = cat.product(product) if isinstance(product, str) else product
    cat.template_for(action, prod)
    values: dict[str, object] = {}
    if service is not None:
        values.update(cat.service_parameters(prod, cat.find_service(prod, service)))
    values.update(leave_running or {})
    if action == "drain":
        values["NoWait"] = False
    if force:
        values["Force"] = True
    values.update(extra or {})
    return values


def action_board(
    action: str,
    product: Product | str,
    *,
    service: str | None = None,
    leave_running: Mapping[str, object] | None = None,
    force: bool = False,
    extra: Mapping[str, object] | None = None,
    info: ChangeInfo | None = None,
    catalog: Catalog | None = None,
) -> str:
    """The change-board script for ``action`` on ``product`` (and ``service``); same inputs, same bytes.

    ``leave_running`` holds the drain's keep-running switches as template values (``{"LeaveClsAgentRunning":
    True}``), already checked against the product; ``force`` sends the stop cmdlet's ``-Force`` (stop, and
    the stops of a restart); ``info`` names the computer, the change ticket and the reason. The title is
    ``"<action> <service>"``, the service as given. Bad input raises ``UsageError`` with one line.
    """
    cat = catalog or load_catalog()
    prod = cat.product(product) if isinstance(product, str) else product
    values = action_values(
        action,
        prod,
        service=service,
        leave_running=leave_running,
        force=force,
        extra=extra,
        catalog=cat,
    )
    # Every value is checked against the action's own parameters, the restart's too.
    rendered = render_action(action, prod, values, catalog=cat)
    title = f"{action} {service}" if service else action
    change = info or ChangeInfo()
    if action == "restart":
        if service is None:
            raise UsageError("a restart board needs the service to restart")
        steps = service_restart_steps(cat, prod, cat.find_service(prod, service))
        return render_restart_board(title, prod, steps, change, force=bool(values.get("Force")), catalog=cat)
    return render_change_board(title, [Step(title, rendered)], change)
