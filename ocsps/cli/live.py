"""What a running operation shows while it runs: a live table on a terminal, one line per change otherwise.

Kept apart from the command bodies so that a command reads as argument handling, one library call and
rendering; and so that every display follows the same rule: say each thing once, and only what was read.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ocsps.cli.output import console, err_console, is_quiet

if TYPE_CHECKING:
    from ocsps.operations.drain import DrainReport
    from ocsps.results import ServiceStatus


def activity_text(status: ServiceStatus) -> str:
    if status.activity is None or not len(status.activity):
        return "-"
    return ", ".join(f"{c.name}={c.value}" for c in status.activity)


def live_ok() -> bool:
    return sys.stdout.isatty() and not is_quiet()


class _Once(logging.Filter):
    """Lets each distinct message through once: a warning the server repeats on every poll is one fact."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        with self.lock:
            if text in self.seen:
                return False
            self.seen.add(text)
        return True


@contextlib.contextmanager
def say_once(logger_name: str = "ocsps.remote") -> Iterator[None]:
    """For the duration of one command, repeated remote warnings are shown once."""
    logger = logging.getLogger(logger_name)
    once = _Once()
    logger.addFilter(once)
    try:
        yield
    finally:
        logger.removeFilter(once)


class DrainBoard:
    """Per-host drain progress: a live table on a terminal, else one stderr line per phase change.

    The line shows the phase and the status read with it, so it never says "draining" about a service
    that is already Stopped (the library moves the phase on as soon as it reads that).
    """

    def __init__(self, service: str, *, json_out: bool) -> None:
        self.service = service
        self.board: dict[str, DrainReport] = {}
        self.lock = threading.Lock()
        self.printed: dict[str, str] = {}
        self.live_table = not json_out and live_ok()
        self.lines = not self.live_table and not is_quiet()
        self.live: Any = None

    def update(self, report: DrainReport) -> None:
        with self.lock:
            self.board[report.host] = report
            phase = report.phase.value
            changed = self.printed.get(report.host) != phase
            self.printed[report.host] = phase
        if changed and self.lines:
            status = report.last.status.value if report.last else "unknown"
            err_console().print(f"{report.host}: {self.service} {phase} ({status})", markup=False)

    def render(self) -> Any:
        from rich.table import Table

        table = Table(title=f"Draining {self.service}")
        for col in ("host", "phase", "status", "activity", "elapsed"):
            table.add_column(col)
        with self.lock:
            reports = list(self.board.values())
        for r in reports:
            status = r.last.status.value if r.last else "-"
            table.add_row(
                r.host, r.phase.value, status, activity_text(r.last) if r.last else "-", f"{r.elapsed:.0f}s"
            )
        return table

    def __enter__(self) -> DrainBoard:
        if self.live_table:
            from rich.live import Live

            self.live = Live(
                get_renderable=self.render, console=console(), refresh_per_second=4, transient=True
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)


def print_drain_summary(reports: list[DrainReport]) -> None:
    from rich.table import Table

    table = Table(title="Drain summary")
    for col in ("host", "service", "result", "status", "elapsed", "events", "note"):
        table.add_column(col)
    for r in reports:
        events = ", ".join(f"{e.id} at {e.time.strftime('%H:%M:%S')}" for e in r.events) or "-"
        result = "[green]ok[/green]" if r.ok else f"[red]{r.phase.value}[/red]"
        status = r.last.status.value if r.last else "unknown"
        table.add_row(
            r.host, r.service, result, status, f"{r.elapsed:.1f}s", events, r.error or r.note or "-"
        )
    console().print(table)
