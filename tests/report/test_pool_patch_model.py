"""How the report reads a ``patch pool`` journal and the audit actions: the stage names cover every
audited action, a member's records are linked by the request's ticket or by the command's intent line,
and a restart whose outcome the log could not know is settled only by a record that completed it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ocsps.catalog import load_catalog
from ocsps.report import Selection, build_report
from ocsps.report.model import AUDIT_STAGES, Report
from tests.report.cases import CASES

CASE = CASES / "patch-pool-verified"
TICKET = "CHG-1042"


def _inputs() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in (CASE / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    (journal,) = json.loads((CASE / "input.json").read_text(encoding="utf-8"))["roll_states"]
    return lines, journal


def _report(lines: list[dict[str, Any]], journal: dict[str, Any], ticket: str = TICKET) -> Report:
    return build_report(
        Selection(ticket),
        lines,
        roll_states=[journal],
        generated="2026-04-01T00:00:00+00:00",
        generated_by="t",
    )


def test_every_audited_action_has_a_stage_name() -> None:
    actions = load_catalog().actions
    audited = {name for name, action in actions.items() if action.changes_state}
    assert audited <= set(AUDIT_STAGES), sorted(audited - set(AUDIT_STAGES))
    for name in (
        "pool-start",
        "pool-recover",
        "check-synthetic",
        "patch-set-startup",
        "patch-state",
        "drain-watch",
        "drain-follow",
        "pool-readiness-watch",
    ):
        assert AUDIT_STAGES[name] != name


def test_members_are_linked_by_the_intent_line_when_the_journal_holds_no_ticket() -> None:
    lines, journal = _inputs()
    journal = copy.deepcopy(journal)
    journal["request"]["change_id"] = ""
    for record in journal["work"].values():
        record["change_id"] = ""
    report = _report(lines, journal)
    assert [s.host for s in report.servers] == sorted(journal["work"])
    assert all(s.verified is True and s.outcome == "ok" for s in report.servers)
    # Without the intent line (another ticket's report, or a log that lost it), nothing links them.
    report = _report([line for line in lines if line["outcome"] != "starting"], journal)
    assert report.pools == () and report.servers and all(s.versions == () for s in report.servers)


def test_a_journal_of_another_change_is_not_this_change() -> None:
    lines, journal = _inputs()
    assert _report(lines, journal, "CHG-9").empty


@pytest.mark.parametrize(
    "completed", [True, False], ids=["record-completed-reboot", "record-stopped-at-reboot"]
)
def test_a_restart_with_an_unknown_outcome_is_settled_only_by_the_record(completed: bool) -> None:
    lines, journal = _inputs()
    journal = copy.deepcopy(journal)
    host = "fe10a.contoso.com"
    if not completed:
        record = journal["work"][host]
        record["done"] = ["preflight", "hold", "install"]
        record["status"] = "disconnected"
        record["step"] = "reboot"
        record["history"] = [
            h for h in record["history"] if h["step"] in ("preflight", "hold", "install", "reboot")
        ]
    server = next(s for s in _report(lines, journal).servers if s.host == host)
    reboot = next(m for m in server.milestones if m.stage == "reboot")
    call = next(e for e in server.events if e.action == "patch-restart")
    assert call.outcome.startswith("unknown")
    assert (reboot.ok, call.ok, server.outcome) == (
        (True, None, "ok") if completed else (False, False, "disconnected")
    )


@pytest.mark.parametrize(
    ("request_update", "shown"),
    [
        ({"database_result": {"ok": True, "status": "up to date"}, "sql_server": "sql01"}, "ok (up to date)"),
        (
            {"database_result": {"ok": False, "error": "no permission"}, "sql_server": "sql01"},
            "FAILED: no perm",
        ),
        ({"database_update": False}, "not requested (--no-database-update)"),
        ({"done": False}, "not reached"),
        ({}, "none recorded: the product has no database step"),
    ],
    ids=["updated", "failed", "not-requested", "not-reached", "no-database-step"],
)
def test_the_database_update_is_shown_as_the_journal_records_it(
    request_update: dict[str, Any], shown: str
) -> None:
    lines, journal = _inputs()
    journal = copy.deepcopy(journal)
    journal["request"].update(request_update)
    (pool,) = _report(lines, journal).pools
    details = dict(pool.details)
    assert details["Database update"].startswith(shown)
    assert details["Patch"].endswith("expected version 4.0.7577.726")
    assert "each transaction is an audit line" in details["Post-checks"]
