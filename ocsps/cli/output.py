"""Where output goes: one JSON document on stdout with ``--json``, people-facing text on stderr then.

Colours follow the terminal: none when output is not a terminal or NO_COLOR is set (rich honours both).
Log records of the ``ocsps`` loggers (remote warnings and verbose output, retries) go to stderr: warnings
by default, errors only with ``--quiet``, informational ones too with ``--verbose``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported on first output, not when the command tree is built
    from rich.console import Console

_state: dict[str, bool] = {"quiet": False, "verbose": False}


def console(*, json_mode: bool = False) -> Console:
    """Human output: stdout normally, stderr when stdout carries JSON."""
    from rich.console import Console

    return Console(stderr=json_mode, highlight=False, soft_wrap=True)


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (looked up per record, so redirection and capture work)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {self.format(record)}\n")
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


def is_verbose() -> bool:
    return _state["verbose"]
