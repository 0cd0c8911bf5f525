"""The audit log survives damage: a cut line does not swallow the next record, and ``audit show`` goes on."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from ocsps import audit
from tests.cli_helpers import run_cli


def _record(path: Path, host: str = "fe01.contoso.com") -> bool:
    return audit.record(
        host=host, action="stop", parameters={"Name": "RTCSRV"}, outcome="ok", duration=1.0, path=path
    )


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Path:
    audit._warned.clear()
    return Path(os.environ["OCSPS_AUDIT_LOG"])


def test_a_cut_line_does_not_swallow_the_next_record(log: Path, caplog: pytest.LogCaptureFixture) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text('{"time": "2026-01-01T00:00:00", "host": "fe01.con', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="ocsps"):
        assert _record(log, "fe02.contoso.com")
        assert _record(log, "fe03.contoso.com")
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["host"] for line in lines[1:]] == ["fe02.contoso.com", "fe03.contoso.com"]
    warnings = [r for r in caplog.records if "middle of a line" in r.getMessage()]
    assert len(warnings) == 1


def test_show_flags_corrupt_lines_and_goes_on(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    _record(log, "fe01.contoso.com")
    with log.open("ab") as handle:
        handle.write(b'{"host": "cut sh\n')
        handle.write(b'{"host": "bad \xff byte"}\n')
        handle.write(b"[1, 2]\n")
    _record(log, "fe02.contoso.com")
    result = run_cli(capsys, "audit", "show", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert [e.get("host") for e in doc] == ["fe01.contoso.com", None, None, None, "fe02.contoso.com"]
    assert [bool(e.get("corrupt")) for e in doc] == [False, True, True, True, False]
    assert "not UTF-8" in doc[2]["corrupt"]
    human = run_cli(capsys, "audit", "show")
    assert human.code == 0, human.err
    assert human.out.count("CORRUPT LINE") == 3
    assert "fe01.contoso.com" in human.out and "fe02.contoso.com" in human.out
    assert "? ? ?" not in human.out and "3 of the last 5 lines" in human.err


def test_show_of_a_directory_or_fifo_is_one_clear_error(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path))
    result = run_cli(capsys, "audit", "show")
    assert result.code == 2 and result.err.startswith("ocsps: error: cannot read the audit log"), result.err
    assert "directory" in result.err
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        monkeypatch.setenv("OCSPS_AUDIT_LOG", str(fifo))
        result = run_cli(capsys, "audit", "show")
        assert result.code == 2 and "not a regular file" in result.err


def test_show_reads_only_the_end_of_a_long_log(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as handle:
        handle.truncate(audit.TAIL_LIMIT * 2)  # sparse zeros: one long corrupt stretch
    with log.open("ab") as handle:
        handle.write(b"\n")
    _record(log, "fe09.contoso.com")
    result = run_cli(capsys, "audit", "show", "-n", "1", "--json")
    assert result.code == 0, result.err
    assert [e["host"] for e in result.json()] == ["fe09.contoso.com"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_audit_log_and_its_folder_are_private(log: Path) -> None:
    target = log.parent / "new" / "audit.jsonl"
    assert _record(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
