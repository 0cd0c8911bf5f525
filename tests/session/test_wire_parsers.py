"""Every parser case that describes an object, sent over the real PSRP wire and parsed on arrival.

tests/results builds pypsrp objects by hand; here the lab's server side serializes the same case with
psrpcore, pypsrp deserializes it from real PSRP messages, and the parser must give the same answer. This
is where a parser meets the exact types the wire produces (Int32 vs Int64, byte arrays, nested objects,
enums with their ToString). Each case also travels in the other property shape (PSCustomObject note
properties vs .NET adapted properties), because the same field arrives either way depending on whether
a template or a cmdlet produced it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsps.remote.session import ServerSession
from ocsps.results import ParseError
from tests.results.psobjects import resolve
from tests.results.test_parser_cases import CASE_FILES, PARSERS
from tests.session.wire import WireLab, probe

pytestmark = pytest.mark.timeout(120)

OBJECT_CASES = [
    path
    for path in CASE_FILES
    if json.loads(path.read_text(encoding="utf-8"))["input"].get("shape") in ("adapted", "extended")
]


def _mirrored(spec: dict[str, Any]) -> dict[str, Any]:
    """The same properties in the other shape."""
    if spec["shape"] == "adapted":
        properties = {**spec.get("properties", {}), **spec.get("extended_properties", {})}
        return {"shape": "extended", "properties": properties, "to_string": spec.get("to_string")}
    return {
        "shape": "adapted",
        "types": ["System.Management.Automation.PSObject", "System.Object"],
        "properties": spec.get("properties", {}),
        "to_string": spec.get("to_string"),
    }


@pytest.fixture(scope="module")
def session() -> Iterator[ServerSession]:
    lab = WireLab()
    with lab.active(), lab.session() as opened:
        yield opened


def _over_the_wire(session: ServerSession, spec: dict[str, Any]) -> Any:
    result = session.run(probe("emit", session.product, params={"Case": json.dumps(spec)})).raise_for_errors()
    (obj,) = result.output
    return obj


def _check(path: Path, session: ServerSession, spec: dict[str, Any]) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    parse = PARSERS[path.parent.name]
    obj = _over_the_wire(session, spec)
    if "error" in case:
        with pytest.raises(ParseError) as caught:
            parse(obj)
        assert type(caught.value).__name__ == case["error"]
        if "field" in case:
            assert caught.value.field == case["field"]
    else:
        assert parse(obj) == resolve(case["expected"])


@pytest.mark.parametrize("path", OBJECT_CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case_over_the_wire(session: ServerSession, path: Path) -> None:
    _check(path, session, json.loads(path.read_text(encoding="utf-8"))["input"])


@pytest.mark.parametrize("path", OBJECT_CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case_in_the_other_shape(session: ServerSession, path: Path) -> None:
    _check(path, session, _mirrored(json.loads(path.read_text(encoding="utf-8"))["input"]))


def test_every_object_parser_travels_in_both_shapes() -> None:
    kinds = {path.parent.name for path in OBJECT_CASES}
    assert kinds == set(PARSERS) - {"activity_level"}, "activity_level parses text, not an object"
