"""``ocsps render --param``: cases in tests/data/render_params/cases.json (command words, error or text)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli_helpers import run_cli
from tests.conftest import DATA

CASES: list[dict[str, Any]] = json.loads((DATA / "render_params" / "cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_render_param_case(capsys: pytest.CaptureFixture[str], case: dict[str, Any]) -> None:
    result = run_cli(capsys, "render", *case["args"])
    if "error" in case:
        assert result.code == 2, (result.out, result.err)
        assert case["error"] in result.err and result.out == ""
        return
    assert result.code == 0, result.err
    for text in case["contains"]:
        assert text in result.out
