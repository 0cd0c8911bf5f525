"""Data-driven parser tests: every tests/data/parsers/<kind>/<case>.json is one case.

A case holds ``input`` (see psobjects.py) and either ``expected`` (the result's JSON document, exactly)
or ``error`` (the exception class name) with an optional ``field`` the ParseError must name. Adding a
shape seen on a real server means adding a file, not code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocsps import results
from ocsps.jsonout import to_builtins
from ocsps.results import ParseError

from .psobjects import DATA, build, resolve

CASES = DATA / "parsers"


def _many(parse: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], list[Any]]:
    return lambda obj: [to_builtins(item) for item in parse(obj)]


def _one(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda obj: to_builtins(parse(obj))


PARSERS: dict[str, Callable[[Any], Any]] = {
    "activity_level": _one(results.parse_activity_level),
    "service_status": _one(results.parse_service_status),
    "event_record": _one(results.parse_event_record),
    "queue_privacy": _one(results.parse_queue_privacy),
    "wmi_setting": _one(results.parse_wmi_setting),
    "wmi_instance": _many(results.parse_wmi_instance),
    "lcscmd_outcome": _one(results.parse_lcscmd_outcome),
}

CASE_FILES = sorted(CASES.glob("*/*.json"))


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_every_kind_has_cases() -> None:
    kinds = {path.parent.name for path in CASE_FILES}
    assert kinds == set(PARSERS), "a parser without data cases, or a data folder without a parser"


@pytest.mark.parametrize("path", CASE_FILES, ids=_case_id)
def test_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    parse = PARSERS[path.parent.name]
    obj = build(case["input"])
    if "error" in case:
        with pytest.raises(ParseError) as info:
            parse(obj)
        assert type(info.value).__name__ == case["error"]
        if "field" in case:
            assert info.value.field == case["field"]
        assert info.value.kind, "a ParseError must name the object kind"
        return
    actual = parse(obj)
    assert actual == resolve(case["expected"])
    json.dumps(actual)  # --json output must serialise as-is
