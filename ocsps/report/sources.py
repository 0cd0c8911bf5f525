"""Reading what a report is built from: the audit log and the records saved beside it.

Patch records and pool roll states live in the audit log's directory (``ocsps.patch.state``,
``ocsps.pool.state``). They are recognised by their ``format`` field, not by their file names, and read as
plain JSON: the report needs none of the code that writes them (and an offline command must not import
the remote stack). A file that cannot be read is named in a note, never a reason to give up: the board
still gets what the other sources say.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocsps.errors import UsageError

__all__ = ["PATCH_RECORD_FORMAT", "ROLL_STATE_FORMAT", "Sources", "gather"]

PATCH_RECORD_FORMAT = "ocsps-patch-server/"
"""``ocsps.patch.runner.FORMAT`` without its version (a test keeps the two equal)."""
ROLL_STATE_FORMAT = "ocsps-pool-roll/"
"""``ocsps.pool.state.FORMAT`` without its version (a test keeps the two equal)."""

MAX_STATE_FILE = 16 * 1024 * 1024
"""A record larger than this is not a record ocsps wrote; it is skipped with a note."""
MAX_STATE_FILES = 5000
"""Files of the state directory looked at; a directory holding more is not ocsps's alone."""


@dataclass
class Sources:
    audit_lines: list[Mapping[str, Any]] = field(default_factory=list)
    patch_records: list[Mapping[str, Any]] = field(default_factory=list)
    roll_states: list[Mapping[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path) -> Mapping[str, Any] | str:
    """The document, or why it could not be read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return exc.strerror or exc.__class__.__name__
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > MAX_STATE_FILE:
            return f"larger than {MAX_STATE_FILE // (1024 * 1024)} MiB"
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(MAX_STATE_FILE + 1)
    except OSError as exc:
        return exc.strerror or exc.__class__.__name__
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return "not JSON"
    return document if isinstance(document, dict) else "not a JSON object"


def gather(audit_log: Path, state_dir: Path, *, change_id: str = "") -> Sources:
    """Every readable audit line (only the ticket's when one is given) and every saved record.

    A missing log or directory is an empty source; a log that exists but cannot be read is a
    ``UsageError`` (exit 2): a report silently missing the log would tell the board nothing happened.
    """
    from ocsps import audit

    sources = Sources()
    unreadable = 0
    for entry in audit.iter_entries(audit_log):
        if entry.corrupt:
            unreadable += 1
            continue
        if change_id and entry.fields.get("change_id") != change_id:
            continue
        sources.audit_lines.append(entry.fields)
    if unreadable:
        sources.notes.append(f"{unreadable} line(s) of the audit log could not be read and were skipped")
    if state_dir.exists() and not state_dir.is_dir():
        raise UsageError(f"--state-dir {state_dir} is not a directory")
    try:
        names = sorted(p for p in state_dir.glob("*.json")) if state_dir.is_dir() else []
    except OSError as exc:
        raise UsageError(f"cannot list {state_dir}: {exc.strerror or exc.__class__.__name__}") from None
    if len(names) > MAX_STATE_FILES:
        sources.notes.append(
            f"{state_dir} holds {len(names)} JSON files; only the first {MAX_STATE_FILES} were read"
        )
        names = names[:MAX_STATE_FILES]
    for path in names:
        document = _read_json(path)
        if isinstance(document, str):
            sources.notes.append(f"{path.name} could not be read ({document}) and was skipped")
            continue
        kind = str(document.get("format", ""))
        if kind.startswith(PATCH_RECORD_FORMAT):
            sources.patch_records.append(document)
        elif kind.startswith(ROLL_STATE_FORMAT):
            sources.roll_states.append(document)
    return sources
