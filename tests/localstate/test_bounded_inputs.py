"""Input files are read only when they are regular files no bigger than the documented limit.

Each case names a command and where its input file goes; each special file must give one clear line and
exit 2 quickly (a FIFO nobody writes to must not hang, ``/dev/zero`` must not be read until memory runs out).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ocsps.errors import UsageError
from ocsps.localfiles import MAX_INPUT_BYTES, check_output_target, read_text_bounded
from tests.cli_helpers import run_cli

SPECIALS: dict[str, Callable[[Path], Path]] = {
    "dev-zero": lambda _tmp: Path("/dev/zero"),
    "fifo": lambda tmp: _fifo(tmp / "pipe"),
    "directory": lambda tmp: tmp,
    "oversized": lambda tmp: _big(tmp / "big.toml"),
}


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _big(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk used, still too big
    return path


COMMANDS: dict[str, Callable[[Path], tuple[dict[str, str], list[str]]]] = {
    "config": lambda p: ({"OCSPS_CONFIG": str(p)}, ["config", "show"]),
    "hosts-file": lambda p: ({}, ["status", "--hosts-file", str(p), "-p", "sfb2015"]),
    "lab-serve-topology": lambda p: ({}, ["lab", "serve", "--topology", str(p)]),
    "lab-topology-check": lambda p: ({}, ["lab", "topology", "--check", str(p)]),
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX special files")
@pytest.mark.parametrize("special", sorted(SPECIALS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_special_or_huge_input_is_refused(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
    special: str,
) -> None:
    target = SPECIALS[special](tmp_path)
    env, args = COMMANDS[command](target)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = run_cli(capsys, *args)
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("ocsps: error: cannot read"), result.err
    assert "Traceback" not in result.err


def test_limit_is_a_few_mib_and_a_file_at_the_limit_is_read(tmp_path: Path) -> None:
    assert 1024 * 1024 <= MAX_INPUT_BYTES <= 16 * 1024 * 1024
    exact = tmp_path / "exact.txt"
    exact.write_bytes(b"a" * MAX_INPUT_BYTES)
    assert len(read_text_bounded(exact, what="test file")) == MAX_INPUT_BYTES


def test_invalid_utf8_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"host = '\xff'\n")
    with pytest.raises(UsageError, match=r"bad\.toml: not UTF-8"):
        read_text_bounded(bad, what="config file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX special files")
@pytest.mark.parametrize("special", ["dev-null", "fifo", "directory"])
def test_output_target_must_be_a_regular_file(tmp_path: Path, special: str) -> None:
    target = {"dev-null": Path("/dev/null"), "fifo": tmp_path / "out", "directory": tmp_path}[special]
    if special == "fifo":
        os.mkfifo(target)
    with pytest.raises(UsageError, match="only regular files are replaced"):
        check_output_target(target)
    check_output_target(tmp_path / "new.ps1")  # a name that does not exist yet is fine
