"""The audit trail: one JSON line per state-changing call, in the operator's data directory.

A change board wants to know who did what, where and with what result. Lines never carry a password:
only parameters that were bound to scripts, and those never include credentials.
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

ENV_AUDIT_LOG = "OCSPS_AUDIT_LOG"
_lock = threading.Lock()


def audit_path(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    if environ.get(ENV_AUDIT_LOG):
        return Path(environ[ENV_AUDIT_LOG])
    from platformdirs import user_data_dir

    return Path(user_data_dir("ocsps", appauthor=False)) / "audit.jsonl"


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record(
    *,
    host: str,
    action: str,
    parameters: Mapping[str, object],
    outcome: str,
    duration: float,
    detail: str = "",
    body_sha256: str = "",
    path: Path | None = None,
) -> None:
    """Append one line; failures to write are reported, never swallowed (an unaudited change is a problem)."""
    line = {
        "time": datetime.now(UTC).isoformat(),
        "operator": _operator(),
        "host": host,
        "action": action,
        "parameters": {
            k: v if isinstance(v, str | int | bool | list) else str(v) for k, v in parameters.items()
        },
        "outcome": outcome,
        "duration_seconds": round(duration, 3),
        "detail": detail,
        "body_sha256": body_sha256,
    }
    target = path or audit_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock, target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")
