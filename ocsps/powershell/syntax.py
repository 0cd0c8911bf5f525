"""Check PowerShell scripts statically, with two independent tree-sitter grammars instead of PowerShell.

No PowerShell runs where scripts are rendered, yet a script that fails to parse on the server fails in the
middle of a maintenance window. Two grammars are used because each has gaps the other has not:
``airbus`` (``tree_sitter_powershell``) and ``wharflab`` (``tree_sitter_pwsh``, the more complete one).
A parse error is a reason to look, not proof of a bug; ``SyntaxFinding.known_gap`` names the grammar
limitations we know of, and the caller decides what to accept.

Neither grammar knows that PowerShell treats the typographic quotes U+2018-U+201E and the dashes
U+2013-U+2015 like their ASCII forms, so this module adds a lexical pass that follows PowerShell's
tokenizer for those characters: it reports them in code and checks that each string literal ends where
PowerShell would end it.

Everything here is a pure function of the script text. Grammars are loaded on first use and cached;
nothing here talks to a server (importing this module does not import pypsrp).

At run time (the lab refusing a malformed script, a pool step script checked before a roll) one grammar is
enough: callers pass ``grammars=RUNTIME_GRAMMARS``. The second grammar is a cross-check for the test suite
and ships with the ``test`` extra.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tree_sitter import Language, Node, Parser, Tree

from ocsps.powershell.quote import comment_safe, is_ps_whitespace

GRAMMARS: tuple[str, ...] = ("airbus", "wharflab")
"""Grammar names as they appear in findings, most lenient last."""

_GRAMMAR_MODULES = {"airbus": "tree_sitter_powershell", "wharflab": "tree_sitter_pwsh"}
_PREFERRED = "wharflab"

RUNTIME_GRAMMARS: tuple[str, ...] = (_PREFERRED,)
"""The grammar installed with ocsps itself; ``airbus`` comes with the ``test`` extra."""

# airbus spells a few node types differently; rules and walkers use the wharflab spelling.
_TYPE_ALIASES = {
    "invokation_expression": "invocation_expression",
    "invokation_foreach_expression": "invocation_foreach_expression",
    "command_invokation_operator": "command_invocation_operator",
    "assignement_operator": "assignment_operator",
}

_STRING_NODE_KINDS = {
    "verbatim_string_characters": "verbatim",
    "verbatim_here_string_characters": "verbatim-here",
    "expandable_string_literal": "expandable",
    "expandable_here_string_literal": "expandable-here",
}

# Nodes whose text PowerShell does not read as code: masked before lexical checks and code-pattern rules.
_OPAQUE_TYPES = frozenset(
    {*_STRING_NODE_KINDS, "comment", "braced_variable", "stop_parsing", "verbatim_command_argument"}
)

# PowerShell's quote and dash characters (CharTraits.cs: IsSingleQuote, IsDoubleQuote, IsDash). Written out
# here rather than imported from ``quote``: this module is the oracle the escaper is tested against, and a
# shared table would hide a mistake in both at once.
SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")
DOUBLE_QUOTES = frozenset('"\u201c\u201d\u201e')
DASHES = frozenset("-\u2013\u2014\u2015")
_TYPOGRAPHIC = (SINGLE_QUOTES | DOUBLE_QUOTES | DASHES) - {"'", '"', "-"}

# Grammar limitations seen in practice: when airbus fails where wharflab parses cleanly and a wharflab node
# of this type (and text) covers the failure, the finding is labelled with the explanation.
_AIRBUS_GAPS: tuple[tuple[str, str, str], ...] = (
    (
        "bareword_argument_list",
        r".*",
        "airbus cannot parse comma-separated bare words in command mode (`Select-Object Name, Status`, "
        "`-Name a,b`); quote them: `Select-Object -Property 'Name', 'Status'`",
    ),
    ("invocation_foreach_expression", r".*", "airbus does not know the .ForEach() method (PowerShell 4.0+)"),
    ("invocation_where_expression", r".*", "airbus does not know the .Where() method (PowerShell 4.0+)"),
    ("ternary_expression", r".*", "airbus does not know the ternary operator (PowerShell 7.0+)"),
    ("null_coalesce_expression", r".*", "airbus does not know the ?? operator (PowerShell 7.0+)"),
    ("assignment_operator", r"\?\?=", "airbus does not know the ??= operator (PowerShell 7.0+)"),
)
_AIRBUS_GAP_MISSING_TERMINATOR = (
    "airbus wants a statement after a trailing param(...) block, a top-level begin/process/end block "
    "or an empty multi-line script block"
)

_KEYWORD_COMMANDS = frozenset({"begin", "process", "end", "dynamicparam", "clean", "using"})
_NATIVE_SUFFIXES = (".exe", ".com", ".cmd", ".bat")
_DASH_PARAMETER = re.compile(r"[\u2013\u2014\u2015]([A-Za-z_?][\w?]*)(?::(.*))?", re.DOTALL)
_SNIPPET_LENGTH = 60


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SyntaxFinding:
    """One place where a grammar, or PowerShell's own tokenizer rules, disagree with the script.

    ``kind`` is ``error`` (an ERROR node), ``missing`` (the grammar had to invent a token), ``typographic``
    (a typographic quote or dash in code, which PowerShell reads as ASCII but the grammars do not) or
    ``boundary`` (PowerShell would end a string literal somewhere else than the grammar did).
    """

    grammar: str
    kind: str
    line: int
    column: int
    snippet: str
    message: str
    known_gap: str = ""
    other_grammar_agrees: bool = False


@dataclass(frozen=True)
class Finding:
    """A construct that needs a newer PowerShell than the target (``min_version`` introduced it)."""

    rule: str
    construct: str
    min_version: str
    line: int
    column: int
    snippet: str


@dataclass(frozen=True)
class CommandCall:
    """One command invocation, as written, for checking against the cmdlet catalog.

    ``parameters`` are names without the dash (``Graceful`` for ``-Graceful:$true``); ``arguments`` are the
    other elements as written, in order (parameter values included); ``splats`` names splatted variables
    (``@params`` gives ``params``), whose parameters cannot be known statically. ``invocation`` is ``&``,
    ``.`` or empty. ``native`` is true for ``.exe``/``.com``/``.cmd``/``.bat`` names and for ``&`` applied
    to a variable, whose target is unknown statically and which the templates use for executables
    (``& $lcscmd``).
    """

    name: str
    parameters: tuple[str, ...]
    line: int
    column: int
    native: bool = False
    invocation: str = ""
    arguments: tuple[str, ...] = ()
    splats: tuple[str, ...] = ()


@dataclass(frozen=True)
class StringLiteral:
    """A string literal and the value PowerShell gives it.

    ``kind`` is ``verbatim``, ``verbatim-here``, ``expandable`` or ``expandable-here``. ``value`` is None
    for expandable strings that contain ``$`` or a backtick: what they expand to is decided at run time.
    ``start``/``end`` are character offsets into the script.
    """

    kind: str
    text: str
    value: str | None
    line: int
    column: int
    start: int
    end: int


class NotASingleLiteral(ValueError):
    """The text is not exactly one string literal with a static value; ``reason`` says why, in one word."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


