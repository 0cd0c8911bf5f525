"""A change-board .ps1 or a plan file changed by one byte, anywhere, is detected and refused.

Bytes of files written by the CLI are changed in several ways (a flipped low bit, a flipped case bit, a
white-space substitute, a deletion; every byte of a short script, every second byte of a plan, every
seventh of a long script); each variant must fail ``verify_script`` (scripts) or be
refused by ``load_plan`` (plans) and, for a sample, by ``ocsps restart --plan`` with exit 2 and nothing
sent. Untouched files pass, so the checks are not refusing everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsps.errors import UsageError
from ocsps.plans.sealed import load_plan, parse_plan
from ocsps.powershell.changeboard import verify_script
from tests.cli_helpers import run_cli
from tests.reliability import figures
from tests.reliability.labkit import ArmedLabs

SUBSTITUTES = (b" ", b"\t", b"\n", b"\r")


def one_byte_changes(data: bytes, *, every: int = 1) -> Iterator[tuple[str, bytes]]:
    """One-byte changes of ``data``: (label, changed bytes), at every ``every``-th position.

    Each position gets a flipped low bit and a deletion, and, in turn, a flipped case bit or one of the
    white-space bytes that JSON and PowerShell skip over.
    """
    for index in range(0, len(data), every):
        byte = data[index]
        head, tail = data[:index], data[index + 1 :]
        turn = [byte ^ 0x20, *(s[0] for s in SUBSTITUTES)][(index // every) % (1 + len(SUBSTITUTES))]
        for label, new in (("bit0", byte ^ 0x01), ("other", turn)):
            if new != byte:
                yield f"{label}@{index}", head + bytes([new]) + tail
        yield f"del@{index}", head + tail


def _script_refused(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return True  # not UTF-8 any more: no reader takes it for the script that was approved
    return not verify_script(text).ok


SCRIPTS = [
    # (CLI words, every n-th byte): the long multi-step script is sampled to keep the run short.
    (
        [
            "render",
            "drain",
            "-s",
            "RTCMEDSRV",
            "-p",
            "sfb2015",
            "--change-id",
            "CHG-1",
            "--reason",
            "patch ü",
        ],
        1,
    ),
    (["plan", "restart", "-c", "MSFT_SIPAVMCUSetting", "-c", "MSFT_SIPRoutingSetting", "-p", "ocs2007r2"], 7),
]


@pytest.mark.parametrize(("words", "every"), SCRIPTS, ids=["single-step", "restart-plan-steps"])
def test_every_one_byte_change_to_a_script_is_detected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, words: list[str], every: int
) -> None:
    path = tmp_path / "change.ps1"
    flag = "-o" if words[0] == "render" else "--emit-script"
    result = run_cli(capsys, *words, flag, str(path))
    assert result.code == 0, result.err
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and verify_script(data.decode("utf-8-sig")).ok
    changes = list(one_byte_changes(data, every=every))
    missed = [label for label, changed in changes if not _script_refused(changed)]
    cases = len(changes)
    figures.add("integrity", "script_cases", cases)
    figures.add("integrity", "script_detected", cases - len(missed))
    figures.add("integrity", "undetected", len(missed))
    assert missed == []


def test_a_script_saved_with_crlf_verifies_and_every_edit_of_it_is_still_detected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Windows line endings are not an edit; any one-byte change of the converted file still is."""
    path = tmp_path / "change.ps1"
    result = run_cli(
        capsys, "render", "stop", "-s", "RTCMEDSRV", "-p", "sfb2015", "--change-id", "CHG-2", "-o", str(path)
    )
    assert result.code == 0, result.err
    crlf = path.read_bytes().replace(b"\n", b"\r\n")
    verdict = verify_script(crlf.decode("utf-8-sig"))
    assert verdict.ok and verdict.line_endings == "CRLF", verdict.reason
    same = crlf.replace(b"\r\n", b"\n")
    # Dropping one CR of a CRLF pair leaves the content as it was (mixed line endings): not an edit.
    changes = [
        (label, c) for label, c in one_byte_changes(crlf, every=3) if c.replace(b"\r\n", b"\n") != same
    ]
    missed = [label for label, changed in changes if not _script_refused(changed)]
    figures.add("integrity", "script_cases", len(changes))
    figures.add("integrity", "script_detected", len(changes) - len(missed))
    figures.add("integrity", "undetected", len(missed))
    assert missed == []


@pytest.fixture
def plan_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "restart-plan.json"
    result = run_cli(
        capsys,
        "plan",
        "restart",
        "-c",
        "MSFT_SIPAVMCUSetting",
        "-c",
        "MSFT_SIPRoutingSetting",
        "-p",
        "ocs2007r2",
        "-o",
        str(path),
    )
    assert result.code == 0, result.err
    assert load_plan(path, "restart")["product"] == "ocs2007r2"
    return path


def test_every_one_byte_change_to_a_plan_is_refused(plan_file: Path) -> None:
    data = plan_file.read_bytes()
    missed = []
    cases = 0
    for label, changed in one_byte_changes(data, every=2):
        cases += 1
        try:
            text = changed.decode("utf-8")
        except UnicodeDecodeError:
            continue  # load_plan refuses text that is not UTF-8 (checked below)
        try:
            parse_plan(text, "restart", source="plan")
        except UsageError:
            continue
        missed.append(label)
    figures.add("integrity", "plan_cases", cases)
    figures.add("integrity", "plan_refused", cases - len(missed))
    figures.add("integrity", "undetected", len(missed))
    assert missed == [], f"{len(missed)} one-byte edits accepted, e.g. {missed[:5]}"


def test_load_plan_refuses_bytes_that_are_not_utf8(plan_file: Path) -> None:
    data = plan_file.read_bytes()
    plan_file.write_bytes(data[:40] + b"\xff" + data[41:])
    with pytest.raises(UsageError):
        load_plan(plan_file, "restart")


def test_reapprove_accepts_a_reviewed_edit(plan_file: Path) -> None:
    plan_file.write_text(plan_file.read_text().replace('  "plan"', '\t"plan"'), encoding="utf-8")
    with pytest.raises(UsageError, match="changed after it was written"):
        load_plan(plan_file, "restart")
    assert load_plan(plan_file, "restart", reapprove=True)["product"] == "ocs2007r2"


def test_restart_plan_refuses_edited_plans_before_sending(
    capsys: pytest.CaptureFixture[str], armed_lab: ArmedLabs, plan_file: Path
) -> None:
    """The command that runs plans refuses a sample of edited plans with exit 2; no lab even starts."""
    data = plan_file.read_bytes()
    variants = list(one_byte_changes(data, every=len(data) // 5))
    edited = plan_file.with_name("edited.json")
    for label, changed in variants:
        edited.write_bytes(changed)
        result = run_cli(capsys, "restart", "--plan", str(edited), "--lab", "--json")
        assert result.code == 2, (label, result.out, result.err)
        assert result.out == "", "nothing on stdout: no host was worked on"
        figures.add("integrity", "cli_refused")
    assert armed_lab.started == [], "nothing was sent: the lab never started"
    control = run_cli(capsys, "restart", "--plan", str(plan_file), "--lab", "--what-if")
    assert control.code == 0, control.err
    assert len(armed_lab.started) == 1
