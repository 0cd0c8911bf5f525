"""Run the CLI in-process, as a user would from a shell, and capture what it prints and returns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ocsps.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def default_sigint() -> None:
    """``preexec_fn`` for a child that must react to Ctrl-C as it would at a terminal.

    A background job (nohup, CI) starts with SIGINT ignored and children inherit that, so Python in the child
    would never raise KeyboardInterrupt.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
