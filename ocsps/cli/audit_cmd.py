"""``ocsps audit``: where the audit trail of state-changing calls is, and what it holds."""

from __future__ import annotations

from typing import Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.output import emit_json, err_console, human

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
    """Show the newest audit entries; a damaged line is flagged and the rest still shown."""
    from ocsps.audit import audit_path, read_entries

    path = audit_path()
    entries = read_entries(last, path)
    corrupt = [e for e in entries if e.corrupt]
    if json_out:
        emit_json([{"corrupt": e.corrupt, "text": e.raw} if e.corrupt else dict(e.fields) for e in entries])
        return
    if not entries:
        typer.echo(human(f"no entries in {path}"))
    for e in entries:
        if e.corrupt:
            typer.echo(human(f"CORRUPT LINE ({e.corrupt}): {e.raw[:120]}"))
            continue
        f = e.fields
        columns = ("time", "operator", "host", "action", "outcome")
        text = "  ".join(str(f.get(c, "?")) for c in columns) + f"  {f.get('duration_seconds', '?')}s"
        if f.get("simulation"):
            text = "[lab] " + text  # a rehearsal against the simulated servers, not a real change
        typer.echo(human(text))
    if corrupt:
        err_console().print(
            f"warning: {len(corrupt)} of the last {len(entries)} lines of {path} are damaged "
            "(shown as CORRUPT LINE)",
            markup=False,
        )
