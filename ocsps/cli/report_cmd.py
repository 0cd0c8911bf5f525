"""``ocsps report``: the post-implementation report of one change, from the audit trail and the records.

Offline: it reads the audit log and the records saved beside it, and talks to no server.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.common import ChangeIdOpt
from ocsps.cli.output import emit_json, err_console, is_quiet
from ocsps.errors import UsageError

if TYPE_CHECKING:
    from ocsps.report import Report


def _moment(option: str, value: str | None, now: datetime) -> datetime | None:
    """A date, a time (UTC unless it says otherwise) or a duration ago (``12h``)."""
    if value is None:
        return None
    from ocsps.report import parse_time

    moment = parse_time(value)
    if moment is not None:
        return moment
    from ocsps.durations import parse_duration

    try:
        return now - timedelta(seconds=parse_duration(value))
    except UsageError:
        raise UsageError(
            f"{option} {value!r}: give a date or time (2026-12-06, 2026-12-06T06:00Z) or a duration ago (12h)"
        ) from None


def _write(text: str, path: Path) -> None:
    """The whole file or nothing, as UTF-8 without a byte order mark (browsers and Markdown tools)."""
    from ocsps.hostname import show
    from ocsps.localfiles import check_output_target

    check_output_target(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="\n")
        tmp.replace(path)
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        why = getattr(exc, "strerror", None) or exc.__class__.__name__
        raise UsageError(f"cannot write {show(str(path), 200)}: {why}") from None


@app.command("report")
def report(
    change_id: ChangeIdOpt = "",
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this time on (2026-12-06, 2026-12-06T06:00Z, or 12h ago); UTC"),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this time (same forms as --since)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the Markdown report here (default stdout)")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML page here")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON document instead of Markdown")
    ] = False,
    audit_log: Annotated[
        Path | None,
        typer.Option("--audit-log", help="Read this audit log (default: the one changes are written to)"),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Read patch records and roll states here (default: the log's folder)"
        ),
    ] = None,
) -> None:
    """The post-implementation report of a change: per-server timeline, versions, outcome, who ran it.

    Gathers the audit lines that carry the change id (or fall between --since and --until) and the patch
    records and pool roll states of that change. Lab rehearsals are marked as such on every row. The
    Markdown goes to stdout unless --output, --html or --json says otherwise. Exit codes: 0 written;
    1 nothing matches; 2 bad usage.
    """
    from ocsps import __version__
    from ocsps.audit import audit_path
    from ocsps.report import Selection, build_report, gather, render_html, render_markdown

    now = datetime.now(UTC)
    try:
        selection = Selection(change_id, _moment("--since", since, now), _moment("--until", until, now))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if json_out and output is not None:
        raise UsageError("--json prints the report on stdout; --output writes the Markdown: give one")
    log = audit_log or audit_path()
    sources = gather(log, state_dir or log.parent, change_id=change_id)
    built: Report = build_report(
        selection,
        sources.audit_lines,
        patch_records=sources.patch_records,
        roll_states=sources.roll_states,
        generated=now.isoformat(),
        generated_by=f"ocsps {__version__}",
        notes=sources.notes,
    )
    if built.empty:
        err_console().print(f"nothing in {log} matches {selection.describe()}", markup=False)
        raise typer.Exit(1)
    if html is not None:
        _write(render_html(built), html)
    if json_out:
        from ocsps.jsonout import to_builtins
        from ocsps.report.document import ReportDocument

        emit_json(to_builtins(ReportDocument.of(built)))
    elif output is not None:
        _write(render_markdown(built), output)
    elif html is None:
        typer.echo(render_markdown(built), nl=False)
    if not is_quiet():
        for path in (output, html):
            if path is not None:
                err_console().print(f"wrote {path}", markup=False)
