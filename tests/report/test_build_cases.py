"""``build_report`` against the case folders (``cases/<name>/``): audit lines and records in, report out."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from jsonschema import Draft202012Validator

from ocsps.jsonout import to_builtins
from ocsps.report import render_html, render_markdown
from ocsps.report.document import ReportDocument
from tests.conftest import ROOT
from tests.report.cases import CASES, build_case, case_names

SCHEMA = json.loads((ROOT / "docs" / "schemas" / "report.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", case_names())
def test_case(name: str) -> None:
    report = build_case(name)
    text = (CASES / name / "expected.json").read_text(encoding="utf-8")
    expected = json.loads(text)
    document = to_builtins(ReportDocument.of(report))
    assert document == expected
    assert json.dumps(document, indent=2) + "\n" == text, "the keys keep their published order"
    Draft202012Validator(SCHEMA).validate(expected)
    assert render_markdown(report) == (CASES / name / "expected.md").read_text(encoding="utf-8")


def test_there_are_cases() -> None:
    assert len(case_names()) >= 7


class _Balance(HTMLParser):
    """Every element the page opens it closes, in order (the HTML parser itself forgives anything)."""

    VOID = frozenset({"meta", "br", "img", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.wrong: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.wrong.append(tag)


@pytest.mark.parametrize("name", case_names())
def test_the_html_page_is_well_formed(name: str) -> None:
    page = render_html(build_case(name))
    balance = _Balance()
    balance.feed(page)
    assert balance.wrong == [] and balance.open == []
    assert page.startswith("<!DOCTYPE html>")
