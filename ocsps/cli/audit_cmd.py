"""``ocsps audit``: where the audit trail of state-changing calls is, and what it holds."""

from __future__ import annotations

from typing import Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.output import emit_json

audit_app = typer.Typer(help="The audit trail of every state-changing call.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("path")
def path_cmd() -> None:
    """Print the audit log's path (set OCSPS_AUDIT_LOG to move it)."""
    from ocsps.audit import audit_path

    typer.echo(str(audit_path()))


@audit_app.command("show")
def show_cmd(
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many entries, newest last")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the entries as a JSON list")] = False,
) -> None:
    """Show the newest audit entries."""
    import json

    from ocsps.audit import audit_path

    path = audit_path()
    lines = path.read_text(encoding="utf-8").splitlines()[-last:] if path.exists() else []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            entries.append({"unreadable": line[:200]})
    if json_out:
        emit_json(entries)
        return
    if not entries:
        typer.echo(f"no entries in {path}")
    for e in entries:
        typer.echo(
            f"{e.get('time', '?')}  {e.get('operator', '?')}  {e.get('host', '?')}  {e.get('action', '?')}  "
            f"{e.get('outcome', '?')}  {e.get('duration_seconds', '?')}s"
        )
