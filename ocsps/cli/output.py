"""Where output goes: one JSON document on stdout with ``--json``, people-facing text on stderr then.

Colours follow the terminal: none when output is not a terminal or NO_COLOR is set (rich honours both).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

_state: dict[str, bool] = {"quiet": False, "verbose": False}


def console(*, json_mode: bool = False) -> Console:
    """Human output: stdout normally, stderr when stdout carries JSON."""
    return Console(stderr=json_mode, highlight=False, soft_wrap=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def set_verbosity(*, quiet: bool, verbose: bool) -> None:
    _state["quiet"] = quiet
    _state["verbose"] = verbose


def is_quiet() -> bool:
    return _state["quiet"]


def is_verbose() -> bool:
    return _state["verbose"]
