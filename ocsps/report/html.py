"""The report as one self-contained HTML page: inline CSS, no script, no external asset.

The page is attached to a change ticket and opened months later, offline, in whatever viewer the board
uses: it must show the same thing without a network or JavaScript. Autoescaping is on for the whole
template and nothing is marked safe, so a value from the log (a host name, an installer's message) is
always text, never markup. The template lives in this module so that it ships with the code.
"""

from __future__ import annotations

from ocsps.report.markdown import REHEARSAL, mark, span, verdict, verified_text, when
from ocsps.report.model import Report

__all__ = ["render_html"]

TEMPLATE = """{% macro timeline(events) %}
<table>
<tr><th>Time (UTC)</th><th>Stage</th><th>Result</th><th>Detail</th><th>Run by</th><th>Source</th>
<th></th></tr>
{% for e in events %}
<tr{% if e.rehearsal %} class="rehearsal"{% endif %}><td class="time">{{ when(e.time) }}</td>
<td class="stage">{{ e.stage }}</td><td class="{{ css_ok(e.ok) }}">{{ verdict(e.ok, e.outcome) }}</td>
<td class="detail">{{ e.detail or "-" }}</td><td>{{ e.operator or "-" }}</td><td>{{ e.source }}</td>
<td>{% if e.rehearsal %}<span class="badge">{{ rehearsal }}</span>{% endif %}</td></tr>
{% endfor %}
</table>
{% endmacro %}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Post-implementation report: {{ title }}</title>
<style>
body { font-family: Segoe UI, Helvetica, Arial, sans-serif; margin: 2em; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0 1.2em; width: 100%; }
th, td { border: 1px solid #d0d0d0; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.time { white-space: nowrap; font-family: Consolas, monospace; }
td.detail { font-size: .92em; word-break: break-word; }
table.facts { width: auto; }
table.facts th { width: 11em; }
table.glance { width: auto; }
table.glance th, table.glance td { text-align: center; min-width: 9em; }
.ok { color: #0b6a0b; font-weight: 600; }
.failed { color: #a80000; font-weight: 700; }
.neutral { color: #555; }
.banner { padding: .8em 1em; margin: 1em 0; border: 2px solid #8a6d00; background: #fff4ce;
  font-weight: 600; }
.badge { display: inline-block; padding: 0 .4em; border: 1px solid #8a6d00; background: #fff4ce;
  color: #5c4a00; font-size: .85em; font-weight: 600; white-space: nowrap; }
tr.rehearsal td { background: #fffbe8; }
.stage { font-weight: 600; }
.statement { background: #f7f7f7; border-left: 4px solid #999; padding: .4em .8em; }
footer { margin-top: 3em; font-size: .85em; color: #555; }
@media print { body { margin: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
</style>
</head>
<body>
<h1>Post-implementation report: {{ title }}</h1>
{% if report.rehearsal == "yes" %}
<p class="banner">LAB REHEARSAL: every step below ran against the simulated lab, not against production
servers; the server names are the lab's.</p>
{% elif report.rehearsal == "mixed" %}
<p class="banner">MIXED: REHEARSAL AND PRODUCTION. Rows marked {{ rehearsal }} ran against the simulated lab;
the others against real servers.</p>
{% endif %}
<table class="facts">
<tr><th>Selection</th><td>{{ report.selection }}</td></tr>
<tr><th>Outcome</th><td class="{{ css(report.outcome) }}">{{ report.outcome }}</td></tr>
<tr><th>Lab rehearsal</th><td>{{ report.rehearsal }}</td></tr>
<tr><th>First record</th><td>{{ when(report.started) }} UTC</td></tr>
<tr><th>Last record</th><td>{{ when(report.finished) }} UTC</td></tr>
<tr><th>Run by</th><td>{{ report.operators | join(", ") or "-" }}</td></tr>
<tr><th>Servers</th><td>{{ report.servers | length }}</td></tr>
</table>
{% if report.commands %}
<h2>Commands</h2>
<table>
<tr><th>Time (UTC)</th><th>Command</th><th>Hosts</th><th>Run by</th><th></th></tr>
{% for c in report.commands %}
<tr{% if c.rehearsal %} class="rehearsal"{% endif %}><td class="time">{{ when(c.time) }}</td>
<td>{{ c.command }}</td>
<td>{{ c.hosts | join(", ") }}</td><td>{{ c.operator or "-" }}</td>
<td>{% if c.rehearsal %}<span class="badge">{{ rehearsal }}</span>{% endif %}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if report.servers %}
<h2>Servers</h2>
<table>
<tr><th>Server</th><th>Product</th><th>Outcome</th><th>Expected version</th><th>Verified</th><th></th></tr>
{% for s in report.servers %}
<tr{% if s.rehearsal %} class="rehearsal"{% endif %}>
<td><a href="#server-{{ loop.index }}">{{ s.host }}</a></td>
<td>{{ s.product or "-" }}</td><td class="{{ css(s.outcome) }}">{{ s.outcome }}</td>
<td>{{ s.expected_version or "-" }}</td>
<td class="{{ css_verified(s.verified) }}">{{ yes_no(s.verified) }}</td>
<td>{% if s.rehearsal %}<span class="badge">{{ rehearsal }}</span>{% endif %}</td></tr>
{% endfor %}
</table>
{% endif %}
{% for s in report.servers %}
<h2 id="server-{{ loop.index }}">{{ s.host }}
{% if s.rehearsal %} <span class="badge">{{ rehearsal }}</span>{% endif %}</h2>
<p>Outcome: <span class="{{ css(s.outcome) }}">{{ s.outcome }}</span>{% if s.expected_version %};
expected version {{ s.expected_version }}:
<span class="{{ css_verified(s.verified) }}">{{ verified_text(s.verified) }}</span>{% endif %}</p>
{% if s.milestones %}
<table class="glance">
<tr>{% for m in s.milestones %}<th>{{ m.stage }}</th>{% endfor %}</tr>
<tr>{% for m in s.milestones %}<td class="{{ css_ok(m.ok) }}">{{ mark(m.ok) }}<br>
<span class="neutral">{{ span(m.started, m.finished) }}</span></td>{% endfor %}</tr>
</table>
{% endif %}
{% if s.statement %}<p class="statement">State at the end: {{ s.statement }}</p>{% endif %}
{% if s.versions %}
<table>
<tr><th>Component</th><th>Before</th><th>After</th><th>Verified</th></tr>
{% for v in s.versions %}
<tr><td>{{ v.component }}</td><td>{{ v.before or "-" }}</td><td>{{ v.after or "-" }}</td>
<td class="{{ css_verified(v.verified) }}">{{ yes_no(v.verified) }}</td></tr>
{% endfor %}
</table>
{% endif %}
{{ timeline(s.events) }}
{% endfor %}
{% for p in report.pools %}
<h2>Pool {{ p.pool }}{% if p.rehearsal %} <span class="badge">{{ rehearsal }}</span>{% endif %}</h2>
<p>Roll status: <span class="{{ css(p.status) }}">{{ p.status }}</span>
{% if p.reason %} ({{ p.reason }}){% endif %}</p>
{% if p.details %}
<table class="facts">
{% for label, value in p.details %}<tr><th>{{ label }}</th><td>{{ value or "-" }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if p.servers %}
<table class="facts"><tr><th>Server</th><th>Phase</th></tr>
{% for name, phase in p.servers %}<tr><td>{{ name }}</td><td>{{ phase }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if p.events %}{{ timeline(p.events) }}{% endif %}
{% endfor %}
{% if report.notes %}
<h2>Notes</h2>
<ul>{% for n in report.notes %}<li>{{ n }}</li>{% endfor %}</ul>
{% endif %}
<footer>Generated {{ when(report.generated) }} UTC by {{ report.generated_by }} from the audit log and the
records saved beside it. Times are UTC.</footer>
</body>
</html>
"""


def _css(outcome: str) -> str:
    return "ok" if outcome in ("ok", "done") else "neutral" if outcome in ("running", "paused") else "failed"


def _css_ok(ok: bool | None) -> str:
    return "ok" if ok is True else "failed" if ok is False else "neutral"


def _yes_no(verified: bool | None) -> str:
    return "yes" if verified else "NO" if verified is False else "-"


def render_html(report: Report) -> str:
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(TEMPLATE)
    return template.render(
        report=report,
        title=f"change {report.change_id}" if report.change_id else report.selection,
        rehearsal=REHEARSAL,
        when=when,
        span=span,
        mark=mark,
        css=_css,
        css_ok=_css_ok,
        css_verified=_css_ok,
        yes_no=_yes_no,
        verdict=verdict,
        verified_text=verified_text,
    )
