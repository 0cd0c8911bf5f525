"""Values from the log are text, never markup: not in the HTML page, not in the Markdown.

A host name, an installer's message or a component name reaches the log from outside ocsps; the report
must show it as written and nothing more.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from ocsps.report import Selection, build_report, render_html, render_markdown

HOSTILE = [
    '<script>alert("x")</script>',
    "a | b | c",
    "`rm -rf` and ``` fence",
    "[click](javascript:alert(1))",
    "\"quoted\" and 'single' & <b>bold</b>",
    "*star* _under_ ~strike~ \\ back",
    "<img src=x onerror=alert(1)>",
    "line\nbreak",
]
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "tr", "th", "td", "a", "span",
    "ul", "li", "footer", "br",
}  # fmt: skip


def _report(value: str) -> Any:
    lines = [
        {
            "time": "2026-03-01T22:00:00+00:00",
            "operator": value,
            "host": value,
            "action": f"patch server {value}",
            "parameters": {"hosts": [value]},
            "outcome": "starting",
            "detail": "intent: recorded before anything is sent",
            "change_id": "CHG-1",
        },
        {
            "time": "2026-03-01T22:00:01+00:00",
            "operator": value,
            "host": value,
            "action": value,
            "parameters": {value: value},
            "outcome": f"failed: {value}",
            "detail": value,
            "change_id": "CHG-1",
            "simulation": True,
        },
    ]
    record = {
        "host": value,
        "product": value,
        "status": value,
        "reason": value,
        "step": "verify",
        "plan": {"options": {"expect_version": value}},
        "versions_before": {value: value},
        "versions_after": {value: "1.0"},
        "statement": value,
        "change_id": "CHG-1",
        "history": [{"time": "2026-03-01T22:00:02+00:00", "step": "verify", "message": value}],
    }
    roll = {
        "pool": value,
        "status": value,
        "reason": value,
        "servers": {value: value},
        "change_id": "CHG-1",
        "history": [{"time": "2026-03-01T22:00:03+00:00", "event": value, "message": value}],
    }
    return build_report(
        Selection("CHG-1"),
        lines,
        patch_records=[record],
        roll_states=[roll],
        generated="2026-04-01T00:00:00+00:00",
        generated_by="ocsps (test)",
        notes=[value],
    )


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize("value", HOSTILE)
def test_html_shows_the_value_as_text(value: str) -> None:
    page = render_html(_report(value))
    parsed = _Page()
    parsed.feed(page)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert {name for name, _ in parsed.attributes} <= {
        "lang",
        "charset",
        "name",
        "content",
        "class",
        "href",
        "id",
    }
    assert all(v.startswith("#") for name, v in parsed.attributes if name == "href")
    assert value in "".join(parsed.text)  # shown, exactly as written
    assert "<script" not in page and "<img" not in page and "<b>" not in page


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_keeps_its_tables_and_shows_no_markup(value: str) -> None:
    text = render_markdown(_report(value))
    rows = [line for line in text.splitlines() if line.startswith("|")]
    widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows if not row.startswith("|---")}
    headers = {row.count("|") for row in rows if row.startswith("|---")}
    assert widths <= headers  # no value added a column to any table
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert not re.search(r"(?<!\\)`", text)  # no code span can open
    assert not re.search(r"(?<!\\)\[", text)  # no link can open
    assert not any(re.search(r"(?<!\\)[*_~]", row) for row in rows)  # no emphasis inside a table


def test_a_page_without_values_from_outside_escapes_nothing_it_should_not() -> None:
    page = render_html(_report("med01.contoso.com"))
    assert "&lt;" not in page and "med01.contoso.com" in page