# ------------------------------------------------------------------------------------ rules (as data)


@dataclass(frozen=True)
class Rule:
    """A construct newer than PowerShell 2.0 and how to recognise it.

    ``kind`` selects the matcher:

    * ``node``: a node whose type is in ``node_types`` and whose whole text matches ``pattern``;
    * ``code``: ``pattern`` found in the script with comments, strings and braced variable names blanked;
    * ``command``: a command whose name (module qualifier dropped) matches ``pattern``;
    * ``parameter``: such a command with a parameter matching ``parameter``;
    * ``argument``: such a parameter directly followed by an argument matching ``value``;
    * ``bareword``: such a command whose first argument is a bare word matching ``value``.

    Patterns are case-insensitive regular expressions; all but ``code`` must match the whole text.
    """

    id: str
    construct: str
    min_version: str
    kind: str
    pattern: str = ".*"
    node_types: tuple[str, ...] = ()
    parameter: str = ""
    value: str = ""


_ANY = r".*"
_WHERE = r"where-object|where|\?"
_FOREACH = r"foreach-object|foreach|%"
_GCI = r"get-childitem|gci|dir|ls"
_GC = r"get-content|gc|cat|type"
_VARIABLE = ("variable", "braced_variable")

# fmt: off
RULES: tuple[Rule, ...] = (
    # PowerShell 3.0
    Rule("pscustomobject", "[pscustomobject] accelerator", "3.0", "node", r"\[\s*pscustomobject\s*\]",
         ("type_literal",)),
    Rule("ordered", "[ordered] dictionary", "3.0", "node", r"\[\s*ordered\s*\]", ("type_literal",)),
    Rule("in-operator", "-in / -notin operator", "3.0", "node", r"-[ci]?(?:not)?in",
         ("comparison_operator",)),
    Rule("shift-operator", "-shl / -shr operator", "3.0", "node", r"-sh[lr]", ("comparison_operator",)),
    Rule("psitem", "$PSItem", "3.0", "node", r"\$psitem|\$\{psitem\}", _VARIABLE),
    Rule("psscriptroot", "$PSScriptRoot / $PSCommandPath in a script", "3.0", "node",
         r"\$\{?(?:psscriptroot|pscommandpath)\}?", _VARIABLE),
    Rule("using-scope", "$using: scope", "3.0", "node", r"\$using:.+|\$\{using:.+\}", _VARIABLE),
    Rule("stop-parsing", "--% stop-parsing token", "3.0", "node", r"--%.*", ("stop_parsing",)),
    Rule("attribute-implicit-true", "attribute argument without a value ([Parameter(Mandatory)])", "3.0",
         "node", r"[A-Za-z_]\w*", ("attribute_argument",)),
    Rule("workflow", "workflow", "3.0", "node", r"workflow\b.*", ("function_statement",)),
    Rule("json-cmdlets", "ConvertTo-Json / ConvertFrom-Json", "3.0", "command", r"convert(?:to|from)-json"),
    Rule("web-cmdlets", "Invoke-RestMethod / Invoke-WebRequest", "3.0", "command",
         r"invoke-(?:restmethod|webrequest)|irm|iwr"),
    Rule("cim-cmdlets", "CIM cmdlets (Get-CimInstance ...)", "3.0", "command",
         r"(?:get|new|remove|set|invoke|register|export|import)-cim\w*|gcim|icim|ncim|rcim|scim|gcls|[gnr]cms"),
    Rule("scheduled-jobs", "scheduled job cmdlets (Register-ScheduledJob ...)", "3.0", "command",
         r"(?:register|unregister|get|set|enable|disable)-scheduledjob(?:option)?"
         r"|(?:new|add|get|set|remove|enable|disable)-jobtrigger"),
    Rule("where-simplified", "Where-Object simplified syntax (Where-Object Name -eq x)", "3.0", "parameter",
         _WHERE, parameter=r"[ci]?(?:eq|ne|gt|ge|lt|le|like|notlike|match|notmatch|contains|notcontains)"
         r"|[ci]?(?:in|notin)|is|isnot|not|property|value"),
    Rule("foreach-member", "ForEach-Object member name (ForEach-Object Name)", "3.0", "bareword", _FOREACH,
         value=r"[A-Za-z_]\w*"),
    Rule("foreach-membername", "ForEach-Object -MemberName", "3.0", "parameter", _FOREACH,
         parameter=r"membername"),
    Rule("get-content-raw-tail", "Get-Content -Raw / -Tail", "3.0", "parameter", _GC,
         parameter=r"raw|tail|last"),
    Rule("gci-file-attributes", "Get-ChildItem -File / -Directory / -Attributes", "3.0", "parameter", _GCI,
         parameter=r"file|directory|attributes|hidden|readonly|system|ad|af|ah|ar|as"),
    Rule("add-member-noteproperty", "Add-Member -NotePropertyName / -NotePropertyMembers", "3.0", "parameter",
         r"add-member", parameter=r"noteproperty(?:name|value|members)"),
    Rule("erroraction-ignore", "-ErrorAction Ignore", "3.0", "argument", _ANY,
         parameter=r"erroraction|ea|warningaction|wa", value=r"[\"'\u2018\u2019]?ignore[\"'\u2018\u2019]?"),
    # PowerShell 4.0
    Rule("foreach-where-method", ".ForEach() / .Where() method", "4.0", "code",
         r"\.\s*(?:foreach|where)\s*[({]"),
    Rule("pipelinevariable", "-PipelineVariable common parameter", "4.0", "parameter", _ANY,
         parameter=r"pipelinevariable|pv"),
    Rule("get-filehash", "Get-FileHash", "4.0", "command", r"get-filehash"),
    # PowerShell 5.0
    Rule("class", "class definition", "5.0", "node", _ANY, ("class_statement",)),
    Rule("enum", "enum definition", "5.0", "node", _ANY, ("enum_statement",)),
    Rule("static-new", "::new() constructor call", "5.0", "code", r"::\s*new\s*\("),
    Rule("using-statement", "using namespace / using module", "5.0", "code",
         r"(?m)^[ \t]*using[ \t]+(?:namespace|module|assembly)\b"),
    Rule("information-stream", "Write-Information", "5.0", "command", r"write-information"),
    Rule("information-parameters", "-InformationAction / -InformationVariable", "5.0", "parameter", _ANY,
         parameter=r"informationaction|informationvariable|infa|iv"),
    Rule("cmdlets-5", "cmdlet added in PowerShell 5.0", "5.0", "command",
         r"new-temporaryfile|compress-archive|expand-archive|get-clipboard|set-clipboard|format-hex"
         r"|import-powershelldatafile|convertfrom-string"),
    Rule("nonewline", "-NoNewline on Set-Content / Add-Content / Out-File", "5.0", "parameter",
         r"set-content|add-content|out-file|sc|ac", parameter=r"nonewline"),
    Rule("gci-depth", "Get-ChildItem -Depth", "5.0", "parameter", _GCI, parameter=r"depth"),
    Rule("select-skiplast", "Select-Object -SkipLast", "5.0", "parameter", r"select-object|select",
         parameter=r"skiplast"),
    # PowerShell 6 and 7
    Rule("cmdlets-6", "cmdlet added in PowerShell 6", "6.0", "command",
         r"get-uptime|remove-service|test-json"),
    Rule("pipeline-chain", "&& / || pipeline chain", "7.0", "node", r"&&|\|\|", ("pipeline_chain_tail",)),
    Rule("ternary", "ternary operator ?:", "7.0", "node", _ANY, ("ternary_expression",)),
    Rule("null-coalescing", "?? / ??= operator", "7.0", "code", r"\?\?=?"),
    Rule("null-conditional", "?. / ?[] null-conditional access", "7.0", "code", r"\}\?(?:\.|\[)"),
    Rule("foreach-parallel", "ForEach-Object -Parallel", "7.0", "parameter", _FOREACH, parameter=r"parallel"),
    Rule("get-error", "Get-Error", "7.0", "command", r"get-error"),
)
# fmt: on


