"""Where a patch run's record lives: next to the audit log, one file per server, rewritten atomically.

The record is evidence and a safety net, not (yet) a resume point: it carries the start-up types the run
found, so that a run killed while services were held Disabled can be undone by hand from the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from ocsps.audit import audit_path
from ocsps.patch.runner import PatchRecord

__all__ = ["save_record", "state_path"]


def state_path(host: str, env: Mapping[str, str] | None = None, *, simulation: bool = False) -> Path:
    """``patch-server-<host>.json`` in the audit log's directory (``patch-server-lab-...`` for the lab, so
    that a rehearsal's record is never mistaken for production's)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", host.strip().casefold())[:120] or "server"
    kind = "patch-server-lab" if simulation else "patch-server"
    return audit_path(env).parent / f"{kind}-{safe}.json"


def save_record(path: Path, record: PatchRecord) -> None:
    """Write the whole record or nothing: a crash mid-write leaves the previous version intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(record.to_json(), indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
