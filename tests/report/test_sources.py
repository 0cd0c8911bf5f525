"""What the report reads: the whole audit log, and the records beside it recognised by their format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps import audit
from ocsps.errors import UsageError
from ocsps.report.sources import PATCH_RECORD_FORMAT, ROLL_STATE_FORMAT, gather
from tests.cli_helpers import run_cli
from tests.report.cases import CASES


def test_the_formats_recognised_are_the_writers() -> None:
    from ocsps.patch.runner import FORMAT as PATCH
    from ocsps.pool.state import FORMAT as ROLL

    assert PATCH.startswith(PATCH_RECORD_FORMAT) and ROLL.startswith(ROLL_STATE_FORMAT)


def test_records_are_found_by_format_and_a_broken_one_is_named(tmp_path: Path) -> None:
    spec = json.loads((CASES / "patch-verified" / "input.json").read_text(encoding="utf-8"))
    (tmp_path / "any-name.json").write_text(json.dumps(spec["patch_records"][0]), encoding="utf-8")
    (tmp_path / "roll.json").write_text(
        json.dumps({"format": "ocsps-pool-roll/1", "pool": "p"}), encoding="utf-8"
    )
    (tmp_path / "cut.json").write_text('{"format": "ocsps-pool-roll/1", "po', encoding="utf-8")
    (tmp_path / "other.json").write_text('{"format": "something else"}', encoding="utf-8")
    (tmp_path / "folder.json").mkdir()
    sources = gather(tmp_path / "audit.jsonl", tmp_path)
    assert [r["host"] for r in sources.patch_records] == ["med01.contoso.com"]
    assert [r["pool"] for r in sources.roll_states] == ["p"]
    cut, folder = sources.notes
    assert cut == "cut.json could not be read (not JSON) and was skipped"
    assert folder.startswith("folder.json could not be read (") and folder.endswith(") and was skipped")


def test_the_whole_log_is_read_and_damaged_lines_are_counted(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with audit.change("CHG-1"):
        for n in range(3):
            audit.record(host=f"h{n}", action="stop", parameters={}, outcome="ok", duration=0, path=log)
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"cut short\n\xff\n')
    audit.record(host="other", action="stop", parameters={}, outcome="ok", duration=0, path=log)
    sources = gather(log, tmp_path, change_id="CHG-1")
    assert [line["host"] for line in sources.audit_lines] == ["h0", "h1", "h2"]
    assert sources.notes == ["2 line(s) of the audit log could not be read and were skipped"]
    assert len(gather(log, tmp_path).audit_lines) == 4


def test_a_log_that_is_not_a_file_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match="it is a directory"):
        gather(tmp_path, tmp_path)
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path))
    result = run_cli(capsys, "report", "--change-id", "CHG-1")
    assert result.code == 2 and "cannot read the audit log" in result.err


def test_no_log_yet_means_nothing_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "report", "--change-id", "CHG-1", "--audit-log", str(tmp_path / "none.jsonl"))
    assert (
        result.code == 1
        and result.err.strip() == f"nothing in {tmp_path / 'none.jsonl'} matches change CHG-1"
    )