# ------------------------------------------------------------------------------------- parsing core


@functools.cache
def _language(grammar: str) -> Language:
    module = importlib.import_module(_GRAMMAR_MODULES[grammar])
    return Language(module.language())


def _norm(node_type: str) -> str:
    return _TYPE_ALIASES.get(node_type, node_type)


class _Source:
    """The script text with byte-to-character and character-to-line maps (tree-sitter counts bytes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8", "surrogatepass")
        starts: list[int] = []
        position = 0
        for ch in text:
            starts.append(position)
            position += 1 if ch < "\x80" else len(ch.encode("utf-8", "surrogatepass"))
        self._byte_starts = starts
        self._line_starts = [0] + [index + 1 for index, ch in enumerate(text) if ch == "\n"]

    def char(self, byte_offset: int) -> int:
        if byte_offset >= len(self.data):
            return len(self.text)
        return bisect.bisect_right(self._byte_starts, byte_offset) - 1

    def position(self, char_offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, char_offset)
        return line, char_offset - self._line_starts[line - 1] + 1

    def offset(self, line: int, column: int) -> int:
        return self._line_starts[line - 1] + column - 1

    def line_text(self, line: int) -> str:
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[start:end]

    def span(self, node: Node) -> tuple[int, int]:
        return self.char(node.start_byte), self.char(node.end_byte)

    def node_text(self, node: Node) -> str:
        start, end = self.span(node)
        return self.text[start:end]


@dataclass(frozen=True)
class _Analysis:
    source: _Source
    trees: dict[str, Tree]


@functools.lru_cache(maxsize=32)
def _analyse(script: str, grammars: tuple[str, ...] = GRAMMARS) -> _Analysis:
    unknown = [grammar for grammar in grammars if grammar not in GRAMMARS]
    if unknown or not grammars:
        raise ValueError(f"unknown grammar {unknown!r}; expected some of {', '.join(GRAMMARS)}")
    source = _Source(script)
    trees = {grammar: Parser(_language(grammar)).parse(source.data) for grammar in grammars}
    return _Analysis(source, trees)


def _walk(node: Node) -> Iterator[Node]:
    """Depth-first, without recursion: deep expression chains must not hit Python's recursion limit."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _snippet(text: str) -> str:
    first = text.strip().split("\n", 1)[0].strip()
    if len(first) > _SNIPPET_LENGTH:
        first = first[: _SNIPPET_LENGTH - 3] + "..."
    return comment_safe(first)


