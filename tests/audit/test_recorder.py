"""``audit.recorder``: the audit callback every caller (CLI, Ansible modules, library) hands its sessions.

The record's fields are what ``ocsps report`` reads; these cases pin them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocsps import audit


@dataclass(frozen=True)
class FakeRendered:
    """The three things a record takes from a rendered script."""

    bound_parameters: Mapping[str, object]
    action: str = "pool-step"
    body_sha256: str = "ab" * 32


def _entries() -> list[dict[str, Any]]:
    path = Path(os.environ["OCSPS_AUDIT_LOG"])
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


CASES: list[tuple[dict[str, Any], dict[str, object], dict[str, object]]] = [
    # (recorder keywords, bound parameters, expected fields of the record)
    ({}, {"Name": "RTCSRV"}, {"parameters": {"Name": "RTCSRV"}, "detail": ""}),
    (
        {"summarized": ("StepScript",)},
        {"StepScript": ["Write-Host 1", "Write-Host 2"], "Computer": "fe01"},
        {"parameters": {"Computer": "fe01", "StepScriptLines": 2}},
    ),
    (
        {"detail": "TLS certificate validation is OFF"},
        {},
        {"detail": "TLS certificate validation is OFF", "parameters": {}},
    ),
    ({"change_id": "CHG-1042"}, {}, {"change_id": "CHG-1042"}),
]


@pytest.mark.parametrize(("keywords", "bound", "expected"), CASES)
def test_record_fields(
    keywords: dict[str, Any], bound: dict[str, object], expected: dict[str, object]
) -> None:
    record = audit.recorder("fe01.contoso.com", **keywords)
    record(FakeRendered(bound), None, "ok", 1.23456)
    (entry,) = _entries()
    assert entry["host"] == "fe01.contoso.com" and entry["action"] == "pool-step"
    assert entry["outcome"] == "ok" and entry["duration_seconds"] == 1.235
    assert entry["body_sha256"] == "ab" * 32
    for key, value in expected.items():
        assert entry[key] == value, key
    if "change_id" not in keywords:
        assert "change_id" not in entry


def test_without_a_change_id_the_surrounding_ticket_stays() -> None:
    record = audit.recorder("fe01.contoso.com")
    with audit.change("CHG-9"):
        record(FakeRendered({}), None, "ok", 0.0)
    (entry,) = _entries()
    assert entry["change_id"] == "CHG-9"


def test_a_bad_change_id_is_refused_when_the_recorder_is_made() -> None:
    with pytest.raises(ValueError, match="a change id takes"):
        audit.recorder("fe01.contoso.com", change_id="../etc")
