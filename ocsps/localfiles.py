"""Local files ocsps reads and writes: bounded, regular files only, private where they may hold secrets.

Every input file (config, hosts file, lab topology, sealed plan, change-board script) is small text written by
an administrator. Reading one without a limit lets a wrong path (``/dev/zero``, a FIFO nobody writes to, a
multi-gigabyte log) exhaust memory or hang a maintenance window, so reads are capped at ``MAX_INPUT_BYTES``
and refuse anything that is not a regular file. The check is made on the opened descriptor (``fstat``), not on
the name, so a path swapped between the check and the read cannot slip through; the open is non-blocking so a
FIFO is refused instead of waiting for a writer.

This module imports nothing from ocsps but ``ocsps.errors``: the lab uses it too and must stay a witness.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Final

from ocsps.errors import UsageError

MAX_INPUT_BYTES: Final = 4 * 1024 * 1024
"""4 MiB: far above any real config, hosts file, topology or plan (they are a few KiB), far below harm."""

PRIVATE_MODE: Final = 0o600
"""Files that may name operators, hosts and credential sources are readable by their owner only."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(limit: int) -> str:
    mib = 1024 * 1024
    return f"{limit // mib} MiB" if limit % mib == 0 else f"{limit} bytes"


def _label(path: Path) -> str:
    text = str(path)
    return repr(text[:200]) if any(ord(c) < 32 or ord(c) == 127 for c in text) else text[:200]


def read_bytes_bounded(path: str | os.PathLike[str], *, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The whole content of a regular file no bigger than ``limit``; anything else is a ``UsageError``."""
    file = Path(path)
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(file, flags)
    except IsADirectoryError:
        raise UsageError(f"cannot read {what} {_label(file)}: it is a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {_label(file)}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"cannot read {what} {_label(file)}: {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise UsageError(
                f"cannot read {what} {_label(file)}: too big ({info.st_size} bytes; "
                f"the limit is {_size(limit)})"
            )
        with contextlib.suppress(AttributeError, OSError):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(65536, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew after fstat
                raise UsageError(f"cannot read {what} {_label(file)}: too big (the limit is {_size(limit)})")
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {_label(file)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text_bounded(
    path: str | os.PathLike[str], *, what: str, limit: int = MAX_INPUT_BYTES, encoding: str = "utf-8"
) -> str:
    """``read_bytes_bounded`` decoded; invalid text is a ``UsageError`` naming the file, not a traceback."""
    data = read_bytes_bounded(path, what=what, limit=limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"cannot read {what} {_label(Path(path))}: not UTF-8 text (byte {exc.start})"
        ) from None


def check_output_target(path: str | os.PathLike[str]) -> None:
    """Refuse to replace something that is not a regular file (a device, a FIFO, ``/dev/null``, a folder).

    Output is written to a temporary file renamed onto the target; renaming onto ``/dev/null`` as root would
    replace the device with a regular file, which breaks the machine for everyone else.
    """
    file = Path(path)
    try:
        info = os.stat(file)
    except OSError:  # missing, or a parent that is not a folder: the write itself reports it
        return
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(
            f"cannot write {_label(file)}: it is {_kind(info.st_mode)}; only regular files are replaced "
            "(use '-o -' for standard output)"
        )


def others_can_read(path: str | os.PathLike[str]) -> bool:
    """Whether group or others may read the file (False where modes do not apply, e.g. on Windows)."""
    if os.name == "nt":
        return False
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def write_journal(path: Path, doc: object) -> None:
    """Write the whole document or nothing: a journal is a resume point, and a crash mid-write must leave
    the previous version intact (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def read_journal(path: Path, *, what: str, saved: str) -> dict[str, Any]:
    """A journal's JSON object; a missing file says there is no ``saved`` run to resume, anything else
    unreadable or damaged is a one-line ``UsageError`` naming ``what`` it should have been."""
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"no {saved} at {_label(path)}: there is nothing to resume")
    text = read_text_bounded(path, what=what)
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{_label(path)}: damaged {what} ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{_label(path)}: not an ocsps {what}")
    return doc
