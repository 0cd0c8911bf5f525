"""Post-implementation reports for the change board: one change's audit trail and records, as evidence.

``build_report`` (pure) turns already-read sources into a ``Report``; ``gather`` reads them from the audit
log and the directory beside it; ``render_markdown`` and ``render_html`` write the report for people, and
``ocsps.report.document.ReportDocument`` is its JSON document for tools (written by
``ocsps.jsonout.to_builtins``; kept out of this package's imports so that Markdown never loads msgspec).
"""

from ocsps.report.html import render_html
from ocsps.report.markdown import render_markdown
from ocsps.report.model import (
    FORMAT,
    CommandRun,
    Event,
    Milestone,
    PoolReport,
    Report,
    Selection,
    ServerReport,
    VersionRow,
    build_report,
    parse_time,
)
from ocsps.report.sources import Sources, gather

__all__ = [
    "FORMAT",
    "CommandRun",
    "Event",
    "Milestone",
    "PoolReport",
    "Report",
    "Selection",
    "ServerReport",
    "Sources",
    "VersionRow",
    "build_report",
    "gather",
    "parse_time",
    "render_html",
    "render_markdown",
]
