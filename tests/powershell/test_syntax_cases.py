"""Data-driven cases: each ``tests/data/ps_syntax/<case>.ps1`` with its ``<case>.expected.json``.

The JSON holds the target ``ps_version``, the ``findings`` ``newer_constructs`` must report (rule, line,
min_version; nothing else), optionally the ``commands`` that ``commands`` must list (only the keys given
are compared), and ``parses``: whether ``parse`` finds nothing beyond known grammar gaps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocsps.powershell import syntax

CASES_DIR = Path(__file__).resolve().parent.parent / "data" / "ps_syntax"
CASES = sorted(path.stem for path in CASES_DIR.glob("*.ps1"))


def _load(case: str) -> tuple[str, dict[str, Any]]:
    script = (CASES_DIR / f"{case}.ps1").read_text(encoding="utf-8")
    expected = json.loads((CASES_DIR / f"{case}.expected.json").read_text(encoding="utf-8"))
    return script, expected


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 15
    assert sum(1 for case in CASES if not _load(case)[1]["findings"]) >= 4


@pytest.mark.parametrize("case", CASES)
def test_case(case: str) -> None:
    script, expected = _load(case)
    found = [
        {"rule": f.rule, "min_version": f.min_version, "line": f.line}
        for f in syntax.newer_constructs(script, expected["ps_version"])
    ]
    assert found == expected["findings"]

    unexplained = [f for f in syntax.parse(script) if not f.known_gap]
    assert (not unexplained) == expected["parses"], unexplained

    if "commands" in expected:
        calls = [
            {
                "name": c.name,
                "parameters": list(c.parameters),
                "line": c.line,
                "native": c.native,
                "invocation": c.invocation,
                "arguments": list(c.arguments),
                "splats": list(c.splats),
            }
            for c in syntax.commands(script)
        ]
        assert len(calls) == len(expected["commands"]), calls
        for call, wanted in zip(calls, expected["commands"], strict=True):
            assert {key: call[key] for key in wanted} == wanted
