"""``build_report`` against the case folders (``cases/<name>/``): audit lines and records in, report out."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from ocsps.report import render_markdown
from tests.conftest import ROOT
from tests.report.cases import CASES, build_case, case_names

SCHEMA = json.loads((ROOT / "docs" / "schemas" / "report.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", case_names())
def test_case(name: str) -> None:
    report = build_case(name)
    expected = json.loads((CASES / name / "expected.json").read_text(encoding="utf-8"))
    assert report.to_json() == expected
    Draft202012Validator(SCHEMA).validate(expected)
    assert render_markdown(report) == (CASES / name / "expected.md").read_text(encoding="utf-8")


def test_there_are_cases() -> None:
    assert len(case_names()) >= 7
