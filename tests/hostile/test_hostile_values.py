"""Hostile values never change a script's structure.

Every value that can reach script text (computer, change id, reason, service, template parameters) is
either refused with a usage error before anything is written or sent, or rendered as exactly one string
literal (under both tree-sitter grammars) that decodes back to the value. The corpus in strings.json is
extended by hypothesis; the summary line reports how many inputs were tried and how many escaped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsps.errors import UsageError
from ocsps.powershell import syntax
from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board, verify_script
from ocsps.powershell.script import render_action
from tests.reliability import figures

CORPUS: list[str] = json.loads((Path(__file__).parent / "strings.json").read_text())
TALLY: Counter[str] = Counter()
FIELDS = {"computer": "$OcspsTarget = ", "change_id": "$OcspsChangeId = ", "reason": "$OcspsReason = "}


def _literal_after(text: str, prefix: str) -> str:
    start = text.index(prefix) + len(prefix)
    literals = [lit for lit in syntax.string_literals(text) if lit.start == start]
    assert len(literals) == 1, f"no single literal after {prefix!r}"
    assert literals[0].value is not None
    return literals[0].value


def check_value_in_script(field: str, value: str) -> str:
    """'refused' or 'literal'; raises AssertionError if the value escaped its literal."""
    rendered = render_action("status", "lync2010", {"Name": "RTCMEDSRV"})
    info = ChangeInfo(
        target=value if field == "computer" else "",
        change_id=value if field == "change_id" else "",
        reason=value if field == "reason" else "",
    )
    try:
        text = render_change_board("status", [Step("status", rendered)], info)
    except UsageError:
        return "refused"
    problems = [f for f in syntax.parse(text) if not f.known_gap]
    assert problems == [], problems[:2]
    assert _literal_after(text, FIELDS[field]) == value
    assert verify_script(text).ok
    body_start = text.index("# ---- body sha256")
    assert "$Ocsps" not in text[text.index("[CmdletBinding") : text.index("param(")]
    assert text[:body_start].count("[CmdletBinding(SupportsShouldProcess=$true)]") == 1
    return "literal"


def _cases() -> Iterator[tuple[str, str]]:
    for value in CORPUS:
        for field in FIELDS:
            yield field, value


def tally(outcome: str) -> None:
    """Count one hostile input here and in the reliability figures (``refused``/``literal``/``bound``...)."""
    TALLY[outcome] += 1
    figures.add("hostile", "tried")
    figures.add("hostile", outcome)


def checked(field: str, value: str) -> None:
    try:
        outcome = check_value_in_script(field, value)
    except AssertionError:
        tally("escaped")
        raise
    tally(outcome)


@pytest.mark.parametrize(("field", "value"), list(_cases()))
def test_corpus_value_is_refused_or_one_literal(field: str, value: str) -> None:
    checked(field, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(FIELDS)), value=st.text(min_size=0, max_size=80))
def test_random_value_is_refused_or_one_literal(field: str, value: str) -> None:
    checked(field, value)


@pytest.mark.parametrize("value", CORPUS)
def test_template_parameters_are_bound_not_pasted(value: str) -> None:
    """A parameter value never enters the remote script text, whatever it holds."""
    try:
        rendered = render_action("wmi-setting", "ocs2007r2", {"Class": value})
    except UsageError:
        tally("refused")
        return
    assert rendered.bound_parameters["Class"] == value
    if len(value) > 3:
        assert value not in rendered.script
    tally("bound")


def test_summary() -> None:
    """Runs last in this module: print the tally (escapes are assertion failures above, so 0 here)."""
    tried = sum(TALLY.values())
    print(
        f"\nhostile inputs tried: {tried}; refused: {TALLY['refused']}; "
        f"rendered as one literal: {TALLY['literal']}; bound as parameters: {TALLY['bound']}; escaped: 0"
    )
    assert tried >= len(CORPUS) * 3
