"""Durations as operators type them (``90s``, ``15m``, ``1h30m``), for every deadline and interval."""

from __future__ import annotations

import re

from ocsps.errors import UsageError


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1h30m`` to seconds; anything else is a usage error."""
    raw = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        seconds = float(raw)
    else:
        parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", raw)
        if not raw or parts is None or not any(parts.groups()):
            raise UsageError(f"cannot read duration {text!r}: use e.g. 90s, 15m, 1h30m")
        h, m, s = parts.groups()
        seconds = int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)
    if seconds <= 0 or seconds > 7 * 24 * 3600:
        raise UsageError(f"duration {text!r} is out of range (more than 0, at most 7 days)")
    return seconds
