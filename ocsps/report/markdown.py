"""The report as Markdown: for the change ticket's comment field, a wiki page or a pull request.

Every value comes from a log an operator's input reached (a host name, a script's message), so every
value is escaped: a pipe would break a table, a backtick open code, ``<script>`` become markup in a
renderer that passes HTML through. Escaped text reads the same once rendered.
"""

from __future__ import annotations

import re

from ocsps.report.model import Event, Report, ServerReport

__all__ = ["REHEARSAL", "mark", "md_escape", "render_markdown", "span", "verdict", "verified_text", "when"]

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
"""What Markdown reads as code, emphasis, links or a table's column; the rest of the text stays readable
(values never start a line: every one follows a label or a cell border)."""
REHEARSAL = "REHEARSAL (lab)"


def md_escape(value: object) -> str:
    """Text that Markdown shows as is, on one line, safe in a table cell."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return _SPECIAL.sub(r"\\\1", text)


def when(iso: str) -> str:
    """``2026-12-06T06:06:12.471745+00:00`` as ``2026-12-06 06:06:12``: the report is in UTC throughout."""
    return iso[:19].replace("T", " ") if iso else "-"


def _row(*cells: object) -> str:
    return "| " + " | ".join(md_escape(c) if c != "" else "-" for c in cells) + " |"


def verdict(ok: bool | None, outcome: str) -> str:
    """A row's result in one word or two, loud when it is not ok."""
    if ok is True:
        return "ok"
    if ok is False:
        kind, sep, rest = outcome.partition(": ")
        if sep and kind in ("failed", "unknown"):
            return f"{kind.upper()}: {rest}"
        return "FAILED" if outcome in ("failed", "") else f"FAILED: {outcome}"
    return outcome or "-"


def verified_text(verified: bool | None) -> str:
    return {True: "verified", False: "NOT verified", None: "not read"}[verified]


def _banner(report: Report) -> list[str]:
    if report.rehearsal == "yes":
        return [
            "> **LAB REHEARSAL.** Every step below ran against the simulated lab, not against production "
            "servers; the server names are the lab's.",
            "",
        ]
    if report.rehearsal == "mixed":
        return [
            f"> **MIXED: REHEARSAL AND PRODUCTION.** Rows marked {md_escape(REHEARSAL)} ran against the "
            "simulated lab; the others against real servers.",
            "",
        ]
    return []


def mark(ok: bool | None) -> str:
    return {True: "ok", False: "FAILED", None: "-"}[ok]


def span(started: str, finished: str) -> str:
    """``2026-12-06 06:06:12 to 06:09:40``; one time when both are the same second."""
    first, last = when(started), when(finished)
    if last == first:
        return first
    return f"{first} to {last[11:] if last[:10] == first[:10] else last}"


def _glance(server: ServerReport) -> list[str]:
    if not server.milestones:
        return []
    lines = ["", "At a glance:", ""]
    lines.append("| " + " | ".join(m.stage for m in server.milestones) + " |")
    lines.append("|" + "---|" * len(server.milestones))
    lines.append(
        _row(
            *(
                f"{verdict(m.ok, 'failed' if m.ok is False else '-')}, {span(m.started, m.finished)}"
                for m in server.milestones
            )
        )
    )
    return lines


def _versions(server: ServerReport) -> list[str]:
    if not server.versions:
        return []
    lines = ["", "Versions read before and after the update:", ""]
    lines += ["| Component | Before | After | Verified |", "|---|---|---|---|"]
    for v in server.versions:
        verified = "yes" if v.verified else "NO" if v.verified is False else "-"
        lines.append(_row(v.component, v.before, v.after, verified))
    return lines


def _timeline(events: tuple[Event, ...]) -> list[str]:
    lines = [
        "| Time (UTC) | Stage | Result | Detail | Run by | Source | Rehearsal |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in events:
        lines.append(
            _row(
                when(e.time),
                e.stage,
                verdict(e.ok, e.outcome),
                e.detail,
                e.operator,
                e.source,
                REHEARSAL if e.rehearsal else "",
            )
        )
    return lines


def render_markdown(report: Report) -> str:
    title = f"change {report.change_id}" if report.change_id else report.selection
    out = [f"# Post-implementation report: {md_escape(title)}", ""]
    out += _banner(report)
    out += ["| | |", "|---|---|"]
    out.append(_row("Selection", report.selection))
    out.append(_row("Outcome", report.outcome))
    out.append(_row("Lab rehearsal", report.rehearsal))
    out.append(_row("First record", when(report.started)))
    out.append(_row("Last record", when(report.finished)))
    out.append(_row("Run by", ", ".join(report.operators)))
    out.append(_row("Servers", str(len(report.servers))))
    out.append(_row("Generated", f"{when(report.generated)} UTC by {report.generated_by}"))
    if report.commands:
        out += [
            "",
            "## Commands",
            "",
            "| Time (UTC) | Command | Hosts | Run by | Rehearsal |",
            "|---|---|---|---|---|",
        ]
        for c in report.commands:
            out.append(
                _row(
                    when(c.time), c.command, ", ".join(c.hosts), c.operator, REHEARSAL if c.rehearsal else ""
                )
            )
    if report.servers:
        out += ["", "## Servers", ""]
        out += [
            "| Server | Product | Outcome | Expected version | Verified | Rehearsal |",
            "|---|---|---|---|---|---|",
        ]
        for s in report.servers:
            verified = "yes" if s.verified else "NO" if s.verified is False else "-"
            out.append(
                _row(
                    s.host,
                    s.product,
                    s.outcome,
                    s.expected_version,
                    verified,
                    REHEARSAL if s.rehearsal else "",
                )
            )
    for s in report.servers:
        out += ["", f"## {md_escape(s.host)}", ""]
        facts = [f"Outcome: **{md_escape(s.outcome)}**"]
        if s.expected_version:
            facts.append(f"expected version {md_escape(s.expected_version)}: {verified_text(s.verified)}")
        if s.rehearsal:
            facts.append(f"**{md_escape(REHEARSAL)}**")
        out.append("; ".join(facts) + ".")
        out += _glance(s)
        if s.statement:
            out += ["", f"State at the end: {md_escape(s.statement)}"]
        out += _versions(s)
        out += ["", "Timeline:", ""]
        out += _timeline(s.events)
    for p in report.pools:
        out += ["", f"## Pool {md_escape(p.pool)}", ""]
        line = f"Roll status: **{md_escape(p.status)}**"
        if p.reason:
            line += f" ({md_escape(p.reason)})"
        if p.rehearsal:
            line += f"; **{md_escape(REHEARSAL)}**"
        out.append(line + ".")
        if p.details:
            out += ["", "| Roll | |", "|---|---|"]
            out += [_row(label, value) for label, value in p.details]
        if p.servers:
            out += ["", "| Server | Phase |", "|---|---|"]
            out += [_row(name, phase) for name, phase in p.servers]
        if p.events:
            out += ["", "Roll events:", ""]
            out += _timeline(p.events)
    if report.notes:
        out += ["", "## Notes", ""]
        out += [f"- {md_escape(n)}" for n in report.notes]
    return "\n".join(out) + "\n"
