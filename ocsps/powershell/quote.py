"""Put operator-supplied values into PowerShell script text so that they stay data.

Rendered scripts are handed to change boards as .ps1 files and run on PowerShell 2.0 through 5.1. A value
written into such a script must not be able to end its string literal, start code, or end a header comment,
and it must decode to exactly what the operator typed. The rules below follow PowerShell's own tokenizer
(about_Quoting_Rules, and ``CharTraits.cs`` / ``tokenizer.cs`` in the PowerShell source):

* A single-quoted string is verbatim: no ``$`` expansion, no backtick escapes, and it may span lines. Its
  only special characters are the five that PowerShell counts as a single quote: U+0027 and the typographic
  U+2018, U+2019, U+201A, U+201B (pasted from Word or a web page, they still open and close strings). Two of
  them in a row stand for one (the tokenizer keeps the second), so doubling each with itself is exact.
* A ``#`` comment ends only at CR or LF, but U+2028, U+0085 and friends still look like line breaks in
  editors and diff viewers, so comment text spells every invisible or line-breaking character out.
* PowerShell refuses code placed after a comment that looks like the start of a signature block
  (``# SIG # Begin signature block``; compared after dropping whitespace and lower-casing, with an edit
  distance below 10), so a header comment built from an operator's text is kept clear of that shape.

Values are refused rather than transformed when they cannot be written faithfully and readably: control
characters (NUL ends the input for the static checkers, CR/LF would split a reviewed line), line and
paragraph separators, lone surrogates, Unicode noncharacters and bidirectional controls (which make a
reviewed line read differently from how it runs). Tab is accepted: PowerShell and both grammars used by
``ocsps.powershell.syntax`` keep it as ordinary string content.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from ocsps.errors import UsageError

DEFAULT_MAX_LENGTH = 1024
"""Longest value accepted by default, in characters: enough for a change reason, short enough to review."""

SINGLE_QUOTES: frozenset[str] = frozenset("'\u2018\u2019\u201a\u201b")
"""Characters PowerShell's tokenizer treats as a single quote (``CharExtensions.IsSingleQuote``)."""

DOUBLE_QUOTES: frozenset[str] = frozenset('"\u201c\u201d\u201e')
"""Characters PowerShell's tokenizer treats as a double quote (``CharExtensions.IsDoubleQuote``)."""

DASHES: frozenset[str] = frozenset("-\u2013\u2014\u2015")
"""Characters PowerShell accepts wherever it accepts ``-`` (parameters, operators)."""

_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x85\u2028\u2029")

_INT64_MAX = 2**63 - 1

# PowerShell's signature look-alike check (tokenizer.cs, ScanToEndOfCommentLine).
_SIGNATURE_TEXT = "sig#beginsignatureblock\n"
_SIGNATURE_THRESHOLD = 10
# Our model of the check differs from .NET in small ways (ToLowerInvariant, the line terminator it keeps),
# so it errs on the side of "resembles" by this many edits.
_SIGNATURE_MARGIN = 2
_SIGNATURE_MARKER = " [text resembles a script signature marker]"


def _is_noncharacter(codepoint: int) -> bool:
    return 0xFDD0 <= codepoint <= 0xFDEF or (codepoint & 0xFFFE) == 0xFFFE


def _refusal(ch: str) -> tuple[str, str] | None:
    """What ``ch`` is and why it may not go into a script literal, or None when it may."""
    if ch == "\t":
        return None
    codepoint = ord(ch)
    category = unicodedata.category(ch)
    cannot = "it cannot be written into a PowerShell script"
    if codepoint == 0:
        return "a NUL character", cannot
    if ch in _LINE_BREAKS:
        return "a line break", "a value must stay on its script line"
    if category == "Cc":
        return "a control character", cannot
    if category == "Cs":
        return "a lone surrogate", "it is not valid Unicode text"
    if ch in _BIDI_CONTROLS:
        return "a bidirectional text control", "it can make the script read differently from how it runs"
    if _is_noncharacter(codepoint):
        return "a Unicode noncharacter", cannot
    return None


def _escape(ch: str) -> str:
    codepoint = ord(ch)
    return f"\\u{codepoint:04X}" if codepoint <= 0xFFFF else f"\\U{codepoint:08X}"


def _label(what: str) -> str:
    """Make a caller's description of a value safe to print on one line."""
    text = " ".join(str(what).split())
    return comment_safe(text) if text else "value"