# ------------------------------------------------------------------------- PowerShell string scanning


def _scan_verbatim(text: str, start: int) -> tuple[str, int]:
    """PowerShell's single-quoted string scan from ``start`` (an opening quote): value and end (or -1)."""
    out: list[str] = []
    index, size = start + 1, len(text)
    while index < size:
        ch = text[index]
        if ch in SINGLE_QUOTES:
            if index + 1 < size and text[index + 1] in SINGLE_QUOTES:
                out.append(text[index + 1])
                index += 2
                continue
            return "".join(out), index + 1
        out.append(ch)
        index += 1
    return "".join(out), -1


def _scan_expandable(text: str, start: int) -> tuple[str | None, int]:
    """Scan a double-quoted string; value is None when it expands anything, end is -2 if not decidable.

    A ``$`` may open a sub-expression holding quotes of its own, which only a full parser can follow, so
    the end is then left to the grammars (-2).
    """
    out: list[str] = []
    escaped = False
    index, size = start + 1, len(text)
    while index < size:
        ch = text[index]
        if ch == "$":
            return None, -2
        if ch == "`":
            escaped = True
            index += 2
            continue
        if ch in DOUBLE_QUOTES:
            if index + 1 < size and text[index + 1] in DOUBLE_QUOTES:
                out.append(text[index + 1])
                index += 2
                continue
            return (None if escaped else "".join(out)), index + 1
        out.append(ch)
        index += 1
    return None, -1


