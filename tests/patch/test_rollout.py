"""Starting or resuming a pool's patch roll (``ocsps.patch.rollout``), the flow the CLI and the Ansible
module share: the saved journal vets the request before any connection, and a pool that is already
patched is read, not rolled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocsps.catalog import load_catalog
from ocsps.errors import UsageError
from ocsps.patch import RemotePatchDriver, default_options
from ocsps.patch.pool import PoolPatchStatus, plan_pool_patch
from ocsps.patch.rollout import PoolPatchRequest, open_rollout
from ocsps.pool import (
    RemoteDriver,
    RollOptions,
    RollState,
    RollStatus,
    open_saved_roll,
    plan_roll,
    save_state,
)
from tests.patch.pool_lab import pool_lab

POOL = "pool10.contoso.com"
MEMBERS = ("fe10a.contoso.com", "fe10b.contoso.com", "fe10c.contoso.com")
INSTALLER = "C:\\Updates\\LyncServerUpdateInstaller.exe"
VERSION = "4.0.7577.726"


def _request(**changes: Any) -> PoolPatchRequest:
    fields: dict[str, Any] = {
        "pool": POOL,
        "members": MEMBERS,
        "installer": INSTALLER,
        "options": default_options(VERSION),
        "simulation": True,
        **changes,
    }
    return PoolPatchRequest(**fields)


def _saved(
    kind: str, *, pool: str = POOL, simulation: bool = True, status: str = "running", done: bool = False
) -> RollState:
    product = load_catalog().product("lync2010")
    if kind == "patch":
        options = default_options(VERSION)
        state, _ = plan_pool_patch(pool, product, MEMBERS, INSTALLER, options, simulation=simulation)
        if done:
            state.request["done"] = True
    else:
        plan = plan_roll(pool, product, MEMBERS, ())
        state = RollState(plan, RollOptions.defaults(), simulation=simulation)
    state.status = RollStatus(status)
    return state


# (saved journal or None, resume, expected: "new", "resumed", or a fragment of the refusal)
CASES: list[tuple[str, dict[str, Any] | None, bool, str]] = [
    ("nothing-saved-new", None, False, "new"),
    ("nothing-saved-resume", None, True, "there is nothing to resume"),
    ("patch-running-resume", {"kind": "patch"}, True, "resumed"),
    ("patch-running-new", {"kind": "patch"}, False, "an unfinished roll of pool10.contoso.com is saved"),
    # The roll itself is done but the databases and last reading are not: still unfinished.
    ("patch-roll-done-not-confirmed-new", {"kind": "patch", "status": "done"}, False, "an unfinished roll"),
    ("patch-confirmed-new", {"kind": "patch", "status": "done", "done": True}, False, "new"),
    ("other-pool-resume", {"kind": "patch", "pool": "pool99.contoso.com"}, True, "holds a roll of pool99"),
    ("real-servers-resume-in-lab", {"kind": "patch", "simulation": False}, True, "ran against real servers"),
    ("maintenance-resumed-as-patch", {"kind": "maintain"}, True, "holds a maintenance roll"),
    ("maintenance-done-new", {"kind": "maintain", "status": "done"}, False, "new"),
    ("maintenance-paused-new", {"kind": "maintain", "status": "paused"}, False, "an unfinished roll"),
]


@pytest.mark.parametrize(("saved", "resume", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_saved_journal_vets_the_request_before_any_connection(
    tmp_path: Path, saved: dict[str, Any] | None, resume: bool, expected: str
) -> None:
    path = tmp_path / "pool-roll-lab-pool10.json"
    if saved is not None:
        save_state(path, _saved(**saved))
    before = path.read_bytes() if path.exists() else None
    if expected in ("new", "resumed"):
        rollout = open_rollout(_request(), path, resume=resume)
        assert (rollout.saved is not None) == (expected == "resumed")
    else:
        with pytest.raises(UsageError, match=expected):
            open_rollout(_request(), path, resume=resume)
    assert (path.read_bytes() if path.exists() else None) == before  # vetting writes nothing


def test_a_maintenance_roll_refuses_to_start_over_an_unconfirmed_patch_roll(tmp_path: Path) -> None:
    path = tmp_path / "pool-roll-lab-pool10.json"
    save_state(path, _saved("patch", status="done"))
    with pytest.raises(UsageError, match="continue it with --resume"):
        open_saved_roll(path, POOL, resume=False, simulation=True)
    with pytest.raises(UsageError, match=r"holds a patch roll of pool10\S+, not a maintenance roll"):
        open_saved_roll(path, POOL, resume=True, simulation=True)


def test_a_resume_must_be_asked_what_was_saved(tmp_path: Path) -> None:
    path = tmp_path / "pool-roll-lab-pool10.json"
    save_state(path, _saved("patch"))
    with pytest.raises(UsageError, match="was asked something else"):
        open_rollout(_request(options=default_options("4.0.7577.999")), path, resume=True)


def test_a_patched_pool_is_read_and_nothing_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit_log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(audit_log))
    with pool_lab("lync2010-three.toml") as pl:
        for member in pl.members:  # patched earlier: every component at the version
            knobs = pl.knobs(member)
            knobs.components = dict.fromkeys(knobs.components, VERSION)
        path = tmp_path / "journal.json"
        request = _request(pool=pl.pool, members=tuple(pl.members), change_id="CHG-7")
        pool_driver = RemoteDriver(pl.factory, call_timeout=60.0)
        patch_driver = RemotePatchDriver(pl.factory, call_timeout=60.0)
        try:
            again = open_rollout(request, path).run(pool_driver, patch_driver, pl.product)
        finally:
            pool_driver.close()
            patch_driver.close()
        assert again.status is PoolPatchStatus.CURRENT and again.exit_code == 0
        assert "nothing was sent" in again.reason
        assert [s.server for s in again.servers] == pl.members and all(s.current for s in again.servers)
        assert set(again.versions_before) == set(pl.members)
        assert [pl.knobs(m).installs for m in pl.members] == [0, 0, 0]
        assert all(status == "Running" for m in pl.members for status, _startup in pl.services(m).values())
        assert not path.exists()  # no journal: nothing to resume
        text = audit_log.read_text(encoding="utf-8") if audit_log.exists() else ""
        lines = [json.loads(line) for line in text.splitlines()]
        assert not [line for line in lines if line["action"].startswith("patch pool")]  # no intent: no change
