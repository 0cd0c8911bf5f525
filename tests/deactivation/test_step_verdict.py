"""When a deactivation step counts as done: every LcsCmd log sample in tests/data/lcscmd_logs.

The samples (success, partial failure, all failed, missing result, HTML, text, truncated, empty, binary,
entities ...) and their parsed form are tested with the log parser; here each one goes through the
verdict the runner applies, which must be "done" exactly for the logs whose every task reads Success.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps.deactivation.run import log_excerpt, step_verdict
from ocsps.results import LcsCmdOutcome
from tests.conftest import DATA

LOGS = DATA / "lcscmd_logs"
SAMPLES = sorted(p for p in LOGS.iterdir() if p.suffix in (".xml", ".html", ".txt"))


def _expected_success(path: Path) -> bool:
    expected = json.loads(path.with_name(f"{path.stem}.expected.json").read_text(encoding="utf-8"))
    return bool(expected.get("all_succeeded")) and not expected.get("error")


def test_the_samples_cover_success_failure_and_unreadable() -> None:
    outcomes = {_expected_success(p) for p in SAMPLES}
    assert outcomes == {True, False}
    assert {"success", "partial_failure", "unreadable_binary", "truncated", "empty"} <= {
        p.stem for p in SAMPLES
    }


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_step_is_done_only_on_success_for_every_task(path: Path) -> None:
    outcome = LcsCmdOutcome.create(
        exit_code=0, log=path.read_bytes(), log_path=rf"C:\Windows\Temp\{path.name}"
    )
    reason = step_verdict(outcome)
    assert (reason is None) is _expected_success(path), reason
    assert outcome.log_text is not None  # the raw log is kept, readable or not
    if reason is not None:
        assert "\n" not in reason


@pytest.mark.parametrize("path", [p for p in SAMPLES if _expected_success(p)], ids=lambda p: p.name)
def test_a_successful_log_with_a_nonzero_exit_code_is_not_done(path: Path) -> None:
    outcome = LcsCmdOutcome.create(exit_code=3, log=path.read_bytes())
    assert step_verdict(outcome) == "LcsCmd exited with code 3"


def test_failed_tasks_are_named_even_when_the_exit_code_already_fails() -> None:
    outcome = LcsCmdOutcome.create(exit_code=1, log=(LOGS / "partial_failure.xml").read_bytes())
    reason = step_verdict(outcome)
    assert reason is not None
    assert reason.startswith("LcsCmd exited with code 1; 1 of 3 tasks did not report Success:")
    assert "Remove conferencing objects: Failure" in reason


def test_the_scripts_own_check_must_agree() -> None:
    """The change-board copy of the rule runs on the server too; when it disagrees the step is not done."""
    log = (LOGS / "success.xml").read_bytes()
    agree = LcsCmdOutcome.create(exit_code=0, log=log, extra={"ScriptVerdict": True, "ScriptReason": ""})
    assert step_verdict(agree) is None
    disagree = LcsCmdOutcome.create(
        exit_code=0,
        log=log,
        extra={"ScriptVerdict": False, "ScriptReason": "2 of 4 tasks did not report Success"},
    )
    assert (
        step_verdict(disagree)
        == "the script's own check of the log disagrees: 2 of 4 tasks did not report Success"
    )


def test_no_log_and_no_exit_code_are_failures() -> None:
    assert step_verdict(LcsCmdOutcome.create(exit_code=0, log=None)) == "the LcsCmd log was not read"
    assert step_verdict(LcsCmdOutcome.create(exit_code=None, log="x")) == "LcsCmd returned no exit code"


def test_log_excerpt_shows_the_failing_task_first() -> None:
    outcome = LcsCmdOutcome.create(exit_code=1, log=(LOGS / "partial_failure.xml").read_bytes())
    excerpt = log_excerpt(outcome)
    assert any("Remove conferencing objects" in line for line in excerpt)
    assert any("Access is denied" in line for line in excerpt)
    assert len(excerpt) <= 20
    plain = LcsCmdOutcome.create(exit_code=0, log=(LOGS / "success.xml").read_bytes())
    assert log_excerpt(plain, limit=3) == (plain.log_text or "").splitlines()[:3]
