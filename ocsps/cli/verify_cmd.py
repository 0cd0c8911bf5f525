"""``ocsps verify FILE``: is a change-board script or a sealed plan what ocsps wrote, and what is it for?

For scripts and pipelines that gate a change: exit 0 intact, 1 modified, 2 not an ocsps file (or unreadable).
Nothing is sent anywhere. An intact file proves it was not changed after it was generated, not who generated
it: see docs/security.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ocsps.cli.app import app
from ocsps.cli.output import emit_json, human

INTACT, MODIFIED, NOT_OCSPS = 0, 1, 2


def _plan_report(text: str, source: str) -> dict[str, Any] | None:
    """The verdict on a sealed plan, or None when the text is not one."""
    from ocsps.plans.sealed import verify_plan

    result = verify_plan(text, source)
    if not result.is_ocsps:
        return None
    return {
        "type": "plan",
        "kind": result.kind,
        "generated_by": result.generated_by,
        "sha256": result.sha256,
        "targets": dict(result.targets),
        "steps": result.steps,
        "intact": result.ok,
        "reason": result.reason,
    }


def _script_report(text: str) -> dict[str, Any] | None:
    from ocsps.powershell.changeboard import verify_script

    result = verify_script(text)
    if not result.is_ocsps:
        return None
    return {
        "type": "change-board script",
        "intact": result.ok,
        "reason": result.reason,
        "line_endings": result.line_endings,
        "targets": dict(result.header),
        "body_sha256": list(result.body_hashes),
    }


@app.command("verify")
def verify(
    file: Annotated[
        Path, typer.Argument(help="A change-board .ps1 or a sealed plan .json", show_default=False)
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Check a change-board script or a sealed plan: intact or modified, and what it targets.

    Exit 0 intact, 1 modified, 2 not an ocsps file. The sha256 shows accidental or unreviewed edits; it
    does not prove who wrote the file (anyone who can edit it can reseal it): sign it for that.
    """
    from ocsps.errors import UsageError
    from ocsps.localfiles import read_bytes_bounded

    data = read_bytes_bounded(file, what="file")
    report: dict[str, Any] | None = None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
    if text:
        report = _script_report(text) or _plan_report(text, str(file))
    if report is None:
        raise UsageError(f"{file}: not an ocsps change-board script or sealed plan")
    code = INTACT if report["intact"] else MODIFIED
    if json_out:
        emit_json({"command": "verify", "file": str(file), **report, "exit_code": code})
        raise typer.Exit(code)
    verdict = "intact" if report["intact"] else "MODIFIED"
    typer.echo(human(f"{file}: {report['type']} {verdict}: {report['reason']}"))
    if not report["intact"] and report["targets"]:
        typer.echo("  what the modified file says (not to be trusted):")
    for key, value in report["targets"].items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        typer.echo(human(f"  {key.lower()}: {shown}"))
    if report.get("steps") is not None:
        typer.echo(f"  steps: {report['steps']}")
    raise typer.Exit(code)
