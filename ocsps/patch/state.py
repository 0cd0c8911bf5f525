"""Where a patch run's record lives: next to the audit log, one file per server, rewritten atomically.

The record is evidence, a safety net (the start-up types the run found, so that a run killed while
services were held Disabled can be undone by hand) and the resume point of ``patch server --resume``:
the steps done, the installer's outcome, the boot time before a requested restart. A pool's roll keeps
the same records inside its own state file (``ocsps.pool.state``, under ``work``): one journal per run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from ocsps.audit import audit_path
from ocsps.errors import UsageError
from ocsps.patch.runner import PatchRecord, PatchStatus, record_document

__all__ = ["load_record", "save_record", "state_path", "unfinished"]


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
        handle.write(json.dumps(record_document(record), indent=2, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def load_record(path: Path) -> PatchRecord:
    """A saved record to resume from; a missing or damaged file is a one-line usage error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no saved patch run at {path}: there is nothing to resume") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc.__class__.__name__}") from None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{path}: damaged patch record ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not an ocsps patch record")
    return PatchRecord.from_json(doc, source=str(path))


def unfinished(record: PatchRecord) -> bool:
    """A run that changed the server and did not end: starting anew would forget what it changed."""
    return record.status is not PatchStatus.DONE and any(s != "preflight" for s in record.done)
