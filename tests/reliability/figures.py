"""What the reliability and hostile-input tests tried, counted, for the terminal summary and the docs page.

Every test that injects a fault, feeds a hostile value, scans for a secret or flips a byte records it here;
``tests/reliability/conftest.py`` prints the totals and writes ``docs/reliability.md`` from them. Import
this module as ``tests.reliability.figures`` everywhere, so that every test shares one registry.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

SECTIONS: dict[str, str] = {
    "hostile": "Hostile input",
    "transit": "Faults in transit",
    "fleet": "Fleet faults",
    "secrets": "Secrets",
    "integrity": "Integrity",
    "fuzz": "Parsers under fuzz",
    "tls": "TLS",
}
"""Sections of the page, in order; a full run reports into every one of them."""

_lock = threading.Lock()
_figures: defaultdict[str, Counter[str]] = defaultdict(Counter)


def add(section: str, key: str, amount: int = 1) -> None:
    """Count ``amount`` more of ``key`` in ``section`` (thread-safe; sections are fixed names)."""
    if section not in SECTIONS:
        raise KeyError(f"unknown figures section {section!r}")
    with _lock:
        _figures[section][key] += amount


def get(section: str, key: str) -> int:
    with _lock:
        return _figures[section][key]


def snapshot() -> dict[str, dict[str, int]]:
    with _lock:
        return {section: dict(counts) for section, counts in _figures.items() if counts}