def _scan_here(text: str, start: int, quotes: frozenset[str]) -> tuple[str, int]:
    """PowerShell's here-string scan from ``start`` (the ``@``): value and end (or -1).

    The header may be followed by whitespace only; the footer is a quote and ``@`` at the very start of
    a line; the line break before the footer is not part of the value.
    """
    index, size = start + 2, len(text)
    while index < size and is_ps_whitespace(text[index]):
        index += 1
    if index < size and text[index] == "\r":
        index += 1
        if index < size and text[index] == "\n":
            index += 1
    elif index < size and text[index] == "\n":
        index += 1
    else:
        return "", -1
    if index + 1 < size and text[index] in quotes and text[index + 1] == "@":
        return "", index + 2
    out: list[str] = []
    while index < size:
        ch = text[index]
        index += 1
        if ch not in "\r\n":
            out.append(ch)
            continue
        kept = len(out)
        out.append(ch)
        if ch == "\r" and index < size and text[index] == "\n":
            out.append("\n")
            index += 1
        if index + 1 < size and text[index] in quotes and text[index + 1] == "@":
            del out[kept:]
            return "".join(out), index + 2
    return "".join(out), -1


def _decode(kind: str, text: str, start: int) -> tuple[str | None, int]:
    if kind == "verbatim":
        return _scan_verbatim(text, start)
    if kind == "verbatim-here":
        return _scan_here(text, start, SINGLE_QUOTES)
    if kind == "expandable":
        return _scan_expandable(text, start)
    value, end = _scan_here(text, start, DOUBLE_QUOTES)
    literal_text = text[start:end] if end > 0 else text[start:]
    if "$" in literal_text or "`" in literal_text:
        return None, end
    return value, end


def _string_nodes(tree: Tree) -> Iterator[tuple[str, Node]]:
    for node in _walk(tree.root_node):
        kind = _STRING_NODE_KINDS.get(node.type)
        if kind is not None and not node.is_missing:
            yield kind, node


def _literals(analysis: _Analysis, grammar: str) -> list[StringLiteral]:
    source = analysis.source
    result = []
    for kind, node in _string_nodes(analysis.trees[grammar]):
        start, end = source.span(node)
        value, _ = _decode(kind, source.text, start)
        line, column = source.position(start)
        result.append(StringLiteral(kind, source.text[start:end], value, line, column, start, end))
    return result


# ----------------------------------------------------------------------------------------- parse()


def _mask(analysis: _Analysis, grammars: tuple[str, ...], bare_words: bool = False) -> str:
    """The script with non-code text blanked (line breaks kept).

    Comments, strings and braced variable names are blanked where any grammar sees them: a grammar that
    misreads a string must not turn its content into code. With ``bare_words``, command arguments that
    every grammar reads as a bare word are blanked too (``RTC??.log`` is a wildcard, not an operator);
    a region only one grammar calls a bare word may be a construct the other one knows.
    """
    source = analysis.source
    size = len(source.text)
    blank = bytearray(size)
    words: bytearray | None = None
    for grammar in grammars:
        grammar_words = bytearray(size)
        for node in _walk(analysis.trees[grammar].root_node):
            if node.type in _OPAQUE_TYPES:
                start, end = source.span(node)
                if node.type == "braced_variable":
                    start, end = start + 2, end - 1  # keep ${ and }: `${a}?.b` is code around a name
                blank[start:end] = b"\x01" * max(0, end - start)
            elif bare_words and node.type == "generic_token":
                start, end = source.span(node)
                grammar_words[start:end] = b"\x01" * (end - start)
        words = (
            grammar_words
            if words is None
            else bytearray(a & b for a, b in zip(words, grammar_words, strict=True))
        )
    if words is not None:
        blank = bytearray(a | b for a, b in zip(blank, words, strict=True))
    return "".join(" " if flag and ch != "\n" else ch for flag, ch in zip(blank, source.text, strict=True))


def _lexical_findings(analysis: _Analysis, grammar: str) -> list[SyntaxFinding]:
    source = analysis.source
    findings = []
    masked = _mask(analysis, (grammar,))
    for index, ch in enumerate(masked):
        if ch in _TYPOGRAPHIC:
            line, column = source.position(index)
            findings.append(
                SyntaxFinding(
                    grammar,
                    "typographic",
                    line,
                    column,
                    _snippet(source.line_text(line)),
                    f"typographic character U+{ord(ch):04X} in code: PowerShell reads it as an ASCII "
                    "quote or dash, the grammars do not",
                )
            )
    for kind, node in _string_nodes(analysis.trees[grammar]):
        start, end = source.span(node)
        _, ps_end = _decode(kind, source.text, start)
        literal = source.text[start:end]
        if ps_end == -2:
            if any(ch in DOUBLE_QUOTES and ch != '"' for ch in literal):
                ps_end = -1
            else:
                continue
        if ps_end != end:
            line, column = source.position(start)
            where = "does not end it" if ps_end < 0 else f"ends it at character {ps_end - start}"
            findings.append(
                SyntaxFinding(
                    grammar,
                    "boundary",
                    line,
                    column,
                    _snippet(literal),
                    f"{kind} string: the grammar ends it after {end - start} characters, PowerShell {where}",
                )
            )
    return findings


