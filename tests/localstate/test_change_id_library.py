"""Library entry points that write audit lines take the change ticket as a keyword, as the CLI does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocsps import audit
from ocsps.deactivation.approved import execute, open_plan
from ocsps.deactivation.plan import PLAN_KIND, load_lcscmd_facts, plan_deactivation, plan_document
from ocsps.errors import UsageError
from ocsps.lab.runtime import Lab
from ocsps.plans.sealed import save_plan
from tests.conftest import lab_server

OCS01 = "ocs01.contoso.com"
SE = ["av-conferencing", "web-conferencing", "web-components", "front-end", "archiving-cdr"]


def _plan(tmp_path: Path, change_id: str = "") -> Path:
    path = tmp_path / "plan.json"
    plan = plan_deactivation(OCS01, product="ocs2007r2", roles=SE, change_id=change_id)
    save_plan(path, PLAN_KIND, plan_document(plan))
    return path


def _tickets(log: Path) -> list[str | None]:
    return [json.loads(line).get("change_id") for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("planned", "given", "outer", "expected"),
    [
        ("", "CHG-7", "", "CHG-7"),  # the keyword
        ("RFC-1", "CHG-7", "", "CHG-7"),  # the keyword wins over the plan's
        ("RFC-1", None, "", "RFC-1"),  # none given: the plan's
        ("RFC-1", None, "CHG-9", "CHG-9"),  # none given inside audit.change: the one in force
    ],
)
def test_execute_stamps_every_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    planned: str,
    given: str | None,
    outer: str,
    expected: str,
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    facts = load_lcscmd_facts()
    approved = open_plan(_plan(tmp_path, planned), facts)
    with Lab() as lab, lab_server(lab, OCS01) as server, audit.change(outer):
        report = execute(server, approved, facts, acknowledged=("backups",), change_id=given)
    assert report.ok
    tickets = _tickets(log)
    assert len(tickets) >= 3 and set(tickets) == {expected}
    assert audit.current_change_id() == ""  # nothing leaks past the run


def test_execute_refuses_a_malformed_ticket_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    facts = load_lcscmd_facts()
    approved = open_plan(_plan(tmp_path), facts)
    with Lab() as lab, lab_server(lab, OCS01) as server:
        with pytest.raises(UsageError, match="change id") as caught:
            execute(server, approved, facts, acknowledged=("backups",), change_id="CHG 1; x")
        assert caught.value.exit_code == 2
        assert not lab.server(OCS01).files
    assert not log.exists()


def test_the_ansible_helpers_stamp_their_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys
    import types

    from tests.conftest import ROOT

    try:
        importlib.import_module("ansible.module_utils.basic")
    except ImportError:  # ansible-core absent: the helpers need only this one function from it
        basic = types.ModuleType("ansible.module_utils.basic")
        basic.missing_required_lib = lambda name: f"{name} is required"  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "ansible.module_utils", types.ModuleType("ansible.module_utils"))
        monkeypatch.setitem(sys.modules, "ansible.module_utils.basic", basic)
    monkeypatch.syspath_prepend(str(ROOT / "ansible"))
    before = set(sys.modules)
    try:
        _ansible_helpers_stamp(
            importlib.import_module("ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common"),
            tmp_path,
            monkeypatch,
        )
    finally:  # no later test sees helpers imported against the stand-in
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)


def _ansible_helpers_stamp(common: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocsps.remote.connector import lab_settings

    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    with Lab() as lab:
        settings = lab_settings(lab, "med01.contoso.com")
        server = common._audited(settings, lab.server("med01.contoso.com").product, 30.0, "CHG-3")
        try:
            server.stop("RTCMEDSRV")
        finally:
            server.close()
    assert _tickets(log) and set(_tickets(log)) == {"CHG-3"}
    with pytest.raises(UsageError, match="change_id"):
        common._audited(settings, lab.server("med01.contoso.com").product, 30.0, "<x>")
