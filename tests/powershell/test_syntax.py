"""Unit tests for the static checker: grammar findings, PowerShell string rules, literals and commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ocsps.powershell import syntax
from ocsps.powershell.syntax import NotASingleLiteral, parse, single_literal_value, string_literals


def test_importing_syntax_does_not_import_pypsrp() -> None:
    code = "import sys, ocsps.powershell.syntax as s; s.parse('Get-Date'); print('pypsrp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_clean_script_has_no_findings() -> None:
    assert parse("$x = 'a'\nGet-Service -Name 'RTCSRV' | Stop-Service -WhatIf\n") == []


@pytest.mark.parametrize(
    ("script", "gap"),
    [
        ("Select-Object Name, Status\n", "comma-separated bare words"),
        ("Get-Service | Select-Object Name, Status | Format-Table -AutoSize\n", "comma-separated bare words"),
        ("Get-Process -Name a,b\n", "comma-separated bare words"),
        ("param([string]$a = 'x')\n", "trailing param(...) block"),
        ("$sb = {\n}\n", "empty multi-line script block"),
        ("$x.ForEach({ $_ })\n", ".ForEach()"),
        ("$x = $a ? 1 : 2\n", "ternary"),
    ],
)
def test_airbus_gaps_are_reported_and_explained(script: str, gap: str) -> None:
    findings = parse(script)
    assert findings, script
    assert all(f.grammar == "airbus" and not f.other_grammar_agrees for f in findings)
    assert all(gap in f.known_gap for f in findings)


@pytest.mark.parametrize(
    "script",
    [
        "function f { param($a) $a }\n",
        "switch ($x) { 'a' { 1 } default { 2 } }\n",
        ":outer foreach ($a in $b) { break outer }\n",
        "Write-Output -- -x\n",
    ],
)
def test_constructs_both_grammars_reject(script: str) -> None:
    findings = parse(script)
    assert {f.grammar for f in findings} == {"airbus", "wharflab"}
    assert all(f.other_grammar_agrees and not f.known_gap for f in findings)


def test_typographic_dash_in_code_is_reported() -> None:
    findings = parse("Stop-CsWindowsService \u2013Name RTCSRV\n")
    assert {(f.grammar, f.kind, f.line, f.column) for f in findings} == {
        ("airbus", "typographic", 1, 23),
        ("wharflab", "typographic", 1, 23),
    }


def test_typographic_quotes_in_comments_and_strings_are_not_reported() -> None:
    assert parse("# it\u2019s \u2013 fine\n$x = 'it\u2019\u2019s \u2013 fine'\n$y = \"\u2013\"\n") == []


@pytest.mark.parametrize(
    "script",
    [
        "$x = 'it\u2019s'\n",  # PowerShell ends the string at U+2019
        "$x = 'abc'\u2019\n",  # PowerShell reads '\u2019 as an escaped quote and runs on
        '$x = "say \u201chi\u201d"\n',  # PowerShell ends the string at U+201C
        "$x = @'\n\u2019@\nmore\n'@\n",  # PowerShell ends the here-string at the typographic footer
    ],
)
def test_string_boundaries_follow_powershell(script: str) -> None:
    kinds = {f.kind for f in parse(script)}
    assert "boundary" in kinds or "typographic" in kinds
    with pytest.raises(NotASingleLiteral):
        single_literal_value(script)


def test_string_literals_decode_like_powershell() -> None:
    script = (
        "$a = 'it''s \u2019\u2019ok'\n"
        "$b = @'\nline one\r\nline 'two'\n'@\n"
        '$c = "plain ""double"""\n'
        '$d = "has $var"\n'
        '$e = "tab`t"\n'
        '$f = @"\nno expansion\n"@\n'
    )
    literals = string_literals(script)
    assert [(s.kind, s.value, s.line) for s in literals] == [
        ("verbatim", "it's \u2019ok", 1),
        ("verbatim-here", "line one\r\nline 'two'", 2),
        ("expandable", 'plain "double"', 6),
        ("expandable", None, 7),
        ("expandable", None, 8),
        ("expandable-here", "no expansion", 9),
    ]
    assert string_literals(script, grammar="airbus") == literals


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("$x = 1\n", "none"),
        ("$x = 'a' + 'b'\n", "several"),
        ('$x = "a $b"\n', "expandable"),
        ("$x = 'unterminated\n", "syntax"),
        ("$x = 'a'b'\n", "syntax"),
    ],
)
def test_single_literal_value_refuses(text: str, reason: str) -> None:
    with pytest.raises(NotASingleLiteral) as caught:
        single_literal_value(text)
    assert caught.value.reason == reason


