"""Patching one server end to end (preflight, out of service, hold start-up types, install, restart,
verify, back in service; each step verified before the next), or a whole pool (``patch_pool``: the
pool's own roll around each member's steps, then the databases).

Facts (installers, switches, exit codes, pending-reboot flags) come from ``catalog/data/patch.toml``;
``plan`` is pure; ``runner`` walks the plan through an injected ``PatchDriver`` and clock.
"""

from __future__ import annotations

from ocsps.patch.database import DatabaseReport, DatabaseVersion, update_databases
from ocsps.patch.driver import PatchDriver, RemotePatchDriver
from ocsps.patch.facts import PatchFacts, load_patch_facts
from ocsps.patch.model import Component, InstallOutcome, PatchState, ServiceInfo
from ocsps.patch.plan import PatchOptions, PatchPlan, default_options, plan_patch
from ocsps.patch.pool import (
    PoolPatchResult,
    PoolPatchStatus,
    PostCheck,
    ServerOutcome,
    check_request,
    patch_pool,
    plan_pool_patch,
)
from ocsps.patch.runner import PatchEvent, PatchRecord, PatchRunner, PatchStatus
from ocsps.patch.state import load_record, open_saved_record, save_record, state_path, unfinished

__all__ = [
    "Component",
    "DatabaseReport",
    "DatabaseVersion",
    "InstallOutcome",
    "PatchDriver",
    "PatchEvent",
    "PatchFacts",
    "PatchOptions",
    "PatchPlan",
    "PatchRecord",
    "PatchRunner",
    "PatchState",
    "PatchStatus",
    "PoolPatchResult",
    "PoolPatchStatus",
    "PostCheck",
    "RemotePatchDriver",
    "ServerOutcome",
    "ServiceInfo",
    "check_request",
    "default_options",
    "load_patch_facts",
    "load_record",
    "open_saved_record",
    "patch_pool",
    "plan_patch",
    "plan_pool_patch",
    "save_record",
    "state_path",
    "unfinished",
    "update_databases",
]