def _tree_findings(analysis: _Analysis, grammar: str) -> list[tuple[SyntaxFinding, Node]]:
    source = analysis.source
    result = []
    stack = [analysis.trees[grammar].root_node]
    while stack:
        node = stack.pop()
        if node.is_missing or node.type == "ERROR":
            start, end = source.span(node)
            line, column = source.position(start)
            if node.is_missing:
                kind, message = "missing", f"the grammar expected {node.type!r} here"
                snippet = _snippet(source.line_text(line))
            else:
                kind, message = "error", "the grammar cannot parse this"
                snippet = _snippet(source.text[start:end]) or _snippet(source.line_text(line))
            result.append((SyntaxFinding(grammar, kind, line, column, snippet, message), node))
            continue
        stack.extend(reversed(node.children))
    return result


def _lines_of(analysis: _Analysis, node: Node) -> range:
    start, end = analysis.source.span(node)
    first, _ = analysis.source.position(start)
    last, _ = analysis.source.position(max(start, end - 1))
    return range(first, last + 1)


def _airbus_gap(analysis: _Analysis, finding: SyntaxFinding, node: Node) -> str:
    """Name the known airbus limitation behind ``finding``, if wharflab parses the same text cleanly."""
    wharflab = analysis.trees["wharflab"].root_node
    low, high = node.start_byte, max(node.end_byte, node.start_byte + 1)
    stack = [wharflab]
    while stack:
        candidate = stack.pop()
        if candidate.end_byte < low or candidate.start_byte > high:
            continue
        for node_type, pattern, gap in _AIRBUS_GAPS:
            if candidate.type == node_type and _full(pattern, analysis.source.node_text(candidate)):
                return gap
        stack.extend(candidate.children)
    if finding.kind == "missing" and node.type == ";":
        return _AIRBUS_GAP_MISSING_TERMINATOR
    return ""


def parse(script: str, *, grammars: tuple[str, ...] = GRAMMARS) -> list[SyntaxFinding]:
    """Parse ``script`` with the grammars (both by default) and list every problem, tagged with its grammar.

    An empty list means both grammars parsed everything and every string literal ends where PowerShell
    would end it. ``known_gap`` explains findings caused by a known grammar limitation (set only when the
    other grammar parses that line cleanly); ``other_grammar_agrees`` says the other grammar also
    reports something on that line.
    """
    analysis = _analyse(script, grammars)
    per_grammar: dict[str, list[tuple[SyntaxFinding, Node | None]]] = {}
    for grammar in grammars:
        items: list[tuple[SyntaxFinding, Node | None]] = list(_tree_findings(analysis, grammar))
        items.extend((finding, None) for finding in _lexical_findings(analysis, grammar))
        per_grammar[grammar] = items
    lines = {
        grammar: {
            line
            for finding, node in items
            for line in (_lines_of(analysis, node) if node is not None else (finding.line,))
        }
        for grammar, items in per_grammar.items()
    }
    results: set[SyntaxFinding] = set()
    for grammar, items in per_grammar.items():
        others = set().union(*(lines[other] for other in grammars if other != grammar))
        for finding, node in items:
            span = _lines_of(analysis, node) if node is not None else (finding.line,)
            agrees = any(line in others for line in span)
            gap = ""
            if grammar == "airbus" and node is not None and not agrees:
                gap = _airbus_gap(analysis, finding, node)
            results.add(
                SyntaxFinding(
                    finding.grammar,
                    finding.kind,
                    finding.line,
                    finding.column,
                    finding.snippet,
                    finding.message,
                    gap,
                    agrees,
                )
            )
    return sorted(results, key=lambda f: (f.line, f.column, f.grammar, f.kind))


# -------------------------------------------------------------------------------------- commands()


@dataclass(frozen=True)
class _Element:
    kind: str  # "parameter" or "argument"
    text: str
    node_type: str


@dataclass(frozen=True)
class _Command:
    call: CommandCall
    elements: tuple[_Element, ...]


def _innermost(node: Node) -> Node:
    """Descend through wrapper nodes that span exactly the same text (airbus nests expressions deeply)."""
    while node.named_child_count == 1:
        child = node.named_children[0]
        if child.start_byte != node.start_byte or child.end_byte != node.end_byte:
            break
        node = child
    return node


