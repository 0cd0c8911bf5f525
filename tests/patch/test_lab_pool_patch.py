"""Whole pools patched in the lab, with faults, interruptions and resumes (cases in tests/data/patch/pools).

Every run ends in a stated status; the lab, the witness, is then asked what it holds: component versions,
which members serve, how many installs and restarts it saw, and that no service is left Disabled (except
on a member left failed over, whose services the failover itself disables until failback).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ocsps.jsonout import to_builtins
from ocsps.patch.pool import PoolPatchResult, PoolPatchResultDocument, PoolPatchStatus
from ocsps.pool import RollEvent
from ocsps.pool.state import RollState
from tests.conftest import ROOT
from tests.patch.pool_lab import POOLS, Journal, PoolLab, pool_lab

CASES = tomllib.loads((POOLS / "cases.toml").read_text(encoding="utf-8"))["case"]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "patch-pool.schema.json").read_text(encoding="utf-8"))
PRODUCTS = {
    "sfb2015": ("6.0.9319.619", "C:\\Updates\\SkypeServerUpdateInstaller.exe", "sql15.contoso.com"),
    "lync2013": ("5.0.8308.1001", "C:\\Updates\\LyncServerUpdateInstaller.exe", "sql13.contoso.com"),
    "lync2010": ("4.0.7577.726", "C:\\Updates\\LyncServerUpdateInstaller.exe", ""),
}
# Deadlines in lab seconds, long enough that a slow round trip on a loaded machine (1 s of wall clock is
# 1200 lab seconds) never decides a case; a case that tests a deadline sets its own, far from the lab's.
PATCH_OPTIONS = {"reboot_timeout": 6 * 3600.0, "restore_timeout": 3600.0}
ROLL_OPTIONS = {"drain_timeout": 6 * 3600.0}


def _interrupt(spec: dict[str, str] | None) -> Any:
    if not spec:
        return None
    fired: list[bool] = []

    def hit(event: RollEvent) -> bool:
        if fired or event.server != spec["server"] or not event.message.startswith(spec["message"]):
            return False
        fired.append(True)
        return True

    return hit


def _check_lab(pl: PoolLab, run: dict[str, Any], expect: str, result: PoolPatchResult) -> None:
    members = pl.members
    at = members if run.get("at_version") == "all" else run.get("at_version")
    if at is not None:
        for host in members:
            versions = set(pl.knobs(host).components.values())
            assert (versions == {expect}) is (host in at), (host, versions)
    out = set(run.get("out_of_service", []))
    for host in members:
        front_end = pl.services(host)["RTCSRV"][0]
        assert (front_end == "Running") is (host not in out), (host, front_end)
    failed_over = {f.casefold() for p in pl.lab.topology.pools.values() for f in p.failed_over}
    for host in members:
        disabled = [n for n, (_, startup) in pl.services(host).items() if startup == "Disabled"]
        if host.casefold() not in failed_over:
            assert disabled == [], (host, disabled)
    assert result.left_disabled == {}
    installs = run.get("installs", {h: 1 for h in members} if at == members else {})
    for host, count in installs.items():
        assert pl.knobs(host).installs == count, host
    for host, count in run.get("restarts", {}).items():
        assert pl.knobs(host).restarts == count, host


def _check_result(run: dict[str, Any], result: PoolPatchResult, pl: PoolLab) -> None:
    assert result.status is PoolPatchStatus(run["status"]), result.reason
    for key in ("reason", "reason_too"):
        if key in run:
            assert run[key] in result.reason
    assert result.exit_code == result.status.exit_code
    statement = result.statement()
    out = set(run.get("out_of_service", []))
    assert (
        "every member read is in service" in statement
        if not out
        else all(h in statement.split("OUT OF SERVICE:")[-1] for h in out)
        or any(s.error for s in result.servers)
    ), statement
    database = run.get("database")
    if database == "updated":
        assert result.database is not None and result.database.status == "updated"
    elif database == "failed":
        assert result.database is None and "database update" in result.reason
    elif database == "not-for-this-product":
        assert "no Test-CsDatabase" in result.database_note
    if "event" in run:
        assert any(run["event"] in e.message for e in pl.events), run["event"]
    document = {
        "command": "patch pool",
        **to_builtins(PoolPatchResultDocument.of(result)),
        "state_file": "s.json",
        "exit_code": 1,
    }
    Draft202012Validator(SCHEMA).validate(document)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_pool_roll(case: dict[str, Any]) -> None:
    with pool_lab(case["topology"], case.get("faults")) as pl:
        expect, installer, sql = PRODUCTS[pl.product.id]
        state: RollState = pl.plan(
            expect=expect,
            installer=installer,
            sql_server=sql,
            patch_options={**PATCH_OPTIONS, **case.get("patch_options", {})},
            roll_options=ROLL_OPTIONS,
        )
        journal = Journal()
        for number, run in enumerate(case["runs"]):
            for host, knobs in run.get("fix", {}).items():
                for key, value in knobs.items():
                    setattr(pl.knobs(host), key, value)
            if run.get("lab_wait"):
                pl.clock.sleep(float(run["lab_wait"]))
            if number:
                state = journal.load()  # resumed from the one journal, as a new process would
            pl.events.clear()
            result = pl.run(state, journal, interrupt=_interrupt(run.get("interrupt")))
            _check_result(run, result, pl)
            _check_lab(pl, run, expect, result)
            saved = json.loads(journal.text)
            assert set(saved["work"]) <= set(pl.members)  # one journal: each server's record inside
            assert saved["request"]["expect_version"] == expect


def test_a_resume_asked_something_else_is_refused() -> None:
    from ocsps.errors import UsageError
    from ocsps.patch import default_options
    from ocsps.patch.pool import check_request

    with pool_lab("lync2010-three.toml") as pl:
        state = pl.plan(expect="4.0.7577.726", installer="C:\\U\\LyncServerUpdateInstaller.exe")
        with pytest.raises(UsageError, match=r"expect_version '4.0.7577.726' \(saved\) vs '4.0.7577.999'"):
            check_request(
                state, "C:\\U\\LyncServerUpdateInstaller.exe", default_options("4.0.7577.999"), "", True
            )
        check_request(
            state, "c:\\u\\lyncserverupdateinstaller.exe", default_options("4.0.7577.726"), "", True
        )


def test_schema_is_published_and_linked() -> None:
    text = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    assert "(schemas/patch-pool.schema.json)" in text
    assert Path(ROOT / "docs" / "schemas" / "patch-pool.schema.json").is_file()


def test_post_checks_run_once_after_the_roll_and_a_failure_is_reported() -> None:
    from ocsps.patch.pool import PostCheck

    asked: list[tuple[str, tuple[str, ...]]] = []

    def post_checks(pool: str, members: Any) -> list[PostCheck]:
        asked.append((pool, tuple(members)))
        return [
            PostCheck("Test-CsRegistration", True, "registered"),
            PostCheck("Test-CsIM", False, "the IM did not arrive"),
        ]

    with pool_lab("lync2010-three.toml") as pl:
        expect, installer, _ = PRODUCTS["lync2010"]
        state = pl.plan(
            expect=expect, installer=installer, patch_options=PATCH_OPTIONS, roll_options=ROLL_OPTIONS
        )
        result = pl.run(state, Journal(), post_checks=post_checks)
    assert asked == [(pl.pool, tuple(pl.members))]
    assert result.status is PoolPatchStatus.STOPPED and result.reason == "post-checks failed: Test-CsIM"
    assert all(s.at_version and s.in_service for s in result.servers)
    assert "post-checks failed: Test-CsIM" in result.statement()
