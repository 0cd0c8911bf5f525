"""Hostile-input tests: the CLI's command tree is built once per module (they run it hundreds of times),
and the end of the run says how many inputs were tried and how many escaped."""

from __future__ import annotations

import pytest

from tests.reliability import figures
from tests.reliability.labkit import cli_built_once

__all__ = ["cli_built_once"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if "hostile" not in figures.snapshot():
        return
    g = figures.get
    terminalreporter.section("ocsps hostile input")
    terminalreporter.write_line(
        f"hostile inputs tried: {g('hostile', 'tried')}; refused: {g('hostile', 'refused')}; "
        f"one literal: {g('hostile', 'literal')}; bound: {g('hostile', 'bound')}; "
        f"arrived at the lab intact: {g('hostile', 'arrived')}; kept in files: {g('hostile', 'kept')}; "
        f"escaped: {g('hostile', 'escaped')}"
    )
