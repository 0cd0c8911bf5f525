"""The fleet helpers keep what happened on each host: the exception, a typed state, skips, cancels."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from ocsps.errors import ConnectError, OcspsError, TimeoutExceeded, UsageError
from ocsps.jsonout import to_builtins
from ocsps.operations.fleet import (
    FleetRun,
    HostDocument,
    HostOutcome,
    HostState,
    Skip,
    run_changes,
    run_parallel,
    run_rolling,
)

HOSTS = ["a", "b", "c", "d"]
# What a host's work does: "ok", "bad" (judged a failure), "skip", "connect" (ConnectError), "bug".
Plan = dict[str, str]


def worker(plan: Plan, seen: list[str]) -> Callable[[str, threading.Event], str]:
    def work(host: str, cancel: threading.Event) -> str:
        seen.append(host)
        what = plan.get(host, "ok")
        if what == "skip":
            raise Skip("preflight failed")
        if what == "connect":
            raise ConnectError("refused", host=host)
        if what == "bug":
            raise KeyError(host)
        return what

    return work


def states(run: FleetRun[str]) -> list[str]:
    return [o.state.value for o in run.outcomes]


ROLLING_CASES = [
    # (plan, continue_on_failure, expected states, hosts tried)
    ({}, False, ["ok", "ok", "ok", "ok"], HOSTS),
    ({"b": "bad"}, False, ["ok", "failed", "skipped", "skipped"], ["a", "b"]),
    ({"b": "bad"}, True, ["ok", "failed", "ok", "ok"], HOSTS),
    ({"b": "connect", "c": "bug"}, True, ["ok", "failed", "failed", "ok"], HOSTS),
    ({"a": "skip"}, False, ["skipped", "ok", "ok", "ok"], HOSTS),
    ({"a": "skip", "c": "connect"}, False, ["skipped", "ok", "failed", "skipped"], ["a", "b", "c"]),
]


@pytest.mark.parametrize(("plan", "keep_going", "expected", "tried"), ROLLING_CASES)
def test_rolling_outcomes(plan: Plan, keep_going: bool, expected: list[str], tried: list[str]) -> None:
    seen: list[str] = []
    told: list[tuple[str, HostState]] = []
    run = run_rolling(
        HOSTS,
        worker(plan, seen),
        judge=lambda r: r == "ok",
        continue_on_failure=keep_going,
        on_outcome=lambda o: told.append((o.host, o.state)),
    )
    assert states(run) == expected and seen == tried
    assert told == [(o.host, o.state) for o in run.outcomes]  # every host heard once, in order
    assert all(isinstance(o.state, HostState) for o in run.outcomes)


@pytest.mark.parametrize(("plan", "keep_going", "expected", "tried"), ROLLING_CASES)
def test_run_changes_passes_the_options_on(
    plan: Plan, keep_going: bool, expected: list[str], tried: list[str]
) -> None:
    seen: list[str] = []
    run = run_changes(HOSTS, worker(plan, seen), judge=lambda r: r == "ok", continue_on_failure=keep_going)
    assert states(run) == expected and seen == tried
    wide = run_changes(HOSTS, worker(plan, []), parallel=2, judge=lambda r: r == "ok")
    assert "pending" not in states(wide) and "interrupted" not in states(wide)


def test_the_exception_is_kept_and_the_json_keeps_its_fields() -> None:
    run = run_parallel(HOSTS, worker({"a": "connect", "b": "bug", "c": "skip"}, []))
    a, b, c, d = run.outcomes
    assert isinstance(a.exception, ConnectError) and a.error == "a: refused" and a.exit_code == 3
    assert isinstance(b.exception, KeyError) and b.error.startswith("internal error: KeyError")
    assert isinstance(c.exception, Skip) and c.state is HostState.SKIPPED and c.step == "preflight failed"
    assert d.exception is None and d.state == "ok"  # a StrEnum: compares with the old strings
    assert _doc(a) == {"host": "a", "state": "failed", "step": "", "error": "a: refused"}
    assert _doc(c) == {"host": "c", "state": "skipped", "step": "preflight failed"}
    assert _doc(d) == {"host": "d", "state": "ok", "step": "", "result": "ok"}
    assert run.exit_code == 1


def _doc(outcome: HostOutcome[Any], view: Callable[[Any], object] | None = None) -> Any:
    return to_builtins(HostDocument.of(outcome, view))


@dataclass(frozen=True)
class Typed:
    phase: HostState
    when: datetime


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            [Typed(HostState.OK, datetime(2026, 1, 2, tzinfo=UTC))],
            [{"phase": "ok", "when": "2026-01-02T00:00:00+00:00"}],
        ),
        ({"x": (1, HostState.OK)}, {"x": [1, "ok"]}),
        (datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "2026-01-02T03:04:00+00:00"),
        (3.5, 3.5),
        (
            Typed(HostState.OK, datetime(2026, 1, 2, tzinfo=UTC)),
            {"phase": "ok", "when": "2026-01-02T00:00:00+00:00"},
        ),
    ],
)
def test_results_are_written_by_default(result: object, expected: object) -> None:
    outcome: HostOutcome[object] = HostOutcome("h", HostState.OK, result)
    assert _doc(outcome)["result"] == expected
    json.dumps(_doc(outcome))
    assert _doc(outcome, lambda r: "mine")["result"] == "mine"


def test_a_result_that_cannot_be_written_is_said_not_dropped() -> None:
    with pytest.raises(TypeError, match="cannot write a object as JSON"):
        _doc(HostOutcome("h", HostState.OK, object()))


def test_a_cancelled_host_is_interrupted_not_failed() -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def work(host: str, stop: threading.Event) -> str:
        seen.append(host)
        if host == "b":
            cancel.set()  # the caller cancels while b works; b notices and gives up
            raise TimeoutExceeded("polling stopped", host=host)
        return "ok"

    run = run_rolling(HOSTS, work, cancel=cancel)
    assert states(run) == ["ok", "interrupted", "interrupted", "interrupted"] and seen == ["a", "b"]
    assert run.interrupted and run.exit_code == 130
    assert isinstance(run.outcomes[1].exception, OcspsError)


def test_a_judged_result_after_a_cancel_is_interrupted() -> None:
    def work(host: str, cancel: threading.Event) -> str:
        cancel.set()
        return "left draining"

    run = run_parallel(["a"], work, judge=lambda r: r == "ok")
    assert states(run) == ["interrupted"] and run.exit_code == 130


def test_the_deadline_cancels_the_host_at_work_and_skips_the_rest() -> None:
    def work(host: str, cancel: threading.Event) -> str:
        if not cancel.wait(30):  # ends only when the run's deadline sets the event
            return "ok"
        raise TimeoutExceeded("stopped at the deadline", host=host)

    run = run_rolling(["a", "b"], work, deadline=0.05)
    assert states(run) == ["interrupted", "skipped"] and run.deadline_passed
    assert run.outcomes[1].step == "deadline reached before this host"
    assert run.exit_code == 4 and not run.interrupted
    wide = run_parallel(["a", "b"], work, deadline=0.05, parallel=2)
    assert states(wide) == ["interrupted", "interrupted"] and wide.exit_code == 4
    narrow = run_parallel(["a", "b"], work, deadline=0.05, parallel=1)
    assert states(narrow) == ["interrupted", "skipped"] and narrow.exit_code == 4
    assert narrow.outcomes[1].step == "deadline reached before this host"


def test_a_bad_deadline_is_refused() -> None:
    with pytest.raises(UsageError):
        run_parallel(["a"], worker({}, []), deadline=0)


def test_a_failing_callback_stops_the_run_and_propagates() -> None:
    def boom(outcome: HostOutcome[str]) -> None:
        raise RuntimeError("callback bug")

    cancel = threading.Event()
    with pytest.raises(RuntimeError):
        run_rolling(HOSTS, worker({}, []), on_outcome=boom, cancel=cancel)
    assert cancel.is_set()


def test_outcomes_convert_with_asdict() -> None:
    outcome: HostOutcome[str] = HostOutcome("a", HostState.FAILED, None, "refused", 3)
    assert dataclasses.asdict(outcome)["state"] == "failed"


def test_plain_state_strings_still_build_outcomes() -> None:
    outcome: HostOutcome[str] = HostOutcome("a", state="failed", exit_code=3)  # type: ignore[arg-type]
    assert outcome.state is HostState.FAILED and FleetRun([outcome]).exit_code == 3
    with pytest.raises(ValueError):
        HostOutcome("a", state="fine")  # type: ignore[arg-type]


def test_a_cancel_after_every_host_ended_changes_nothing() -> None:
    cancel = threading.Event()

    def work(host: str, stop: threading.Event) -> str:
        return "ok"

    def last(outcome: HostOutcome[str]) -> None:
        if outcome.host == "b":
            cancel.set()

    run = run_parallel(["a", "b"], work, cancel=cancel, parallel=1, on_outcome=last)
    assert states(run) == ["ok", "ok"] and not run.interrupted and run.exit_code == 0