def _command_from_node(analysis: _Analysis, node: Node) -> _Command | None:
    source = analysis.source
    invocation = ""
    target: Node | None = None
    elements_node: Node | None = None
    for child in node.children:
        child_type = _norm(child.type)
        if child_type == "command_invocation_operator":
            invocation = source.node_text(child).strip()
        elif child_type == "command_elements":
            elements_node = child
        elif child.is_named and child_type != "comment" and target is None:
            target = child
    if target is None:
        return None
    inner = _innermost(target)
    inner_type = _norm(inner.type)
    if inner_type in ("script_block_expression", "script_block"):
        return None
    name = source.node_text(target).strip()
    string_kind = _STRING_NODE_KINDS.get(inner.type)
    if string_kind is not None:
        value, _ = _decode(string_kind, source.text, source.span(inner)[0])
        if value is not None:
            name = value
    if not invocation and inner_type == "command_name" and name.lower() in _KEYWORD_COMMANDS:
        return None
    native = name.lower().endswith(_NATIVE_SUFFIXES) or (
        invocation == "&" and inner_type in ("variable", "braced_variable")
    )
    parameters: list[str] = []
    arguments: list[str] = []
    splats: list[str] = []
    elements: list[_Element] = []
    for element in elements_node.named_children if elements_node is not None else ():
        element_type = _norm(element.type)
        text = source.node_text(element).strip()
        if element_type in ("command_argument_sep", "comment", "redirection", "redirections") or not text:
            continue
        if element_type == "command_parameter":
            parameter = text.lstrip("".join(DASHES)).rstrip(":")
            parameters.append(parameter)
            elements.append(_Element("parameter", parameter, element_type))
            continue
        dashed = _DASH_PARAMETER.fullmatch(text) if element_type == "generic_token" else None
        if dashed:
            parameters.append(dashed.group(1))
            elements.append(_Element("parameter", dashed.group(1), element_type))
            if dashed.group(2):
                arguments.append(dashed.group(2))
                elements.append(_Element("argument", dashed.group(2), element_type))
            continue
        inner_element_type = _norm(_innermost(element).type)
        if inner_element_type == "variable" and text.startswith("@"):
            splats.append(text[1:])
            continue
        arguments.append(text)
        elements.append(_Element("argument", text, inner_element_type))
    line, column = source.position(source.span(node)[0])
    call = CommandCall(
        name, tuple(parameters), line, column, native, invocation, tuple(arguments), tuple(splats)
    )
    return _Command(call, tuple(elements))


def _commands(analysis: _Analysis, grammar: str) -> list[_Command]:
    found = []
    for node in _walk(analysis.trees[grammar].root_node):
        if node.type == "command":
            command = _command_from_node(analysis, node)
            if command is not None:
                found.append(command)
    found.sort(key=lambda c: (c.call.line, c.call.column))
    return found


def _error_count(tree: Tree) -> int:
    return sum(1 for node in _walk(tree.root_node) if node.type == "ERROR" or node.is_missing)


def _best_grammar(analysis: _Analysis) -> str:
    counts = {grammar: _error_count(tree) for grammar, tree in analysis.trees.items()}
    best = min(counts.values())
    return _PREFERRED if counts[_PREFERRED] == best else min(counts, key=lambda g: counts[g])


def commands(script: str, *, grammar: str | None = None) -> list[CommandCall]:
    """List every command invocation in ``script`` (in nested blocks too), in source order.

    Invocations of literal script blocks (``& { ... }``, ``. { ... }``) are skipped: their contents are
    listed as commands of their own. By default the grammar with fewer parse errors is used (wharflab on
    a tie); run ``parse`` first, a command list from a script that does not parse is only a best effort.
    """
    if grammar is not None and grammar not in GRAMMARS:
        raise ValueError(f"unknown grammar {grammar!r}; expected one of {', '.join(GRAMMARS)}")
    analysis = _analyse(script, (grammar,) if grammar else GRAMMARS)
    chosen = grammar or _best_grammar(analysis)
    return [command.call for command in _commands(analysis, chosen)]


# ------------------------------------------------------------------------------- newer_constructs()


def _version(text: str) -> tuple[int, ...]:
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.\d+)*", text.strip())
    if not match:
        raise ValueError(f"not a PowerShell version: {text!r}")
    return int(match.group(1)), int(match.group(2) or 0)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


def _full(pattern: str, text: str) -> bool:
    return _compiled(pattern).fullmatch(text) is not None


def _command_matches(rule: Rule, command: _Command) -> bool:
    name = command.call.name.rsplit("\\", 1)[-1]
    if not _full(rule.pattern, name):
        return False
    if rule.kind == "command":
        return True
    elements = command.elements
    if rule.kind == "parameter":
        return any(e.kind == "parameter" and _full(rule.parameter, e.text) for e in elements)
    if rule.kind == "argument":
        return any(
            first.kind == "parameter"
            and _full(rule.parameter, first.text)
            and second.kind == "argument"
            and _full(rule.value, second.text)
            for first, second in itertools.pairwise(elements)
        )
    if rule.kind == "bareword":
        positional = [e for e in elements if e.kind == "argument"]
        return (
            bool(positional)
            and elements[0].kind == "argument"
            and positional[0].node_type == "generic_token"
            and _full(rule.value, positional[0].text)
        )
    return False


