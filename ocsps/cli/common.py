"""Turning command-line words into action values: shared by every command that renders a template."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer

from ocsps.errors import UsageError

FORCE_HELP = (
    "Send the stop cmdlet's -Force switch as is. Stop-Service (OCS 2007 / R2): stop even though "
    "dependents run, stopping them too; Stop-CsWindowsService (Lync / SfB): its own -Force. Not needed "
    "for dependents: 'restart' stops them first and starts them again itself"
)
"""One meaning for ``--force`` wherever a command stops a service: pass the cmdlet's ``-Force`` as is."""

WITH_DEPENDENTS_HELP = (
    "Stop the running services that depend on this one first, one by one in dependency order, and list "
    "each (Windows refuses to stop a service whose dependents run)"
)
"""For commands that stop without starting again: take the dependents down explicitly, never by -Force."""


def _change_id(value: str) -> str:
    from ocsps.audit import check_change_id

    try:
        return check_change_id(value)
    except ValueError as exc:
        raise UsageError(f"--change-id: {exc}") from None


ChangeIdOpt = Annotated[
    str,
    typer.Option(
        "--change-id",
        help="Change ticket id (e.g. CHG-1042): written on every audit line, gathered by 'ocsps report'",
        callback=_change_id,
    ),
]
"""One option for every state-changing command, checked before anything is sent."""

if TYPE_CHECKING:
    from ocsps.catalog import Catalog, Product


OWN_OPTIONS: dict[str, str] = {
    "name": "--service",
    "displaypattern": "--service",
    "leaveclsagentrunning": "--leave-running",
    "leavewebserverrunning": "--leave-running",
}
"""Template values that have their own option: ``--param`` may not set them, so that the value is checked
the way its option checks it (a service against the catalog) and the script's header, built from the
option, cannot contradict the script's defaults."""


def parse_param_pairs(
    catalog: Catalog, action_name: str, product: Product, pairs: Iterable[str]
) -> dict[str, object]:
    """``NAME=VALUE`` words to typed values: ints for int, true/false for switches, lists for lists.

    A list parameter takes repeated ``--param`` words (``--param Id=25049 --param Id=25050``) and commas
    (``--param Id=25049,25050``); any other parameter given twice is refused, never silently replaced.
    """
    action = catalog.action(action_name)
    params = {p.name.casefold(): p for p in catalog.action_params(action, product)}
    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param expects NAME=VALUE, got {pair!r}")
        option = OWN_OPTIONS.get(name.strip().casefold())
        if option is not None:
            raise UsageError(f"--param {name.strip()} is not accepted: give it with {option}")
        param = params.get(name.strip().casefold())
        if param is None:
            valid = ", ".join(p.name for p in params.values() if p.name.casefold() not in OWN_OPTIONS)
            raise UsageError(
                f"{action_name} on {product.id} takes no parameter {name.strip()!r}; valid: {valid or 'none'}"
            )
        if param.name in values and param.type != "strings":
            raise UsageError(f"--param {param.name} is given twice; it takes one value")
        if param.type == "int":
            try:
                values[param.name] = int(raw)
            except ValueError:
                raise UsageError(f"--param {param.name} needs a whole number, got {raw!r}") from None
        elif param.type == "switch":
            lowered = raw.strip().casefold()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise UsageError(f"--param {param.name} is a switch: use true or false")
            values[param.name] = lowered in {"true", "1", "yes"}
        elif param.type == "strings":
            items = tuple(v.strip() for v in raw.split(",") if v.strip())
            if not items:
                raise UsageError(f"--param {param.name} needs at least one value")
            earlier = values.get(param.name, ())
            assert isinstance(earlier, tuple)
            values[param.name] = (*earlier, *items)
        else:
            values[param.name] = raw
    return values


def leave_running_values(
    catalog: Catalog, product: Product, names: Iterable[str], *, where: str = ""
) -> dict[str, object]:
    """``--leave-running RTCCLSAGT`` to the drain's keep-running switch (``Catalog.leave_running`` decides).

    A named service that needs no switch is said on stderr (``where`` names the host) and dropped; one the
    product cannot keep running is a usage error, before anything is sent.
    """
    from ocsps.cli.output import err_console, is_quiet

    keep = catalog.leave_running(product, names)
    if not is_quiet():
        for warning in keep.warnings:
            err_console().print(f"{where}: {warning}" if where else warning, markup=False)
    return dict(keep.values)
