"""Where a patch run's record lives: next to the audit log, one file per server, rewritten atomically.

The record is evidence, a safety net (the start-up types the run found, so that a run killed while
services were held Disabled can be undone by hand) and the resume point of ``patch server --resume``:
the steps done, the installer's outcome, the boot time before a requested restart. A pool's roll keeps
the same records inside its own state file (``ocsps.pool.state``, under ``work``): one journal per run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ocsps.audit import audit_path
from ocsps.errors import UsageError
from ocsps.localfiles import read_journal, write_journal
from ocsps.patch.runner import PatchRecord, PatchStatus, record_document

__all__ = ["load_record", "open_saved_record", "save_record", "state_path", "unfinished"]


def state_path(host: str, env: Mapping[str, str] | None = None, *, simulation: bool = False) -> Path:
    """``patch-server-<host>.json`` in the audit log's directory (``patch-server-lab-...`` for the lab, so
    that a rehearsal's record is never mistaken for production's)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", host.strip().casefold())[:120] or "server"
    kind = "patch-server-lab" if simulation else "patch-server"
    return audit_path(env).parent / f"{kind}-{safe}.json"


def save_record(path: Path, record: PatchRecord) -> None:
    write_journal(path, record_document(record))


def load_record(path: Path) -> PatchRecord:
    """A saved record to resume from; a missing or damaged file is a one-line usage error."""
    doc = read_journal(path, what="patch record", saved="saved patch run")
    return PatchRecord.from_json(doc, source=str(path))


def unfinished(record: PatchRecord) -> bool:
    """A run that changed the server and did not end: starting anew would forget what it changed."""
    return record.status is not PatchStatus.DONE and any(s != "preflight" for s in record.done)


def open_saved_record(
    path: Path,
    host: str,
    installer: str,
    expect_version: str,
    *,
    resume: bool,
    simulation: bool,
    resume_hint: str = "--resume",
) -> PatchRecord | None:
    """The saved run to continue, or None for a new one; checked before any connection.

    A resume must be asked what the saved run was asked, of the same kind of server (a lab rehearsal never
    resumes against production). A new run is refused over an unfinished one: its record holds the
    start-up types the first run found, the only way back if it left services Disabled.
    """
    if not resume:
        if path.exists() and unfinished(previous := load_record(path)):
            raise UsageError(
                f"an unfinished patch run of {host} is saved in {path} ({previous.status.value} at "
                f"{previous.step}); continue it with {resume_hint}, or delete that file once the server has "
                "been checked"
            )
        return None
    saved = load_record(path)
    differ = []
    if saved.plan.host.casefold() != host.casefold():
        differ.append(f"host {saved.plan.host} (saved) vs {host}")
    if saved.plan.installer_path.casefold() != installer.strip().casefold():
        differ.append(f"installer {saved.plan.installer_path} (saved) vs {installer.strip()}")
    if saved.plan.options.expect_version != expect_version:
        differ.append(f"expect-version {saved.plan.options.expect_version} (saved) vs {expect_version}")
    if saved.simulation != simulation:
        differ.append("the saved run was a lab rehearsal" if saved.simulation else "the saved run was real")
    if differ:
        raise UsageError(
            f"the saved patch run of {saved.plan.host} was asked something else: {'; '.join(differ)}; resume "
            "with the same options, or check the server and delete the record to start anew"
        )
    return saved
