"""The run flow as a library user gets it: the same calls ``ocsps deactivate run`` makes.

A sealed plan file is opened (checked, keyed by its seal, journal beside it), run with its
acknowledgements on the audit trail, refused when recorded progress is not told where to resume, and the
report says where a later run resumes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps.deactivation.approved import check_target_product, execute, open_plan, preview, resume_step
from ocsps.deactivation.plan import PLAN_KIND, load_lcscmd_facts, plan_deactivation, plan_document
from ocsps.errors import UsageError
from ocsps.lab.runtime import Lab
from ocsps.plans.sealed import save_plan
from tests.conftest import lab_server
from tests.deactivation.test_lab_runs import TOPOLOGIES

OCS01 = "ocs01.contoso.com"
SE = ["av-conferencing", "web-conferencing", "web-components", "front-end"]


def _plan_file(tmp_path: Path, roles: list[str]) -> Path:
    path = tmp_path / "plan.json"
    save_plan(path, PLAN_KIND, plan_document(plan_deactivation(OCS01, product="ocs2007r2", roles=roles)))
    return path


def test_library_run_fails_then_resumes_like_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    facts = load_lcscmd_facts()
    path = _plan_file(tmp_path, [*SE, "archiving-cdr"])
    with Lab(topology_file=TOPOLOGIES / "se_fails_once.toml") as lab:
        approved = open_plan(path, facts)
        assert approved.start == 1 and approved.journal_path == tmp_path / "plan.json.journal.json"
        with lab_server(lab, OCS01) as server:
            report = execute(server, approved, facts, acknowledged=("backups",))
        assert report.exit_code == 1 and resume_step(report) == 4
        with pytest.raises(UsageError, match="continue with --resume-from 4"):
            open_plan(path, facts)  # recorded progress: never silently from the top
        again = open_plan(path, facts, resume_from=4)
        assert [s.number for s in preview(again, facts)] == [4, 5, 6]
        with lab_server(lab, OCS01) as server:
            finished = execute(server, again, facts, acknowledged=("backups",))
        assert finished.ok and resume_step(finished) is None
        assert lab.server(OCS01).activated_roles == []
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    acks = [a for a in audit if a["action"] == "deactivate-acknowledged"]
    steps = [a["parameters"]["step"] for a in audit if a["action"] == "deactivate-step"]
    assert len(acks) == 2 and steps == [1, 2, 3, 4, 4, 5, 6]


def test_edited_plan_file_is_refused_on_open(tmp_path: Path) -> None:
    path = _plan_file(tmp_path, SE)
    doc = json.loads(path.read_text())
    doc["plan"]["reason"] = "edited"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="sha256 mismatch"):
        open_plan(path, load_lcscmd_facts())


def test_plan_for_another_product_is_refused(tmp_path: Path) -> None:
    approved = open_plan(_plan_file(tmp_path, SE), load_lcscmd_facts())
    with pytest.raises(UsageError, match=r"the plan is for ocs2007r2; med01\.contoso\.com runs sfb2015"):
        check_target_product(approved.plan, "sfb2015", "med01.contoso.com")
    check_target_product(approved.plan, "ocs2007r2")


def test_run_that_cannot_be_audited_does_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path))  # a directory: no record can be written
    facts = load_lcscmd_facts()
    approved = open_plan(_plan_file(tmp_path, [*SE, "archiving-cdr"]), facts)
    with Lab() as lab, lab_server(lab, OCS01) as server:
        with pytest.raises(UsageError) as caught:
            execute(server, approved, facts, acknowledged=("backups",))
        assert caught.value.exit_code == 2
        assert f"cannot write the audit log {tmp_path}" in caught.value.message
        assert "nothing was sent" in caught.value.message
        assert not lab.server(OCS01).files  # not even LcsCmd's read-only state check ran
        assert all(s.status == "Running" for s in lab.server(OCS01).services.values())


def _record_done(path: Path, through: int) -> None:
    from ocsps.deactivation.run import OK, StepResult

    approved = open_plan(path, load_lcscmd_facts(), resume_from=1)
    for step in approved.plan.steps[:through]:
        approved.journal.record(StepResult(step.number, step.do, step.label, OK, role=step.role))


def test_finished_plan_is_refused_unless_the_caller_takes_that_answer(tmp_path: Path) -> None:
    facts = load_lcscmd_facts()
    path = _plan_file(tmp_path, SE)
    _record_done(path, len(SE) + 1)
    with pytest.raises(UsageError, match=r"records every step of .* as done; nothing is left to run"):
        open_plan(path, facts)
    done = open_plan(path, facts, finished_ok=True)
    assert done.finished and preview(done, facts) == []
    with Lab() as lab, lab_server(lab, OCS01) as server:
        with pytest.raises(UsageError, match="nothing is left to run"):
            execute(server, done, facts, acknowledged=("backups",))
        assert not lab.server(OCS01).files
    again = open_plan(path, facts, resume_from=1, finished_ok=True)  # told where: runs again
    assert not again.finished and again.start == 1


def test_unfinished_plan_is_not_finished_and_progress_still_needs_a_resume_step(tmp_path: Path) -> None:
    facts = load_lcscmd_facts()
    path = _plan_file(tmp_path, SE)
    assert not open_plan(path, facts, finished_ok=True).finished
    _record_done(path, 2)
    with pytest.raises(UsageError, match="continue with --resume-from 3"):
        open_plan(path, facts, finished_ok=True)
    with pytest.raises(UsageError, match="the plan has no step 0"):
        open_plan(path, facts, resume_from=0, finished_ok=True)


def test_acknowledgements_are_required_in_one_place(tmp_path: Path) -> None:
    from ocsps.deactivation.approved import require_acknowledgements

    plan = open_plan(_plan_file(tmp_path, SE), load_lcscmd_facts()).plan
    every = [c.id for c in plan.checklist]
    assert require_acknowledgements(plan, list(reversed(every))) == tuple(every)
    with pytest.raises(UsageError) as caught:
        require_acknowledgements(plan, ["backups"])
    missing = ", ".join(i for i in every if i != "backups")
    assert caught.value.message == f"acknowledge the checklist first; missing: {missing}; nothing was sent"
    assert caught.value.hint is not None and caught.value.hint.endswith("--ack " + ",".join(every))
    with pytest.raises(UsageError, match="'nope' is not on this plan's checklist"):
        require_acknowledgements(plan, [*every, "nope"])
