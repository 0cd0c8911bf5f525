"""A per-user cache of work derived from packaged files (the parsed catalog, compiled templates).

Only a speed-up, never a source of truth: every entry is keyed by a digest of what it was derived from and
carries a digest of its own bytes, and anything unexpected (a missing, unreadable, unwritable, truncated or
foreign file) means "not cached": the caller derives the value again. The directory is
``<user cache dir>/ocsps`` (platformdirs: ``~/.cache/ocsps`` on Linux), or ``OCSPS_CACHE_DIR``; set that
to an empty string to turn caching off.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

_MAGIC = b"ocsps-c1"
_DIGEST = 32


def cache_dir() -> Path | None:
    """Where cached files go, or None when caching is turned off."""
    configured = os.environ.get("OCSPS_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    if sys.platform.startswith("linux"):  # platformdirs' XDG rule, without importing it on every run
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return Path(base) / "ocsps"
    import platformdirs

    return platformdirs.user_cache_path("ocsps", appauthor=False)


def _entry(name: str) -> Path | None:
    directory = cache_dir()
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return None if directory is None else directory / f"{name}-{tag}.bin"


def load(name: str, key: bytes) -> bytes | None:
    """The payload stored under ``name`` for exactly this ``key``, or None."""
    try:
        path = _entry(name)
        if path is None:
            return None
        blob = path.read_bytes()
    except (OSError, ValueError):
        return None
    header = len(_MAGIC) + 2 * _DIGEST
    if len(blob) < header or not blob.startswith(_MAGIC):
        return None
    stored_key = blob[len(_MAGIC) : len(_MAGIC) + _DIGEST]
    stored_digest = blob[len(_MAGIC) + _DIGEST : header]
    payload = blob[header:]
    if stored_key != hashlib.sha256(key).digest() or stored_digest != hashlib.sha256(payload).digest():
        return None
    return payload


def store(name: str, key: bytes, payload: bytes) -> None:
    """Save ``payload`` under ``name`` for ``key``, atomically; silently nothing if that fails."""
    try:
        path = _entry(name)
        if path is None:
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        blob = _MAGIC + hashlib.sha256(key).digest() + hashlib.sha256(payload).digest() + payload
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except (OSError, ValueError):
        return
