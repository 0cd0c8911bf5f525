"""Report how many generated values the quoting property tests tried, and how many escaped their literal."""

from __future__ import annotations

from collections import Counter

import pytest

ESCAPE_STATS: Counter[str] = Counter()
"""Filled by the property tests: ``tried``, ``refused``, ``accepted`` and ``escaped`` per embedding."""


@pytest.fixture(scope="session")
def escape_stats() -> Counter[str]:
    return ESCAPE_STATS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ESCAPE_STATS:
        return
    terminalreporter.section("PowerShell quoting properties")
    for embedding in sorted({key.split(":", 1)[0] for key in ESCAPE_STATS}):
        counts = {
            kind: ESCAPE_STATS[f"{embedding}:{kind}"] for kind in ("tried", "refused", "accepted", "escaped")
        }
        terminalreporter.write_line(
            f"{embedding}: {counts['tried']} inputs tried, {counts['refused']} refused, "
            f"{counts['accepted']} accepted, {counts['escaped']} escaped"
        )
