"""Unit tests of restart_plan and deactivate: what they decide before (or instead of) connecting."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import deactivate, restart_plan

pytest.importorskip("ocsps")

DEFAULT_PORT = "MSFT_SIPRoutingSetting.DefaultPort"


def _run(monkeypatch, capsys, module, check_mode=False, **args):
    def no_connection(*_args, **_kwargs):
        raise AssertionError("the module connected")

    monkeypatch.setattr(module, "open_server", no_connection)
    args.update(_ansible_check_mode=check_mode)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_a_plan_alone_needs_no_server(monkeypatch, capsys):
    result = _run(monkeypatch, capsys, restart_plan, product="ocs2007r2", changed=[DEFAULT_PORT])
    assert result["changed"] is False and result["plan"]["services"]
    assert "report" not in result


def test_running_the_plan_in_check_mode_predicts_and_connects_nowhere(monkeypatch, capsys):
    result = _run(
        monkeypatch, capsys, restart_plan, True, host="ocs01.contoso.com", product="ocs2007r2",
        changed=[DEFAULT_PORT], run=True,
    )
    assert result["changed"] is True and "report" not in result


def test_an_unknown_setting_fails_with_the_librarys_message(monkeypatch, capsys):
    result = _run(monkeypatch, capsys, restart_plan, product="ocs2007r2", changed=["MSFT_Nothing.Port"])
    assert result["failed"] is True and result["exit_code"] == 2 and "unknown WMI class" in result["msg"]


@pytest.fixture
def plan_file(tmp_path):
    from ocsps.deactivation.plan import PLAN_KIND, plan_deactivation, plan_document
    from ocsps.plans.sealed import save_plan

    path = tmp_path / "plan.json"
    roles = ["av-conferencing", "web-conferencing", "web-components", "front-end"]
    plan = plan_deactivation("ocs01.contoso.com", product="ocs2007r2", roles=roles)
    save_plan(path, PLAN_KIND, plan_document(plan))
    return path


def test_deactivation_rehearsal_lists_steps_and_missing_acknowledgements(monkeypatch, capsys, plan_file):
    result = _run(monkeypatch, capsys, deactivate, True, plan=str(plan_file), acknowledge=["backups"])
    assert result["changed"] is True and result["computer"] == "ocs01.contoso.com"
    assert [s["step"] for s in result["steps"]] == [1, 2, 3, 4, 5]
    assert "backups" not in result["missing_acknowledgements"]


def test_unacknowledged_checklist_fails_before_connecting(monkeypatch, capsys, plan_file):
    result = _run(monkeypatch, capsys, deactivate, plan=str(plan_file))
    assert result["failed"] is True and "acknowledge the checklist first" in result["msg"]


def test_an_edited_plan_is_refused(monkeypatch, capsys, plan_file):
    plan_file.write_text(plan_file.read_text(encoding="utf-8").replace("ocs01", "ocs02"), encoding="utf-8")
    result = _run(monkeypatch, capsys, deactivate, plan=str(plan_file), acknowledge=["backups"])
    assert result["failed"] is True and "changed after it was written" in result["msg"]


def test_a_plan_for_another_product_is_refused(monkeypatch, capsys, plan_file):
    result = _run(monkeypatch, capsys, deactivate, plan=str(plan_file), product="sfb2015")
    assert result["failed"] is True and "the plan is for ocs2007r2" in result["msg"]


def _cli_refusal(capsys, *args):
    """The command line's refusal (message, hint) for the same input: what the module must say too."""
    from ocsps.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    message = next(line.split("error: ", 1)[1] for line in lines if "error: " in line)
    hint = next((line.split("hint: ", 1)[1] for line in lines if line.startswith("hint: ")), None)
    return message, hint


def test_missing_acknowledgement_is_the_command_lines_refusal(monkeypatch, capsys, plan_file):
    result = _run(monkeypatch, capsys, deactivate, plan=str(plan_file), acknowledge=["backups"])
    message, hint = _cli_refusal(capsys, "deactivate", "run", "--plan", str(plan_file), "--ack", "backups")
    assert result["failed"] is True and result["exit_code"] == 2
    assert (result["msg"], result["hint"]) == (message, hint)


def _record_done(plan_file, through):
    """Write the journal a run leaves when steps 1..through succeeded."""
    from ocsps.deactivation.approved import open_plan
    from ocsps.deactivation.plan import load_lcscmd_facts
    from ocsps.deactivation.run import OK, StepResult

    approved = open_plan(plan_file, load_lcscmd_facts(), resume_from=1)
    for step in approved.plan.steps[:through]:
        approved.journal.record(StepResult(step.number, step.do, step.label, OK, role=step.role))


def test_a_resume_step_the_library_refuses_is_refused(monkeypatch, capsys, plan_file):
    result = _run(monkeypatch, capsys, deactivate, True, plan=str(plan_file), resume_from=0)
    assert result["failed"] is True and "the plan has no step 0" in result["msg"]


def test_recorded_progress_without_a_resume_step_is_refused(monkeypatch, capsys, plan_file):
    _record_done(plan_file, 2)
    result = _run(monkeypatch, capsys, deactivate, True, plan=str(plan_file))
    assert result["failed"] is True and "continue with --resume-from 3" in result["msg"]
    resumed = _run(monkeypatch, capsys, deactivate, True, plan=str(plan_file), resume_from=3)
    assert resumed["changed"] is True and [s["step"] for s in resumed["steps"]] == [3, 4, 5]


def test_a_finished_plan_is_ok_and_unchanged(monkeypatch, capsys, plan_file):
    _record_done(plan_file, 5)
    for check_mode in (False, True):
        result = _run(monkeypatch, capsys, deactivate, check_mode, plan=str(plan_file))
        assert result["changed"] is False and "failed" not in result
        assert "every step" in result["msg"] and result["computer"] == "ocs01.contoso.com"
    again = _run(monkeypatch, capsys, deactivate, True, plan=str(plan_file), resume_from=1)
    assert again["changed"] is True and [s["step"] for s in again["steps"]] == [1, 2, 3, 4, 5]


def test_a_run_audits_the_decisions_after_a_lost_reply(monkeypatch, capsys, tmp_path):
    """What the run decides after a lost reply reaches the audit log, as ``ocsps restart`` writes it."""
    from ocsps.operations.restart import RestartReport, RunPhase, StepOutcome, StepResult

    note = "stop: the reply was lost; a re-read shows Stopped, so it ran; not sent again"

    class _Server:
        host = "ocs01.contoso.com"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def run_restart_plan(self, plan, *, restore, deadline, on_decision):
            on_decision(note)
            step = StepResult(1, "stop", "RTCSRV", "Front-End", StepOutcome.DONE)
            return RestartReport(self.host, "ocs2007r2", RunPhase.COMPLETED, (step,))

    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    args = dict(host="ocs01.contoso.com", product="ocs2007r2", changed=[DEFAULT_PORT], run=True,
                change_id="CHG-3", _ansible_check_mode=False)
    monkeypatch.setattr(restart_plan, "open_server", lambda module, timeout: _Server())
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        restart_plan.main()
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is True and result["report"]["ok"] is True, result
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    (decided,) = [line for line in lines if line["outcome"].startswith("decided:")]
    assert decided["outcome"] == f"decided: {note}" and decided["action"] == "restart"
    assert decided["parameters"] == {} and decided["change_id"] == "CHG-3"
