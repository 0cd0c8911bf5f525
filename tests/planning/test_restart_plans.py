"""Restart planning from a folder of cases: settings changed in, services and order out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocsps.errors import UsageError
from ocsps.plans.restart import plan_restart
from ocsps.plans.restart_document import plan_document
from tests.conftest import DATA

CASES = sorted((DATA / "restart_plans").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_restart_plan_case(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text())
    kwargs = {
        "product": case.get("product", "ocs2007r2"),
        "certificate_renewed_same_subject": case.get("certificate_renewed_same_subject", False),
    }
    if "error" in case:
        with pytest.raises(UsageError, match=case["error"]):
            plan_restart(case["changed"], **kwargs)
        return
    plan = plan_restart(case["changed"], **kwargs)
    doc = plan_document(plan)
    got = [
        {"key": s["key"], "action": s["action"], "rules": [r["id"] for r in s["rules"]]}
        for s in doc["services"]
    ]
    expected = case["expected"]
    assert sorted(got, key=lambda s: s["key"]) == sorted(expected["services"], key=lambda s: s["key"])
    assert [n["setting"] for n in doc["not_needed"]] == expected.get("not_needed", [])
    if "steps" in expected:
        assert [f"{s['do']} {s['key']}" for s in doc["steps"]] == expected["steps"]
    if "dependents" in expected:
        assert [d["key"] for d in doc["dependents"]] == expected["dependents"]
        for step in doc["steps"]:
            assert bool(step.get("why")) == (step["key"] in expected["dependents"]), step
    for entry in doc["services"]:
        assert entry["display_name"] and entry["rules"], entry
    if not doc["services"]:
        assert all(n["why"] for n in doc["not_needed"]), "an empty plan must say why"


def test_cases_cover_each_action_kind() -> None:
    actions = {
        s["action"] for p in CASES for s in json.loads(p.read_text()).get("expected", {}).get("services", [])
    }
    assert actions == {"restart", "stop", "stop-then-start", "stop-then-start-in-order"}