def test_single_literal_value_accepts_fragments_and_scripts() -> None:
    assert single_literal_value("'it''s'") == "it's"
    assert single_literal_value("$x = 'a'\n") == "a"
    assert single_literal_value("param([string]$Reason = 'patch')\nWrite-Output $Reason\n") == "patch"
    assert single_literal_value('"no dollar"') == "no dollar"


def test_commands_agree_between_grammars_on_a_template_like_script() -> None:
    script = (
        "Import-Module Lync\n"
        "$svc = Get-CsWindowsService -Name 'RTCSRV' -ComputerName $c -ErrorAction Stop\n"
        "if ($svc.Status -eq 'Running') { Stop-CsWindowsService -Name 'RTCSRV' -Graceful:$true -NoWait }\n"
        "& $lcscmd /Server /Role:SE /Action:Deactivate 2>&1 | Out-String\n"
    )
    airbus = syntax.commands(script, grammar="airbus")
    assert airbus == syntax.commands(script, grammar="wharflab") == syntax.commands(script)
    assert [(c.name, c.parameters, c.line, c.native) for c in airbus] == [
        ("Import-Module", (), 1, False),
        ("Get-CsWindowsService", ("Name", "ComputerName", "ErrorAction"), 2, False),
        ("Stop-CsWindowsService", ("Name", "Graceful", "NoWait"), 3, False),
        ("$lcscmd", (), 4, True),
        ("Out-String", (), 4, False),
    ]


def test_commands_uses_the_grammar_that_parses() -> None:
    calls = syntax.commands("Get-Service | Select-Object Name, Status\n")
    assert [(c.name, c.arguments) for c in calls] == [
        ("Get-Service", ()),
        ("Select-Object", ("Name, Status",)),
    ]


def test_top_level_named_blocks_are_not_commands() -> None:
    script = "param($a)\nbegin {\n    Get-Date\n}\nprocess {\n    $a\n}\nend {\n}\n"
    assert [c.name for c in syntax.commands(script)] == ["Get-Date"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not a PowerShell version"):
        syntax.newer_constructs("Get-Date", "two")
    with pytest.raises(ValueError, match="unknown grammar"):
        syntax.commands("Get-Date", grammar="pwsh")
    with pytest.raises(ValueError, match="unknown grammar"):
        string_literals("'x'", grammar="nope")


def test_rules_are_well_formed() -> None:
    kinds = {"node", "code", "command", "parameter", "argument", "bareword"}
    ids = [rule.id for rule in syntax.RULES]
    assert len(ids) == len(set(ids))
    for rule in syntax.RULES:
        assert rule.kind in kinds
        assert syntax._version(rule.min_version) > (2, 0)
        assert (rule.kind == "node") == bool(rule.node_types)
        assert (rule.kind in ("parameter", "argument")) == bool(rule.parameter)


def test_newer_than_target_only() -> None:
    script = "$o = [pscustomobject]@{}\n$n = [Text.StringBuilder]::new()\n$v = $a ?? 1\n"
    assert [f.rule for f in syntax.newer_constructs(script, "2.0")] == [
        "pscustomobject",
        "static-new",
        "null-coalescing",
    ]
    assert [f.rule for f in syntax.newer_constructs(script, "3.0")] == ["static-new", "null-coalescing"]
    assert [f.rule for f in syntax.newer_constructs(script, "5.1")] == ["null-coalescing"]
    assert syntax.newer_constructs(script, "7.4") == []
