"""``verify_plan``: a sealed plan file is intact or modified, and what it says it is for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ocsps.deactivation.plan import PLAN_KIND, plan_deactivation, plan_document
from ocsps.plans.sealed import save_plan, verify_plan

OCS01 = "ocs01.contoso.com"
ROLES = ["front-end", "archiving-cdr"]


@pytest.fixture
def sealed(tmp_path: Path) -> str:
    path = tmp_path / "plan.json"
    save_plan(path, PLAN_KIND, plan_document(plan_deactivation(OCS01, product="ocs2007r2", roles=ROLES)))
    return path.read_text(encoding="utf-8")


EDITS: list[tuple[str, Callable[[str], str], bool, str]] = [
    # (case, edit of the written text, intact, words of the reason)
    ("as-written", lambda t: t, True, "byte for byte what ocsps wrote"),
    ("computer-changed", lambda t: t.replace("ocs01", "ocs02"), False, "sha256 mismatch"),
    ("white-space", lambda t: t.replace('  "ocsps_plan"', ' "ocsps_plan"'), False, "not byte for byte"),
    ("future-format", lambda t: t.replace('"format": 1', '"format": 2'), False, "plan format 2"),
]


@pytest.mark.parametrize(("case", "edit", "intact", "reason"), EDITS, ids=[e[0] for e in EDITS])
def test_a_sealed_plan_is_judged_and_says_what_it_targets(
    sealed: str, case: str, edit: Callable[[str], str], intact: bool, reason: str
) -> None:
    result = verify_plan(edit(sealed), "plan.json")
    assert result.is_ocsps and result.ok is intact and reason in result.reason
    assert result.kind == PLAN_KIND and result.generated_by.startswith("ocsps ") and len(result.sha256) == 64
    computer = "ocs02.contoso.com" if case == "computer-changed" else OCS01
    assert result.targets == {"computer": computer, "product": "ocs2007r2", "roles": ROLES}
    assert result.steps == len(ROLES) + 1


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[1]", '{"ocsps_plan": 3, "plan": {}}', '{"ocsps_plan": "restart"}', "[" * 100000],
    ids=["empty", "text", "list", "kind-not-text", "no-plan", "deep"],
)
def test_anything_else_is_not_an_ocsps_plan(text: str) -> None:
    result = verify_plan(text, "x.json")
    assert not result.is_ocsps and not result.ok and result.targets == {} and result.steps is None
