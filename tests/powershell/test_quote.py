"""Examples for the quoting helpers: what is accepted, what is refused, and how refusals read."""

from __future__ import annotations

import pytest

from ocsps.errors import UsageError
from ocsps.powershell import quote, syntax
from ocsps.powershell.quote import (
    DEFAULT_MAX_LENGTH,
    check_value,
    comment_line,
    comment_safe,
    quote_array,
    quote_bool,
    quote_int,
    quote_literal,
    resembles_signature_start,
)


def test_the_five_single_quotes_are_the_ones_powershell_knows() -> None:
    expected = {"\u0027", "\u2018", "\u2019", "\u201a", "\u201b"}
    assert set(quote.SINGLE_QUOTES) == expected
    assert set(syntax.SINGLE_QUOTES) == expected
    assert set(quote.DOUBLE_QUOTES) == set(syntax.DOUBLE_QUOTES) == {'"', "\u201c", "\u201d", "\u201e"}


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("", "''"),
        ("RTCSRV", "'RTCSRV'"),
        ("it's", "'it''s'"),
        ("\u2018a\u2019", "'\u2018\u2018a\u2019\u2019'"),
        ("\u201ax\u201b", "'\u201a\u201ax\u201b\u201b'"),
        ('say "hi" $(Get-Date) `n', "'say \"hi\" $(Get-Date) `n'"),
        ("tab\there", "'tab\there'"),
    ],
)
def test_quote_literal(value: str, literal: str) -> None:
    assert quote_literal(value) == literal
    assert syntax.single_literal_value(literal) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("a\x00b", "NUL"),
        ("a\nb", "line break (U+000A) at character 2"),
        ("a\rb", "line break (U+000D)"),
        ("a\x85b", "line break (U+0085)"),
        ("a\u2028b", "line break (U+2028)"),
        ("a\u2029b", "line break (U+2029)"),
        ("a\x1bb", "control character (U+001B)"),
        ("a\x9bb", "control character (U+009B)"),
        ("a\ud800b", "lone surrogate (U+D800)"),
        ("a\u202eb", "bidirectional text control (U+202E)"),
        ("a\u2066b", "bidirectional text control (U+2066)"),
        ("a\ufffeb", "noncharacter (U+FFFE)"),
    ],
)
def test_check_value_refuses_with_one_line_naming_the_code_point(value: str, fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_value(value, what="reason")
    message = str(caught.value)
    assert message.startswith("reason contains ")
    assert fragment in message
    assert "\n" not in message and "\r" not in message and value[1] not in message


def test_check_value_length_limit_is_configurable() -> None:
    assert check_value("x" * DEFAULT_MAX_LENGTH, what="reason") == "x" * DEFAULT_MAX_LENGTH
    with pytest.raises(UsageError, match="1025 characters long; the limit is 1024"):
        check_value("x" * (DEFAULT_MAX_LENGTH + 1), what="reason")
    with pytest.raises(UsageError, match="limit is 3"):
        quote_literal("abcd", what="pool", max_length=3)
    assert check_value("abc", what="pool", max_length=3) == "abc"


def test_check_value_keeps_harmless_unicode() -> None:
    for value in (
        "caf\u00e9",
        "\u05e9\u05dc\u05d5\u05dd",
        "\U0001f600",
        "zero\u200bwidth",
        "nbsp\u00a0x",
        "a\tb",
    ):
        assert check_value(value, what="reason") == value


def test_check_value_refuses_non_text() -> None:
    with pytest.raises(UsageError, match="must be text, not int"):
        check_value(5, what="reason")  # type: ignore[arg-type]


def test_quote_literal_checks_first() -> None:
    with pytest.raises(UsageError, match="service name contains a line break"):
        quote_literal("RTCSRV\nStop-Computer", what="service name")


def test_quote_array() -> None:
    assert quote_array(["RTCSRV", "it's"]) == "@('RTCSRV','it''s')"
    assert quote_array([]) == "@()"
    with pytest.raises(UsageError, match="not a single string"):
        quote_array("RTCSRV")
    with pytest.raises(UsageError, match=r"services\[1\] contains a line break"):
        quote_array(["a", "b\n"], what="services")


def test_quote_int_and_bool() -> None:
    assert quote_int(600) == "600"
    assert quote_int(-5) == "(-5)"
    assert quote_bool(True) == "$true"
    assert quote_bool(False) == "$false"
    with pytest.raises(UsageError):
        quote_int(True)
    with pytest.raises(UsageError):
        quote_int(2**63)
    with pytest.raises(UsageError):
        quote_bool(1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("plain text", "plain text"),
        ("a\nb", "a\\u000Ab"),
        ("a\r\nb", "a\\u000D\\u000Ab"),
        ("a\u2028b\x85c", "a\\u2028b\\u0085c"),
        ("end #> start <#", "end \\u0023> start <\\u0023"),
        ("<#>", "<\\u0023>"),
        (">x<", "\\u003Ex\\u003C"),
        ("requires -Version 7", "\\u0072equires -Version 7"),
        ("bidi\u202etext", "bidi\\u202Etext"),
        ("lone\ud800", "lone\\uD800"),
        ("tag\U000e0041", "tag\\U000E0041"),
        ("tab\tkept", "tab\tkept"),
        ("C:\\Temp\\x", "C:\\Temp\\x"),
    ],
)
def test_comment_safe(value: str, safe: str) -> None:
    assert comment_safe(value) == safe


@pytest.mark.parametrize(
    "value",
    [
        "SIG # Begin signature block",
        "sig#beginsignatureblock",
        "SIG Begin signature block",
        "# SIG # End signature block",
    ],
)
def test_comment_line_avoids_signature_look_alike(value: str) -> None:
    line = comment_line("Reason", value)
    assert line.startswith("# Reason: ")
    assert line.endswith("[text resembles a script signature marker]")
    assert not resembles_signature_start(line[1:])


def test_comment_line_leaves_ordinary_text_alone() -> None:
    assert comment_line("Reason", "monthly patching, CAB 1234") == "# Reason: monthly patching, CAB 1234"
    assert resembles_signature_start(" SIG # Begin signature block")
    assert not resembles_signature_start(" Reason: monthly patching, CAB 1234")
    with pytest.raises(UsageError):
        comment_line("Reason\n", "x")
