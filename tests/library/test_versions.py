"""Persisted documents carry a format; files written before the field existed are still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps.deactivation.run import JOURNAL_FORMAT, Journal
from ocsps.errors import UsageError
from ocsps.plans.sealed import PLAN_FORMAT, _digest, load_plan, parse_plan, save_plan

PLAN = {"product": "sfb2015", "steps": [{"do": "stop", "key": "RTCMEDSRV"}]}


def test_a_new_plan_file_has_a_format_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(path, "restart", PLAN)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == PLAN_FORMAT
    assert load_plan(path, "restart") == PLAN


def test_a_plan_file_from_before_the_format_field_still_reads() -> None:
    old = {"ocsps_plan": "restart", "generated_by": "ocsps 0.1.0", "plan": PLAN}
    old["sha256"] = _digest(old)
    text = json.dumps(old, indent=2, ensure_ascii=False) + "\n"
    assert parse_plan(text, "restart", source="old.json") == PLAN


@pytest.mark.parametrize("fmt", [2, "1", None])
def test_a_plan_of_another_format_is_refused(fmt: object) -> None:
    doc = {"ocsps_plan": "restart", "format": fmt, "generated_by": "ocsps 9", "plan": PLAN}
    doc["sha256"] = _digest(doc)
    with pytest.raises(UsageError, match="plan format"):
        parse_plan(json.dumps(doc, indent=2) + "\n", "restart", source="new.json")


def test_changing_the_format_breaks_the_seal(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(path, "restart", PLAN)
    doc = json.loads(path.read_text(encoding="utf-8"))
    del doc["format"]
    with pytest.raises(UsageError, match="sha256 mismatch"):
        parse_plan(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "restart", source="edited.json")


def test_journals_carry_a_format_and_old_ones_still_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    old = {
        "kind": "ocsps-deactivation-journal",
        "plan_sha256": "ab" * 32,
        "computer": "ocs01",
        "steps": {"1": {"state": "ok"}},
    }
    path.write_text(json.dumps(old), encoding="utf-8")
    journal = Journal.open(path, "ab" * 32, "ocs01")
    assert journal.succeeded(1) and journal.done_through == 1
    newer = dict(old, format=JOURNAL_FORMAT + 1)
    path.write_text(json.dumps(newer), encoding="utf-8")
    with pytest.raises(UsageError, match="cannot read the run journal"):
        Journal.open(path, "ab" * 32, "ocs01")