def _rule_hits(analysis: _Analysis, rules: list[Rule]) -> Iterator[tuple[Rule, int, str]]:
    """Yield (rule, character offset, matched text) for every occurrence, from both grammars."""
    source = analysis.source
    node_rules = [rule for rule in rules if rule.kind == "node"]
    code_rules = [rule for rule in rules if rule.kind == "code"]
    command_rules = [rule for rule in rules if rule.kind in ("command", "parameter", "argument", "bareword")]
    for grammar, tree in analysis.trees.items():
        if node_rules:
            for node in _walk(tree.root_node):
                node_type = _norm(node.type)
                for rule in node_rules:
                    if node_type in rule.node_types:
                        text = source.node_text(node)
                        if _full(rule.pattern, text):
                            yield rule, source.span(node)[0], text
        if command_rules:
            for command in _commands(analysis, grammar):
                for rule in command_rules:
                    if _command_matches(rule, command):
                        call = command.call
                        offset = source.offset(call.line, call.column)
                        yield rule, offset, call.name
    if code_rules:
        masked = _mask(analysis, tuple(analysis.trees), bare_words=True)
        for rule in code_rules:
            for match in _compiled(rule.pattern).finditer(masked):
                yield rule, match.start(), source.text[match.start() : match.end()]


def newer_constructs(
    script: str, ps_version: str, *, grammars: tuple[str, ...] = GRAMMARS
) -> list[Finding]:
    """List constructs in ``script`` that need a newer PowerShell than ``ps_version`` (e.g. ``"2.0"``).

    Each finding names the rule and the version that introduced the construct (see ``RULES``). By default
    both grammars are searched and their results merged, one finding per rule and line, so a construct one
    grammar cannot parse is still found through the other.
    """
    target = _version(ps_version)
    rules = [rule for rule in RULES if _version(rule.min_version) > target]
    analysis = _analyse(script, grammars)
    best: dict[tuple[str, int], Finding] = {}
    for rule, offset, text in _rule_hits(analysis, rules):
        line, column = analysis.source.position(offset)
        key = (rule.id, line)
        if key in best and best[key].column <= column:
            continue
        best[key] = Finding(rule.id, rule.construct, rule.min_version, line, column, _snippet(text))
    return sorted(best.values(), key=lambda f: (f.line, f.column, f.rule))


# ----------------------------------------------------------------------------------- string literals


def string_literals(script: str, *, grammar: str = _PREFERRED) -> list[StringLiteral]:
    """List the string literals of ``script`` as one grammar sees them, decoded with PowerShell's rules.

    Strings nested in expandable strings (``"$('x')"``) are listed too, after their container.
    """
    if grammar not in GRAMMARS:
        raise ValueError(f"unknown grammar {grammar!r}; expected one of {', '.join(GRAMMARS)}")
    return sorted(_literals(_analyse(script), grammar), key=lambda s: s.start)


def single_literal_value(text: str) -> str:
    """Prove that ``text`` holds exactly one string literal with a static value, and return that value.

    ``text`` may be the literal alone (``'it''s'``) or a fragment around it (``$x = 'it''s'``). Both
    grammars must parse it (findings explained by a known grammar gap are tolerated, since the other
    grammar then parsed that line), must find exactly one string literal at the same place, and
    PowerShell's rules must end that literal where the grammars do. Raises ``NotASingleLiteral``.
    """
    problems = [finding for finding in parse(text) if not finding.known_gap]
    if problems:
        first = problems[0]
        raise NotASingleLiteral(
            f"{first.grammar} line {first.line} column {first.column}: {first.message}", reason="syntax"
        )
    analysis = _analyse(text)
    spans = set()
    chosen: StringLiteral | None = None
    for grammar in GRAMMARS:
        found = _literals(analysis, grammar)
        if not found:
            raise NotASingleLiteral(f"{grammar}: no string literal found", reason="none")
        if len(found) > 1:
            raise NotASingleLiteral(
                f"{grammar}: {len(found)} string literals found, expected one", reason="several"
            )
        spans.add((found[0].start, found[0].end))
        chosen = found[0]
    if chosen is None or len(spans) != 1:
        raise NotASingleLiteral("the grammars disagree on where the string literal is", reason="disagree")
    if chosen.value is None:
        raise NotASingleLiteral(
            "the string is expandable ($ or backtick): its value is not static", reason="expandable"
        )
    return chosen.value
