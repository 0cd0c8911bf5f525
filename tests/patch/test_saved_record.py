"""Patch records written by earlier versions are written again key for key, byte for byte.

``tests/data/patch/saved`` holds a record written by ``ocsps patch server`` against the lab, and
``tests/data/pool/saved`` a pool roll whose ``work`` holds each member's record, both before the records
moved to the shared encoder. A saved record does not keep its final reading when it is loaded (it is
read again on resume), so the test puts back the reading the file shows before writing it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocsps.patch import Component, PatchRecord, PatchState, ServiceInfo, load_record
from ocsps.patch.runner import record_document
from tests.conftest import DATA

RECORDS = sorted((DATA / "patch" / "saved").glob("*.json"))
ROLL = DATA / "pool" / "saved" / "roll-lync2010-patch.json"


def _final(doc: dict[str, Any]) -> PatchState:
    return PatchState(
        computer=doc["computer"],
        boot_time=doc["boot_time"],
        free_bytes=doc["free_bytes"],
        installer_found=doc["installer_found"],
        reboot_flags=dict.fromkeys(doc["pending_reboot"], True),
        services=tuple(ServiceInfo(**s) for s in doc["services"]),
        components=tuple(Component(c["component"], c["version"]) for c in doc["components"]),
    )


def _again(saved: dict[str, Any]) -> dict[str, Any]:
    record = PatchRecord.from_json(saved)
    if saved["final"] is not None:
        record.final = _final(saved["final"])
    doc = record_document(record)
    doc["generated_by"] = saved["generated_by"]
    return doc


@pytest.mark.parametrize("path", RECORDS, ids=[p.stem for p in RECORDS])
def test_a_saved_record_is_written_again_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    saved = json.loads(text)
    assert saved["final"] is not None and saved["install"] is not None, "the sample covers every part"
    assert json.dumps(_again(saved), indent=2, ensure_ascii=False) + "\n" == text
    assert load_record(path).plan == PatchRecord.from_json(saved).plan


def test_the_records_inside_a_pool_roll_are_written_again_key_for_key() -> None:
    work = json.loads(ROLL.read_text(encoding="utf-8"))["work"]
    assert work, "the sample roll patched its members"
    for server, saved in work.items():
        again = _again(saved)
        assert json.dumps(again) == json.dumps(saved), server
        assert saved["plan"]["in_pool"] is True
