"""State files written by earlier versions load, keep their seal, and are written again byte for byte.

The samples in ``tests/data/pool/saved`` were written by ``ocsps pool maintain`` and ``ocsps patch pool``
against the lab before the state document moved to the shared encoder; only ``generated_by`` (the
writer's version) may differ when the same state is written today.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps.errors import UsageError
from ocsps.pool import RollState, load_state
from ocsps.pool.plan import Readiness
from ocsps.pool.state import save_state, state_document
from tests.conftest import DATA

SAVED = sorted((DATA / "pool" / "saved").glob("*.json"))


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
def test_a_saved_state_is_written_again_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    saved = json.loads(text)
    state = RollState.from_json(saved, source=path.name)  # the plan's seal is checked here
    doc = state_document(state)
    assert doc["plan_sha256"] == saved["plan_sha256"]
    doc["generated_by"] = saved["generated_by"]
    assert json.dumps(doc, indent=2, ensure_ascii=False) + "\n" == text


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
def test_a_saved_state_survives_save_and_load(path: Path, tmp_path: Path) -> None:
    state = load_state(path)
    copy = tmp_path / "state.json"
    save_state(copy, state)
    again = load_state(copy)
    assert again.plan == state.plan and again.options == state.options
    assert again.servers == state.servers and again.work == state.work and again.request == state.request


def test_the_samples_cover_both_plan_shapes() -> None:
    """One plan read through the readiness cmdlet (no ``readiness`` key), one through the members."""
    plans = [json.loads(p.read_text(encoding="utf-8"))["plan"] for p in SAVED]
    assert any("readiness" not in plan for plan in plans)
    assert any(plan.get("readiness") == Readiness.MEMBERS.value for plan in plans)
    assert any(json.loads(p.read_text(encoding="utf-8")).get("work") for p in SAVED)


def test_a_changed_plan_no_longer_matches_its_seal(tmp_path: Path) -> None:
    saved = json.loads(SAVED[0].read_text(encoding="utf-8"))
    saved["plan"]["members"] = list(reversed(saved["plan"]["members"]))
    with pytest.raises(UsageError, match="sha256 mismatch"):
        RollState.from_json(saved, source="changed.json")
