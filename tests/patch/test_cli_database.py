"""``ocsps patch database``: read the configured databases, update only what is behind, read again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli
from tests.conftest import DATA

TOPOLOGY = DATA / "patch" / "fe-databases.toml"


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    return path


def _args(topology: Path, *extra: str) -> list[str]:
    return [
        "patch",
        "database",
        "--lab",
        "--lab-topology",
        str(topology),
        "--host",
        "se01.contoso.com",
        "--sql-server",
        "sql01.contoso.com",
        "--json",
        *extra,
    ]


def _actions(audit_log: Path) -> list[str]:
    if not audit_log.exists():
        return []
    return [json.loads(line)["action"] for line in audit_log.read_text(encoding="utf-8").splitlines()]


def test_check_only_reports_what_is_behind_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    result = run_cli(capsys, *_args(TOPOLOGY, "--check-only"))
    assert result.code == 1, result.err
    doc = result.json()
    assert doc["status"] == "needs-update" and doc["after"] == []
    assert [d["database"] for d in doc["before"] if not d["current"]] == ["rtcxds", "rtcab"]
    assert "nothing was changed" in doc["statement"]
    assert _actions(audit_log) == ["patch database sql01.contoso.com (check only)", "patch-database"]
    sent = json.loads(audit_log.read_text(encoding="utf-8").splitlines()[1])
    assert sent["parameters"] == {"SqlServerFqdn": "sql01.contoso.com"}  # without -Update


def test_update_runs_only_when_behind_and_is_read_again(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    result = run_cli(capsys, *_args(TOPOLOGY, "--change-id", "CHG-1042"))
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["status"] == "updated" and doc["ok"] is True
    assert {d["database"]: d["installed"] for d in doc["after"]} == {
        "rtcxds": "10.13.3",
        "rtcab": "62.42.16",
        "rtc": "125.6.1",
    }
    assert _actions(audit_log) == ["patch database sql01.contoso.com", "patch-database"]
    assert {json.loads(line)["change_id"] for line in audit_log.read_text(encoding="utf-8").splitlines()} == {
        "CHG-1042"
    }


def test_current_databases_are_not_updated(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path
) -> None:
    current = tmp_path / "current.toml"
    current.write_text(
        TOPOLOGY.read_text(encoding="utf-8").replace(
            'database_expected = { rtcxds = "10.13.3", rtcab = "62.42.16" }', ""
        ),
        encoding="utf-8",
    )
    result = run_cli(capsys, *_args(current))
    assert result.code == 0, result.err
    assert result.json()["status"] == "current" and result.json()["after"] == []


def test_sql_permission_failure_is_stated_and_nothing_is_claimed(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path
) -> None:
    refused = tmp_path / "refused.toml"
    refused.write_text(TOPOLOGY.read_text(encoding="utf-8") + "sql_permission = false\n", encoding="utf-8")
    result = run_cli(capsys, *_args(refused))
    assert result.code == 1
    assert "does not have permission" in result.err and "nothing is verified" in result.err
    assert result.out == ""


def test_lync_2010_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    result = run_cli(
        capsys,
        "patch",
        "database",
        "--lab",
        "--host",
        "med10.contoso.com",
        "--sql-server",
        "sql01.contoso.com",
    )
    assert result.code == 2 and "has no Test-CsDatabase" in result.err
    assert _actions(audit_log) == []


def test_what_if_prints_the_script_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    result = run_cli(capsys, *_args(TOPOLOGY, "--what-if"))
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["parameters"] == {"SqlServerFqdn": "sql01.contoso.com", "Update": True}
    assert "Install-CsDatabase -ConfiguredDatabases -SqlServerFqdn $SqlServerFqdn -Update" in doc["script"]
    assert "sql01.contoso.com" not in doc["script"]
    assert _actions(audit_log) == []
