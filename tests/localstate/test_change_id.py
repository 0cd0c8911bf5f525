"""A change ticket id rides on every audit line written under it, and a malformed one is refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps import audit
from tests.cli_helpers import run_cli


def test_records_inside_a_change_carry_its_id_and_only_those(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with audit.change("CHG-1042"):
        audit.require_writable("stop RTCMEDSRV", ["med01.contoso.com"], path=log)
        audit.record(
            host="med01.contoso.com", action="stop", parameters={}, outcome="ok", duration=1, path=log
        )
    audit.require_writable("stop RTCMEDSRV", ["med01.contoso.com"], path=log)
    first, second, outside = (json.loads(line) for line in log.read_text(encoding="utf-8").splitlines())
    assert first["change_id"] == second["change_id"] == "CHG-1042"
    assert "change_id" not in outside


@pytest.mark.parametrize("value", ["CHG 1042", "-x", "../etc", "a" * 65, "CHG;rm", "$(x)", "<b>"])
def test_a_malformed_change_id_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="change id"), audit.change(value):
        pass


def test_the_cli_refuses_a_malformed_change_id_before_connecting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    result = run_cli(
        capsys,
        "patch",
        "server",
        "--lab",
        "--host",
        "med01.contoso.com",
        "--installer",
        "C:\\u.exe",
        "--change-id",
        "CHG 1042",
    )
    assert result.code == 2 and "--change-id" in result.err and len(result.err.strip().splitlines()) == 1
    assert not log.exists()
