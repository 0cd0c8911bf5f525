"""``RollOptions``: one reading of a roll's timing options for the CLI, the Ansible modules, the library."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ocsps.errors import UsageError
from ocsps.pool import RollOptions

PARSED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    # (given, parsed)
    ({"stable_for": "0"}, {"stable_for": 0.0}),
    ({"stable_for": "0s"}, {"stable_for": 0.0}),
    ({"stable_for": " 0m "}, {"stable_for": 0.0}),
    ({"stable_for": "0.0"}, {"stable_for": 0.0}),
    ({"stable_for": 0}, {"stable_for": 0.0}),
    ({"stable_for": "20m"}, {"stable_for": 1200.0}),
    ({"busy_interval": "1h30m", "ready_poll": 0.05}, {"busy_interval": 5400.0, "ready_poll": 0.05}),
    ({"max_busy": 2}, {"max_busy": 2}),
    ({"max_busy": "5"}, {"max_busy": 5}),
    ({"draining_timeout": None, "wait_time": None}, {"draining_timeout": None, "wait_time": None}),
]

REFUSED: list[tuple[dict[str, Any], str]] = [
    # (given, the refusal)
    ({"busy_interval": "0"}, "busy_interval: duration '0' is out of range"),
    ({"service_poll": "0s"}, "service_poll: duration '0s' is out of range"),
    ({"drain_timeout": "soon"}, "drain_timeout: cannot read duration 'soon'"),
    ({"stable_for": "00x"}, "stable_for: cannot read duration"),
    ({"stable_for": -1}, "stable_for must be 0 and at most 7 days"),
    ({"ready_poll": 0}, "ready_poll must be more than 0"),
    ({"ready_poll": math.inf}, "ready_poll must be more than 0"),
    ({"wait_time": 8 * 24 * 3600}, "wait_time must be more than 0 and at most 7 days"),
    ({"wait_time": True}, "wait_time must be"),
    ({"max_busy": 0}, "max_busy must be at least 1"),
    ({"max_busy": -3}, "max_busy must be at least 1"),
    ({"max_busy": "three"}, "max_busy must be a whole number"),
    ({"max_busy": 2.5}, "max_busy must be at least 1"),
]


@pytest.mark.parametrize(("given", "parsed"), PARSED)
def test_timings_are_parsed(given: dict[str, Any], parsed: dict[str, Any]) -> None:
    assert RollOptions.parse_timings(**given) == parsed


@pytest.mark.parametrize(("given", "message"), REFUSED)
def test_timings_are_refused_with_the_option(given: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        RollOptions.parse_timings(**given)
    assert message in caught.value.message


def test_a_refusal_names_the_option_as_the_caller_spells_it() -> None:
    with pytest.raises(UsageError, match=r"^--poll: duration '0' is out of range"):
        RollOptions.parse_timings({"service_poll": "--poll"}, service_poll="0")


def test_an_unknown_timing_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="stable"):
        RollOptions.parse_timings(stable="1m")


IN_SECONDS = [(g, m) for g, m in REFUSED if not any(isinstance(v, str) for v in g.values())]
"""The refusals of values in seconds: what a library caller hands ``defaults`` directly."""


@pytest.mark.parametrize(("given", "message"), IN_SECONDS)
def test_library_callers_meet_the_same_rules(given: dict[str, Any], message: str) -> None:
    """``defaults`` (and every other way a ``RollOptions`` is made) refuses what ``parse_timings`` refuses."""
    with pytest.raises(UsageError) as caught:
        RollOptions.defaults(**given)
    assert message in caught.value.message


def test_from_text_is_defaults_with_parsed_timings() -> None:
    options = RollOptions.from_text(stable_for="0", max_busy=1, force_failover=True)
    assert options == RollOptions.defaults(stable_for=0.0, max_busy=1, force_failover=True)
    assert options.stable_for == 0.0 and options.force_failover is True
