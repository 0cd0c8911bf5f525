"""Random input to the text parsers: they return typed results or raise their own error, nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsps.results import ActivityLevel, Counter, LcsCmdOutcome, parse_activity_level
from ocsps.results.lcscmd_log import LcsCmdLog, LcsCmdLogError, parse_lcscmd_log

FUZZ = settings(deadline=None, max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow])

# Text built from the pieces the parsers look for, so that the fuzzer reaches the deeper branches.
_PIECES = st.sampled_from(
    [
        "=",
        ",",
        "\n",
        "\r\n",
        "\t",
        "  ",
        "|",
        ":",
        ".",
        "0",
        "1.5",
        "-",
        "Calls",
        "Execution Result",
        "Execution Result:",
        "Success",
        "Failure",
        "Task:",
        "Action:",
        "Detail:",
        "<Task",
        "<Task>",
        "</Task>",
        "<Action Name='a'>",
        "</Action>",
        "<ExecutionResult>",
        "</ExecutionResult>",
        "<table>",
        "</table>",
        "<tr>",
        "<th>",
        "<td>",
        "</td>",
        "<td colspan='3'>",
        "<html>",
        "<?xml version='1.0'?>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "&amp;",
        "&#",
        "<!ENTITY",
        "<!DOCTYPE x>",
        "\x00",
        "\ufeff",
        "\ud800",
    ]
)
_TEXT = st.one_of(st.text(max_size=400), st.lists(_PIECES | st.text(max_size=8), max_size=60).map("".join))


@FUZZ
@given(_TEXT)
def test_activity_level_never_raises_on_text(text: str) -> None:
    level = parse_activity_level(text)
    assert isinstance(level, ActivityLevel)
    assert level.raw == text
    assert all(isinstance(c, Counter) and c.name for c in level.counters)
    assert isinstance(level.total, int | float)
    if level.is_idle:
        assert level.counters and not level.unparsed


@FUZZ
@given(st.one_of(_TEXT, st.binary(max_size=400), _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_lcscmd_log_raises_only_its_own_error(data: str | bytes) -> None:
    try:
        log = parse_lcscmd_log(data)
    except LcsCmdLogError as exc:
        assert exc.reason
        lenient = parse_lcscmd_log(data, strict=False)
        assert lenient.error == exc.reason and not lenient.all_succeeded
        return
    assert isinstance(log, LcsCmdLog)
    assert log.tasks and log.error is None and log.format is not None


@FUZZ
@given(st.one_of(st.none(), st.integers(-5, 5)), st.one_of(st.none(), _TEXT, st.binary(max_size=200)))
def test_outcome_never_raises_and_needs_positive_evidence(
    exit_code: int | None, log: str | bytes | None
) -> None:
    outcome = LcsCmdOutcome.create(exit_code=exit_code, log=log)
    if outcome.succeeded:
        assert exit_code == 0 and outcome.tasks and all(task.succeeded for task in outcome.tasks)
    else:
        assert outcome.failure_reason
