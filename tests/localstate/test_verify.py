"""``ocsps verify``: change-board scripts and sealed plans, intact or modified, and what they target.

Also the script's own PowerShell 2.0 self-check: its algorithm is replayed here step by step, the way the
.NET calls in the template do it, so the sha256 the script computes on the server is the one ocsps wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from ocsps.powershell.changeboard import verify_script
from tests.cli_helpers import run_cli

MED01 = "med01.contoso.com"


@pytest.fixture
def script(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "stop.ps1"
    words = [
        "render",
        "stop",
        "-s",
        "RTCMEDSRV",
        "-p",
        "sfb2015",
        "--computer",
        MED01,
        "--change-id",
        "CHG-9",
    ]
    result = run_cli(capsys, *words, "-o", str(path))
    assert result.code == 0, result.err
    return path


@pytest.fixture
def plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "restart.json"
    result = run_cli(capsys, "plan", "restart", "-c", "MSFT_SIPRoutingSetting.DefaultPort", "-o", str(path))
    assert result.code == 0, result.err
    return path


def _crlf(path: Path) -> Path:
    out = path.with_name("crlf-" + path.name)
    out.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    return out


def _edited(path: Path, old: bytes, new: bytes) -> Path:
    out = path.with_name("edited-" + path.name)
    data = path.read_bytes()
    assert old in data
    out.write_bytes(data.replace(old, new, 1))
    return out


def test_crlf_script_verifies_and_says_so(script: Path) -> None:
    text = _crlf(script).read_bytes().decode("utf-8-sig")
    result = verify_script(text)
    assert result.ok, result.reason
    assert result.line_endings == "CRLF" and "CRLF" in result.reason


def test_crlf_script_with_an_edit_is_still_refused(script: Path) -> None:
    edited = _edited(_crlf(script), b"'RTCMEDSRV'", b"'RTCSRV'")
    assert not verify_script(edited.read_bytes().decode("utf-8-sig")).ok


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (lambda s, p: s, 0, ["intact", "target: med01.contoso.com", "change: CHG-9"]),
        (lambda s, p: _crlf(s), 0, ["intact", "CRLF"]),
        (lambda s, p: _edited(s, b"'RTCMEDSRV'", b"'RTCSRV'"), 1, ["MODIFIED", "not to be trusted"]),
        (lambda s, p: p, 0, ["plan intact", "product: ocs2007r2"]),
        (lambda s, p: _crlf(p), 1, ["plan MODIFIED"]),
        (lambda s, p: _edited(p, b'"ocs2007r2"', b'"ocs2007"'), 1, ["plan MODIFIED", "sha256 mismatch"]),
        (lambda s, p: _edited(s, b"# Script sha256: ", b"# Script hash: "), 2, ["not an ocsps"]),
        (lambda s, p: _write(p, b'{"a": 1}'), 2, ["not an ocsps"]),
        (lambda s, p: _write(p, b"\xff\xfe binary"), 2, ["not an ocsps"]),
    ],
    ids=[
        "script",
        "script-crlf",
        "script-edited",
        "plan",
        "plan-crlf",
        "plan-edited",
        "no-sha",
        "json",
        "binary",
    ],
)
def test_verify_exit_codes_and_targets(
    capsys: pytest.CaptureFixture[str], script: Path, plan: Path, make: object, code: int, words: list[str]
) -> None:
    target = make(script, plan)  # type: ignore[operator]
    result = run_cli(capsys, "verify", str(target))
    assert result.code == code, result.out + result.err
    for word in words:
        assert word in result.out + result.err
    as_json = run_cli(capsys, "verify", str(target), "--json")
    assert as_json.code == code
    if code != 2:
        doc = as_json.json()
        assert doc["intact"] is (code == 0) and doc["exit_code"] == code


def _write(near: Path, data: bytes) -> Path:
    out = near.with_name("other.bin")
    out.write_bytes(data)
    return out


def test_verify_refuses_special_files(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "verify", "/dev/zero")
    assert result.code == 2 and "not a regular file" in result.err


def _powershell_self_check(data: bytes) -> bool:
    """What the script header does, call for call, on PowerShell 2.0's .NET.

    [IO.File]::ReadAllText(path, UTF8) drops a BOM; .Replace("`r`n", "`n"); Regex('(?m)^# Script sha256:
    ([0-9a-f]{64})$') Match then Replace(text, '# Script sha256: -', 1); SHA256 over UTF8.GetBytes; bytes as
    'x2' joined; compared with the matched group.
    """
    text = data.decode("utf-8-sig").replace("\r\n", "\n")
    line = re.compile(r"^# Script sha256: ([0-9a-f]{64})$", re.MULTILINE)
    match = line.search(text)
    blank = line.sub("# Script sha256: -", text, count=1)
    actual = "".join(f"{b:02x}" for b in hashlib.sha256(blank.encode("utf-8")).digest())
    return match is not None and match.group(1) == actual


def test_the_script_checks_itself_with_powershell_2_calls(script: Path) -> None:
    text = script.read_bytes().decode("utf-8-sig")
    assert "[System.Security.Cryptography.SHA256]::Create()" in text
    assert not re.search(r"^[^#]*Get-FileHash", text, re.MULTILINE)  # named in a comment only
    assert "$MyInvocation.MyCommand.Path" in text and "exit 2" in text
    pattern = re.search(r"Regex\('(.*?)'\)", text)
    assert pattern is not None and pattern.group(1) == "(?m)^# Script sha256: ([0-9a-f]{64})$"
    assert _powershell_self_check(script.read_bytes())
    assert _powershell_self_check(_crlf(script).read_bytes())
    assert not _powershell_self_check(_edited(script, b"'RTCMEDSRV'", b"'RTCSRV'").read_bytes())
    check = text.index("$ocspsSelf = $MyInvocation")
    assert check < text.index("Start-Transcript") < text.index("Stop-CsWindowsService")


def test_verify_json_names_the_plan_kind(capsys: pytest.CaptureFixture[str], plan: Path) -> None:
    result = run_cli(capsys, "verify", str(plan), "--json")
    doc = json.loads(result.out)
    assert doc["type"] == "plan" and doc["kind"] == "restart" and doc["targets"]["product"] == "ocs2007r2"
