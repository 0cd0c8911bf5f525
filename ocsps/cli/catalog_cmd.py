"""``ocsps catalog``: what the tool knows, for people and for scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.output import console, emit_json

catalog_app = typer.Typer(
    help="List the products, services and restart rules ocsps knows.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


@catalog_app.command("products")
def products_cmd(json_out: JsonOpt = False) -> None:
    """Products with their PowerShell level and module."""
    from rich.table import Table

    from ocsps.catalog import load_catalog

    rows = [
        {
            "id": p.id,
            "name": p.name,
            "powershell": p.powershell,
            "psrp_protocol": p.psrp_protocol,
            "module": p.module or None,
            "graceful_drain": p.graceful_drain,
            "service_control": p.service_control,
            "deactivation": p.deactivation,
        }
        for p in load_catalog().products.values()
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table(title="Products")
    for col in ("id", "name", "PowerShell", "module", "graceful drain"):
        table.add_column(col)
    for r in rows:
        cells = (
            r["id"],
            r["name"],
            r["powershell"],
            r["module"] or "-",
            "yes" if r["graceful_drain"] else "no",
        )
        table.add_row(*(str(c) for c in cells))
    console().print(table)


@catalog_app.command("services")
def services_cmd(
    product: Annotated[str | None, typer.Option("--product", "-p", help="Only this product")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Services per product and role."""
    from rich.table import Table

    from ocsps.catalog import load_catalog

    cat = load_catalog()
    products = [cat.product(product)] if product else list(cat.products.values())
    rows = [
        {
            "product": p.id,
            "key": s.key,
            "name": s.name,
            "display_name": s.display_name(p),
            "roles": list(s.roles),
            "requires": list(s.requires),
            "drain_events": list(s.drain_events),
            "note": s.note,
        }
        for p in products
        for s in cat.services_for(p, include_external=True)
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table(title="Services")
    for col in ("product", "short name", "display name", "roles"):
        table.add_column(col)
    for r in rows:
        roles = r["roles"]
        assert isinstance(roles, list)
        table.add_row(
            str(r["product"]),
            str(r["name"] or f"({r['key']})"),
            str(r["display_name"]),
            ", ".join(map(str, roles)),
        )
    console().print(table)


@catalog_app.command("rules")
def rules_cmd(json_out: JsonOpt = False) -> None:
    """The restart rules of OCS 2007 / R2 Appendix C."""
    from rich.table import Table

    from ocsps.catalog import load_catalog

    cat = load_catalog()
    rows = [
        {
            "id": r.id,
            "service": r.service,
            "action": r.action,
            "trigger": (
                {"snapin": list(r.snapin)}
                if r.snapin
                else {"task": r.task}
                if r.task
                else {
                    "wmi_class": r.wmi_class,
                    "properties": list(r.properties) or "all",
                    "except_properties": list(r.except_properties),
                    "except_prefixes": list(r.except_prefixes),
                }
            ),
            "certificate_exception": r.certificate_exception,
            "section": r.section,
            "why": r.why,
        }
        for r in cat.rules
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table(title="Restart rules (OCS 2007 / R2, Appendix C)")
    for col in ("rule", "service", "action", "trigger"):
        table.add_column(col)
    for r, rule in zip(rows, cat.rules, strict=True):
        if rule.wmi_class:
            props = ", ".join(rule.properties) or "any property"
            excepts = [*rule.except_properties, *(f"{p}*" for p in rule.except_prefixes)]
            trigger = f"{rule.wmi_class}: {props}" + (f" (except {', '.join(excepts)})" if excepts else "")
        elif rule.task:
            trigger = f"task: {cat.tasks[rule.task].label}"
        else:
            trigger = "snap-in: " + ", ".join(cat.snapin_settings[s].label for s in rule.snapin)
        table.add_row(str(r["id"]), str(r["service"]), str(r["action"]), trigger)
    console().print(table)
