"""Rehearsals against the lab are marked in the audit log, so they never read as real changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps import audit
from tests.cli_helpers import run_cli


def _entries(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_lab_drain_is_marked_and_shown_as_a_rehearsal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    drained = run_cli(
        capsys, "drain", "-s", "RTCMEDSRV", "--lab", "--host", "med01.contoso.com", "--poll", "0.2s"
    )
    assert drained.code == 0, drained.err
    entries = _entries(log)
    assert entries and all(e.get("simulation") is True for e in entries)
    shown = run_cli(capsys, "audit", "show")
    lines = [line for line in shown.out.splitlines() if line.strip()]
    assert lines and all(line.startswith("[lab] ") for line in lines)


def test_a_record_outside_the_lab_carries_no_mark(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.require_writable("stop RTCMEDSRV", ["med01.contoso.com"], path=log)
    with audit.simulated():
        audit.require_writable("stop RTCMEDSRV", ["med01.contoso.com"], path=log)
    real, rehearsal = _entries(log)
    assert "simulation" not in real and rehearsal["simulation"] is True
