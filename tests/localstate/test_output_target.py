"""``-o`` writes regular files only, and ``-o -`` means standard output."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli

RENDER = ("render", "stop", "-s", "RTCMEDSRV", "-p", "sfb2015")


def test_dash_writes_the_script_to_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, *RENDER, "-o", "-")
    assert result.code == 0, result.err
    assert "Stop-CsWindowsService" in result.out
    assert not (tmp_path / "-").exists()
    assert "wrote" not in result.err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX special files")
def test_fifo_target_is_left_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.ps1"
    os.mkfifo(fifo)
    result = run_cli(capsys, *RENDER, "-o", str(fifo))
    assert result.code == 2
    assert "a FIFO" in result.err and "wrote" not in result.err
    assert stat.S_ISFIFO(fifo.stat().st_mode)


PLAN = ("plan", "restart", "--changed", "MSFT_SIPRoutingSetting.DefaultPort")


@pytest.mark.parametrize("args", [RENDER, PLAN])
def test_dev_null_is_not_replaced(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    before = os.stat("/dev/null")
    result = run_cli(capsys, *args, "-o", "/dev/null")
    assert result.code == 2, result.err
    assert "a character device" in result.err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_ino == before.st_ino


def test_a_regular_file_is_still_replaced(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "stop.ps1"
    target.write_text("old", encoding="utf-8")
    result = run_cli(capsys, *RENDER, "-o", str(target))
    assert result.code == 0, result.err
    assert "Stop-CsWindowsService" in target.read_text(encoding="utf-8-sig")


def test_a_missing_parameter_says_how_to_give_it(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "render", "events", "-p", "sfb2015")
    assert result.code == 2
    assert "needs parameter LogName" in result.err and "--param LogName=" in result.err