def check_value(value: str, *, what: str, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Return ``value`` unchanged if it may be written into a script, else raise UsageError.

    The message is one line naming ``what`` and the offending character by code point, never echoing the
    character itself: a raw control character in an error message would corrupt the terminal or log.
    """
    label = _label(what)
    if not isinstance(value, str):
        raise UsageError(f"{label} must be text, not {type(value).__name__}")
    if max_length < 0:
        raise ValueError("max_length must not be negative")
    if len(value) > max_length:
        raise UsageError(f"{label} is {len(value)} characters long; the limit is {max_length}")
    for index, ch in enumerate(value):
        refusal = _refusal(ch)
        if refusal is not None:
            what_it_is, why = refusal
            raise UsageError(
                f"{label} contains {what_it_is} (U+{ord(ch):04X}) at character {index + 1}; {why}"
            )
    return value


def quote_literal(value: str, *, what: str = "value", max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Return a single-quoted PowerShell literal that decodes to exactly ``value``.

    The value is checked first (see ``check_value``), so a template cannot bypass the refusal rules by
    calling this directly.
    """
    check_value(value, what=what, max_length=max_length)
    return "'" + "".join(ch + ch if ch in SINGLE_QUOTES else ch for ch in value) + "'"


def quote_array(values: Iterable[str], *, what: str = "value", max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Return ``@('a','b')`` for a list of strings; an empty list gives ``@()``.

    ``@(...)`` keeps a one-element list an array on PowerShell 2.0, where ``'a'`` alone would be a scalar.
    A bare string is refused instead of being split into characters.
    """
    if isinstance(values, str):
        raise UsageError(f"{_label(what)} must be a list of strings, not a single string")
    items = [
        quote_literal(item, what=f"{what}[{index}]", max_length=max_length)
        for index, item in enumerate(values)
    ]
    return "@(" + ",".join(items) + ")"


def quote_int(value: int, *, what: str = "value") -> str:
    """Return an integer literal; negative numbers are parenthesised so they read the same in argument mode.

    Booleans are refused (``True`` is an ``int`` in Python, but ``1`` is not what the operator meant), and
    so are values outside Int64, which PowerShell would silently turn into a decimal or double.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{_label(what)} must be an integer, not {type(value).__name__}")
    if not -_INT64_MAX <= value <= _INT64_MAX:
        raise UsageError(f"{_label(what)} is outside the 64-bit integer range")
    return f"({value})" if value < 0 else str(value)


def quote_bool(value: bool, *, what: str = "value") -> str:
    """Return ``$true`` or ``$false``; anything but a real bool is refused rather than guessed."""
    if not isinstance(value, bool):
        raise UsageError(f"{_label(what)} must be true or false, not {type(value).__name__}")
    return "$true" if value else "$false"


def _needs_escape_in_comment(ch: str) -> bool:
    if ch == "\t":
        return False
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
        return True
    return _is_noncharacter(ord(ch))


def comment_safe(value: str) -> str:
    """Return ``value`` rewritten so that it cannot end or escape the comment it is placed in.

    Every control, format (zero-width, bidirectional), surrogate and line/paragraph-separator character
    becomes a visible ``\\u`` plus four hex digits, so the value stays on its line and a reviewer sees what
    is there. A ``#`` that would form ``<#`` or ``#>``, a leading ``>`` and a trailing ``<`` are escaped the
    same way, which keeps the text inert inside ``<# ... #>`` blocks and right after a ``#``; so is the first
    letter of a value starting with ``requires`` (``#requires`` is a directive). Place the result after a
    label on a ``#`` line; ``comment_line`` does that and also avoids the signature-block look-alike check.
    """
    if not isinstance(value, str):
        raise UsageError(f"comment text must be text, not {type(value).__name__}")
    return "".join(_escape(ch) if _escape_in_comment(value, index) else ch for index, ch in enumerate(value))


def _escape_in_comment(value: str, index: int) -> bool:
    ch, last = value[index], len(value) - 1
    if _needs_escape_in_comment(ch):
        return True
    if ch == "#":
        return (index > 0 and value[index - 1] == "<") or (index < last and value[index + 1] == ">")
    if index == 0:
        return ch == ">" or value[:8].lower() == "requires"
    return ch == "<" and index == last


def is_ps_whitespace(ch: str) -> bool:
    """PowerShell's ``IsWhitespace``: newlines are not whitespace, NBSP/NEL and Unicode separators are."""
    if ord(ch) < 128:
        return ch in " \t\x0b\x0c"
    if ord(ch) <= 256:
        return ch in "\xa0\x85"
    return unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def _edit_distance(first: str, second: str) -> int:
    previous = list(range(len(second) + 1))
    for row, a in enumerate(first, start=1):
        current = [row]
        for column, b in enumerate(second, start=1):
            cost = 0 if a == b else 1
            current.append(min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + cost))
        previous = current
    return previous[-1]


def resembles_signature_start(comment_body: str) -> bool:
    """Whether PowerShell could take a ``#`` comment with this body (text after ``#``) for a signature start.

    PowerShell's tokenizer refuses code after such a comment (a "signature block" look-alike), so a header
    line that trips this check would make the whole script fail to parse.
    """
    squeezed = "".join(ch for ch in comment_body if not is_ps_whitespace(ch)) + "\n"
    limit = _SIGNATURE_THRESHOLD + _SIGNATURE_MARGIN
    if abs(len(squeezed) - len(_SIGNATURE_TEXT)) >= limit:
        return False
    return _edit_distance(squeezed.lower(), _SIGNATURE_TEXT) < limit


def comment_line(label: str, value: str) -> str:
    """Return one ``# label: value`` header line (without line terminator) that stays a single comment.

    ``label`` is fixed text from a template (letters, digits, spaces, ``-_./()``); ``value`` may be anything
    and goes through ``comment_safe``. If the finished line could pass for a signature-block start, a short
    bracketed note is appended: it makes the line too long for PowerShell's look-alike check.
    """
    if not label or not all(ch.isascii() and (ch.isalnum() or ch in " -_./()") for ch in label):
        raise UsageError("a comment label must be plain ASCII letters, digits, spaces or -_./()")
    body = f" {label}: {comment_safe(value)}"
    if resembles_signature_start(body):
        body += _SIGNATURE_MARKER
    return "#" + body
