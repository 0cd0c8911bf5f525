"""Property tests: no text, however hostile, escapes the literal or comment it is written into.

For every generated value either ``check_value`` refuses it, or the quoted literal, embedded in a script,
parses cleanly under both grammars to exactly one string literal that PowerShell's rules decode back to
the value. Comments get the same treatment with ``comment_safe``/``comment_line``.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ocsps.errors import UsageError
from ocsps.powershell import syntax
from ocsps.powershell.quote import (
    DEFAULT_MAX_LENGTH,
    check_value,
    comment_line,
    comment_safe,
    quote_literal,
    resembles_signature_start,
)

NASTY_CHARS = (
    "'\u2018\u2019\u201a\u201b\"\u201c\u201d\u201e`$@(){}[];|&#<>%-\u2013\u2014\u2015:,.=!?*\\/ \t"
    "\n\r\x00\x0b\x0c\x1b\x7f\x85\u2028\u2029\u202e\u202d\u2066\u200b\u200c\u200d\u200e\ufeff\ufffe\ud800\udfff"
)

NASTY_FRAGMENTS = (
    "''",
    "'",
    "\u2019\u2019",
    "\u2018",
    "`",
    "``",
    "`'",
    "$(",
    "$()",
    "$(Get-Date)",
    "@(",
    "@()",
    "@{",
    "@'",
    "'@",
    '@"',
    '"@',
    "\n'@",
    "\r\n",
    "--%",
    "#>",
    "<#",
    "#",
    "# SIG # Begin signature block",
    "requires",
    "#requires -Version 7",
    "; Remove-Item C:\\ -Recurse",
    "| Out-Null",
    "&& whoami",
    "$env:PATH",
    "${x}",
    "\u202eevil\u202c",
    "x\u200by",
    "\u0645\u0631\u062d\u0628\u0627",
    "\U0001f600",
    "\U000e0041",
)

# Written text: single characters from the whole of Unicode (surrogates excluded by Hypothesis), the
# characters above (surrogates included), and fragments that mean something to PowerShell.
TEXT = st.lists(
    st.one_of(st.characters(), st.sampled_from(NASTY_CHARS), st.sampled_from(NASTY_FRAGMENTS)),
    max_size=40,
).map("".join)
LONG_TEXT = st.text(
    alphabet=st.sampled_from("ab'\u2019 $`#"),
    min_size=DEFAULT_MAX_LENGTH - 8,
    max_size=DEFAULT_MAX_LENGTH + 8,
)
ANY_TEXT = st.one_of(TEXT, TEXT, TEXT, LONG_TEXT)

CORPUS = (
    "",
    "'",
    "''",
    "it's",
    "\u2018smart\u2019 \u201aGerman\u2018 \u201breversed",
    "'; Remove-Item -Recurse C:\\ ; '",
    "\u2019; Stop-Computer -Force; \u2019",
    "$(Stop-Computer)",
    "@(1,2)",
    "`$x`n",
    "--% /Server:x",
    "#> <# comment",
    "'@\nWrite-Output pwned\n@'",
    "a & b | c ; d",
    "C:\\Program Files\\Common Files\\Microsoft Office Communications Server 2007\\LCSCmd.exe",
    "Patch KB1234 \u2013 approved by CAB\u00a0#42",
    "tab\tseparated",
    "x" * DEFAULT_MAX_LENGTH,
    "line\nbreak",
    "carriage\rreturn",
    "nul\x00byte",
    "sep\u2028arator",
    "next\x85line",
    "bidi \u202eoverride",
    "lone \ud800 surrogate",
    "x" * (DEFAULT_MAX_LENGTH + 1),
    "zero\u200bwidth\u200djoiner\ufeff",
    "\u05e9\u05dc\u05d5\u05dd '\u0645\u0631\u062d\u0628\u0627'",
)

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _accepted(stats: Counter[str], value: str, embedding: str) -> bool:
    stats[f"{embedding}:tried"] += 1
    try:
        check_value(value, what="generated value")
    except UsageError as error:
        assert "\n" not in str(error) and "\r" not in str(error)
        stats[f"{embedding}:refused"] += 1
        return False
    stats[f"{embedding}:accepted"] += 1
    return True


def _assert_round_trip(stats: Counter[str], script: str, value: str, embedding: str) -> None:
    findings = syntax.parse(script)
    try:
        decoded = syntax.single_literal_value(script)
    except syntax.NotASingleLiteral as error:
        stats[f"{embedding}:escaped"] += 1
        raise AssertionError(f"{embedding}: {error} for {value!r}") from error
    if findings or decoded != value:
        stats[f"{embedding}:escaped"] += 1
    tried = stats[f"{embedding}:tried"]
    escaped = stats[f"{embedding}:escaped"]
    assert not findings, f"{embedding}: {findings} for {value!r}"
    assert decoded == value, f"{embedding}: {escaped} of {tried} inputs escaped; {value!r} became {decoded!r}"


def _check_assignment(stats: Counter[str], value: str) -> None:
    if _accepted(stats, value, "assignment"):
        _assert_round_trip(stats, f"$x = {quote_literal(value)}\n", value, "assignment")


def _check_param_default(stats: Counter[str], value: str) -> None:
    if _accepted(stats, value, "param-default"):
        script = f"[CmdletBinding()]\nparam([string]$Reason = {quote_literal(value)})\nWrite-Output $Reason\n"
        _assert_round_trip(stats, script, value, "param-default")


def _check_comment(stats: Counter[str], value: str) -> None:
    stats["comment:tried"] += 1
    stats["comment:accepted"] += 1
    header = f"# Reason: {comment_safe(value)}"
    line = comment_line("Reason", value)
    for text in (header, line):
        script = f"{text}\nWrite-Output 1\n"
        problems = syntax.parse(script)
        calls = syntax.commands(script)
        kept = "\n" not in text and "\r" not in text and not problems
        kept = kept and [(c.name, c.arguments, c.line) for c in calls] == [("Write-Output", ("1",), 2)]
        for grammar in syntax.GRAMMARS:
            comments = _comments(script, grammar)
            kept = kept and comments == [text]
            kept = kept and syntax.commands(script, grammar=grammar) == calls
        if not kept:
            stats["comment:escaped"] += 1
        assert kept, f"comment escaped for {value!r}: {text!r} {problems} {calls}"
    assert not resembles_signature_start(line[1:]), line


def _comments(script: str, grammar: str) -> list[str]:
    """Texts of the comment nodes one grammar finds (through the module's cached parse)."""
    analysis = syntax._analyse(script)
    return [
        analysis.source.node_text(node)
        for node in syntax._walk(analysis.trees[grammar].root_node)
        if node.type == "comment"
    ]


@pytest.mark.parametrize("value", CORPUS)
def test_corpus_round_trips_or_is_refused(escape_stats: Counter[str], value: str) -> None:
    _check_assignment(escape_stats, value)
    _check_param_default(escape_stats, value)
    _check_comment(escape_stats, value)


@PROPERTY_SETTINGS
@given(ANY_TEXT)
@example("'\u2019\u2018\u201a\u201b'")
@example("'@\n")
def test_quoted_value_is_one_literal_in_an_assignment(escape_stats: Counter[str], value: str) -> None:
    _check_assignment(escape_stats, value)


@PROPERTY_SETTINGS
@given(ANY_TEXT)
def test_quoted_value_is_one_literal_as_a_param_default(escape_stats: Counter[str], value: str) -> None:
    _check_param_default(escape_stats, value)


@PROPERTY_SETTINGS
@given(ANY_TEXT)
@example("x\r\nWrite-Output pwned")
@example("SIG # Begin signature block")
@example("\ud800\u2028#>")
def test_comment_text_stays_one_comment(escape_stats: Counter[str], value: str) -> None:
    _check_comment(escape_stats, value)
