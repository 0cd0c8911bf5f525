"""Where output goes: one JSON document on stdout with ``--json``, people-facing text on stderr then.

Colours follow the terminal: none when output is not a terminal or NO_COLOR is set (rich honours both).
Log records of the ``ocsps`` loggers (remote warnings and verbose output, retries) go to stderr: warnings
by default, errors only with ``--quiet``, informational ones too with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocsps.errors import UsageError

if TYPE_CHECKING:  # rich is imported on first output, not when the command tree is built
    from rich.console import Console

_state: dict[str, bool] = {"quiet": False, "verbose": False}


@functools.cache
def _console_class() -> type[Console]:
    """A rich ``Console`` that shows text safely and never cuts a table cell.

    Every string it renders (plain prints, table cells, titles) is redacted, its control characters made
    visible: server text (ActivityLevel, warnings, error records) must not drive the terminal, and an echoed
    credential must not reach a recorded session. Table columns fold instead of ending in an ellipsis: a host
    or service name cut at 80 columns (or in a pipe) is a name an administrator cannot copy.
    """
    from rich.console import (
        Console,
        ConsoleOptions,
        HighlighterType,
        JustifyMethod,
        OverflowMethod,
        RenderableType,
    )
    from rich.segment import Segment
    from rich.style import Style
    from rich.table import Table
    from rich.text import Text

    from ocsps.redact import safe_text

    class SafeConsole(Console):
        def render_str(
            self,
            text: str,
            *,
            style: str | Style = "",
            justify: JustifyMethod | None = None,
            overflow: OverflowMethod | None = None,
            emoji: bool | None = None,
            markup: bool | None = None,
            highlight: bool | None = None,
            highlighter: HighlighterType | None = None,
        ) -> Text:
            return super().render_str(
                safe_text(text),
                style=style,
                justify=justify,
                overflow=overflow,
                emoji=emoji,
                markup=markup,
                highlight=highlight,
                highlighter=highlighter,
            )

        def render(
            self, renderable: RenderableType, options: ConsoleOptions | None = None
        ) -> Iterable[Segment]:
            if isinstance(renderable, Table):
                for column in renderable.columns:
                    column.overflow = "fold"
                    column.no_wrap = False
            return super().render(renderable, options)

    return SafeConsole


def console(*, json_mode: bool = False) -> Console:
    """Human output: stdout normally, stderr when stdout carries JSON."""
    return _console_class()(stderr=json_mode, highlight=False, soft_wrap=True)


def err_console() -> Console:
    return _console_class()(stderr=True, highlight=False, soft_wrap=True)


def human(text: str) -> str:
    """Text for ``typer.echo``: redacted, control characters visible (what the console does by itself)."""
    from ocsps.redact import safe_text

    return safe_text(text)


JSON_FORMAT = 1
"""The ``format`` of every JSON object ``--json`` prints; documents without it predate the field."""


def emit_json(document: Any) -> None:
    """One JSON document on stdout; credential-shaped strings are masked (JSON escapes control characters)."""
    from ocsps.redact import redact_value

    if isinstance(document, dict) and "format" not in document:
        document = {"format": JSON_FORMAT, **document}

    sys.stdout.write(json.dumps(redact_value(document), indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (looked up per record, so redirection and capture work)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {human(self.format(record))}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def set_verbosity(*, quiet: bool, verbose: bool) -> None:
    """Record ``--quiet`` / ``--verbose`` and route the ``ocsps`` log records to stderr accordingly."""
    _state["quiet"] = quiet
    _state["verbose"] = verbose
    logger = logging.getLogger("ocsps")
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        logger.addHandler(handler)
    handler.setLevel(logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING)
    logger.setLevel(logging.INFO if verbose and not quiet else logging.NOTSET)


def is_quiet() -> bool:
    return _state["quiet"]



def write_output(text: str, output: Path | None) -> None:
    """Write to the file, or stdout (no file, or ``-``); a file is written whole or not at all.

    Only a regular file (or a new name) is replaced: the write goes to a temporary file renamed onto the
    target, and renaming onto a device or a FIFO would replace it, not write to it.
    """
    if output is None or str(output) == "-":
        import typer

        typer.echo(text, nl=False)
        return
    from ocsps.localfiles import check_output_target

    check_output_target(output)
    tmp = output.with_name(output.name + ".tmp")
    try:
        # Windows PowerShell reads a BOM-less script in the ANSI code page: the BOM keeps non-ASCII intact.
        tmp.write_text(text, encoding="utf-8-sig", newline="\n")
        tmp.replace(output)
    except (OSError, ValueError) as exc:  # a missing folder, a name too long, a character the OS refuses
        from ocsps.hostname import show

        with contextlib.suppress(OSError, ValueError):
            tmp.unlink(missing_ok=True)
        why = getattr(exc, "strerror", None) or exc.__class__.__name__
        raise UsageError(f"cannot write {show(str(output), 200)}: {why}") from None
    err_console().print(f"wrote {output}", markup=False)
