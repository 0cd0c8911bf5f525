"""The two-part change-board script of ``ocsps patch server``: valid for the product, the bodies ocsps sends,
the runner's decisions in the runner's order, and every value a single quoted literal."""

from __future__ import annotations

import dataclasses
import re

import pytest

from ocsps.catalog import Catalog, load_catalog
from ocsps.errors import UsageError
from ocsps.patch import default_options, load_patch_facts, plan_patch
from ocsps.patch.board import board_bodies, board_file_name, render_patch_board
from ocsps.patch.plan import PatchPlan
from ocsps.powershell import syntax
from ocsps.powershell.changeboard import verify_script
from ocsps.powershell.script import render_action
from tests.render.test_templates import _problems

CATALOG = load_catalog()
INSTALLER = "C:\\Updates\\SkypeServerUpdateInstaller.exe"
HOST = "med01.contoso.com"
# Products whose patch plan exists (plan_patch refuses a product whose patch level ocsps cannot verify).
PRODUCTS = [p for p in CATALOG.products if load_patch_facts().products.get(p, None) is not None]


def _plan(product: str, **changes: object) -> PatchPlan:
    installer = INSTALLER.replace(
        "SkypeServerUpdateInstaller.exe", load_patch_facts().for_product(product).installer
    )
    return plan_patch(HOST, CATALOG.product(product), installer, default_options("6.0.9319.619", **changes))


def _plannable() -> list[str]:
    out = []
    for product in PRODUCTS:
        try:
            _plan(product)
        except UsageError:
            continue
        out.append(product)
    return out


PLANNABLE = _plannable()


def _board(product: str = "sfb2015", **changes: object) -> str:
    return render_patch_board(_plan(product, **changes), change_id="CHG-1042", reason="Cumulative update")


def test_the_supported_products_are_planned() -> None:
    """The board follows the plan: each product the planner accepts gets a script (at least both SfB)."""
    assert {"sfb2015", "sfb2019"} <= set(PLANNABLE)


@pytest.mark.parametrize("product", PLANNABLE)
def test_board_parses_and_uses_only_cmdlets_and_parameters_the_product_has(product: str) -> None:
    text = _board(product)
    assert _problems(CATALOG, CATALOG.product(product), text) == []
    # it says #Requires -Version 2.0: hold it to that, whatever the product
    assert syntax.newer_constructs(text, "2.0") == []
    assert "#Requires -Version 2.0" in text


@pytest.mark.parametrize("product", PLANNABLE)
def test_board_checks_itself_and_carries_the_bodies_ocsps_sends(product: str) -> None:
    text = _board(product)
    check = verify_script(text)
    assert check.ok, check.reason
    assert check.header["Target"] == HOST and check.header["Change"] == "CHG-1042"
    plan = _plan(product)
    bodies = board_bodies(plan, CATALOG.product(product), load_patch_facts(), CATALOG)
    assert check.body_hashes == tuple(b.step.rendered.body_sha256 for b in bodies)
    # each body is what the remote run sends for the same action (values are bound, never in the body)
    sent = {
        "Status": render_action("status", product, {"ExcludeActivityLevel": True}),
        "State": render_action("patch-state", product, {"Name": ["RTCMEDSRV"]}),
        "Drain": render_action("drain", product, {"Name": "RTCMEDSRV", "NoWait": True}),
        "Stop": render_action("stop", product, {"Name": "RTCMEDSRV", "Force": True}),
        "Hold": render_action("patch-set-startup", product, {"Name": ["X"], "StartupType": "Manual"}),
        "Install": render_action(
            "patch-install", product, {"InstallerPath": "D:\\x.exe", "Switches": ["/a"]}
        ),
        "Restart": render_action("patch-restart", product, {}),
        "Start": render_action("start", product, {"Name": "RTCMEDSRV"}),
    }
    for body in bodies:
        assert body.step.rendered.body_sha256 == sent[body.name].body_sha256
        assert f"$ocspsBody{body.name} = {{\n" in text
        assert sent[body.name].body.rstrip("\n") in text
    edited = text.replace("$ocspsExpectVersion = '6.0.9319.619'", "$ocspsExpectVersion = '6.0.9319.620'")
    assert not verify_script(edited).ok


def test_an_edited_value_is_caught_but_windows_line_endings_are_not_an_edit() -> None:
    text = _board()
    assert verify_script("\ufeff" + text.replace("\n", "\r\n")).ok
    assert not verify_script(text.replace("'/silentmode'", "'/quiet'")).ok


def _part(text: str, part: str) -> str:
    start = (
        text.index(f"if ($Part -eq '{part}') {{")
        if part == "1"
        else text.index("    else {\n        $ocspsStep = 'read what Part 1 recorded'")
    )
    return text[start : text.index("\ncatch {", start)]


def test_part_one_decides_in_the_runners_order() -> None:
    """preflight (refuses a second Part 1) < drain < record the start-up types < hold < install < restart."""
    text = _board()
    one = _part(text, "1")
    order = [
        "Test-Path -LiteralPath $OcspsStatePath",  # a Part 1 whose Part 2 has not run: nothing changes
        "& $ocspsBodyStatus -ExcludeActivityLevel",
        '$ocspsProblems += "a restart is already pending',
        "-lt $ocspsMinFreeBytes",
        "$ocspsNow.Computer.InstallerFound -ne 'True'",
        "$ocspsNow.Components.Count -eq 0",
        "& $ocspsBodyDrain -Name $ocspsName -NoWait",
        "[System.IO.File]::WriteAllLines($OcspsStatePath",  # recorded on disk before any type changes
        "& $ocspsBodyHold -Name $ocspsHeld -StartupType 'Disabled'",
        "& $ocspsBodyInstall -InstallerPath $ocspsInstallerPath -Switches $ocspsSwitches",
        "$ocspsRebootCodes -contains $ocspsCode",
        'AppendAllText($OcspsStatePath, "installed',
        "$ocspsRestartNow = $true",
    ]
    # past the -WhatIf branch (which only shows each change), the changes in order
    real = one.index("while ($ocspsDeadline.Count -gt 0)")
    at = [one.index(m) for m in order[1:7]] + [real] + [one.index(m, real) for m in order[7:]]
    assert at == sorted(at)
    assert text.index(order[0]) < text.index(order[1])
    # the restart comes last, after the transcript is closed and the final state is read
    restart = text.rindex("if ($ocspsRestartNow) { & $ocspsBodyRestart")
    assert restart > text.index("try { Stop-Transcript | Out-Null }") > text.index("$ocspsEnd = & $ocspsRead")


def test_part_two_verifies_before_it_starts_and_restores_whatever_happens() -> None:
    text = _board()
    two = _part(text, "2")
    order = [
        "[System.IO.File]::ReadAllLines($OcspsStatePath)",
        "$ocspsNow.Computer.BootTime -eq $ocspsBoot",
        "$ocspsNow.Components[$_] -ne $ocspsExpectVersion",
        "& $ocspsRestore $ocspsHeld $ocspsTypes",
        "& $ocspsBodyStart -Name $ocspsName",
        "[System.IO.File]::Delete($OcspsStatePath)",
    ]
    at = [two.index(marker) for marker in order]
    assert at == sorted(at)
    final = text[text.index("\nfinally {") :]
    assert "$ocspsWrong = & $ocspsRestore $ocspsHeld $ocspsTypes" in final  # a stop still restores
    assert "OUT OF SERVICE" in final and "Held Disabled by this script" in final


def test_options_of_the_plan_become_the_scripts_values() -> None:
    text = _board(then="force-stop", reboot="never", drain_timeout=600.0, reboot_timeout=2700.0)
    assert "$ocspsThen = 'force-stop'" in text
    assert "$ocspsReboot = 'never'" in text
    assert "$ocspsDrainSeconds = 600\n" in text
    assert "$ocspsBackSeconds = 2700\n" in text
    facts = load_patch_facts()
    assert f"$ocspsSuccessCodes = @({', '.join(map(str, sorted(facts.success_codes)))})" in text
    assert f"$ocspsRebootCodes = @({', '.join(map(str, sorted(facts.reboot_codes)))})" in text
    assert text.count("'component-based-servicing'") == 1


def test_rendering_is_deterministic_and_the_file_name_is_safe() -> None:
    assert _board() == _board()
    plan = _plan("sfb2019")
    assert board_file_name(plan, "CHG 1/2") == "ocsps-patch-med01.contoso.com-CHG_1_2.ps1"


# ------------------------------------------------------------------------------------------- hostile values

HOSTILE = [
    "it's",
    "\u2019); Remove-Item C:\\ -Recurse; (\u2018",
    "$(Remove-Item C:\\)",
    "`$x`n",
    '"; exit 0; "',
    "#> <# comment",
    "a\nb",
    "a\r\nb",
    "tab\there",
]


def _literal_at(text: str, prefix: str) -> str:
    start = text.index(prefix) + len(prefix)
    found = [lit for lit in syntax.string_literals(text) if lit.start == start]
    assert len(found) == 1, f"no single literal after {prefix!r}"
    assert found[0].value is not None and found[0].kind == "verbatim"
    return found[0].value


def _checked(text: str, prefix: str, value: str) -> None:
    assert [f for f in syntax.parse(text) if not f.known_gap] == []
    assert _literal_at(text, prefix) == value
    assert verify_script(text).ok


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_installer_folder_stays_one_literal_or_is_refused(value: str) -> None:
    installer = f"C:\\Updates\\{value}\\SkypeServerUpdateInstaller.exe"
    try:
        plan = plan_patch(HOST, CATALOG.product("sfb2015"), installer, default_options("6.0.9319.619"))
    except UsageError:
        plan = dataclasses.replace(_plan("sfb2015"), installer_path=installer)  # past the planner's check
    try:
        text = render_patch_board(plan, change_id="CHG-1")
    except UsageError as exc:
        assert "\n" in value or "\r" in value, exc.message
        return
    _checked(text, "$ocspsInstallerPath = ", installer)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_expected_version_stays_one_literal_or_is_refused(value: str) -> None:
    with pytest.raises(UsageError):  # the planner refuses it first
        plan_patch(HOST, CATALOG.product("sfb2015"), INSTALLER, default_options(value))
    plan = _plan("sfb2015")
    plan = dataclasses.replace(plan, options=dataclasses.replace(plan.options, expect_version=value))
    try:
        text = render_patch_board(plan)
    except UsageError:
        assert "\n" in value or "\r" in value
        return
    _checked(text, "$ocspsExpectVersion = ", value)
    assert "# Action:   patch med01.contoso.com to " in text


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["change_id", "reason"])
def test_a_hostile_change_id_or_reason_stays_one_literal_or_is_refused(field: str, value: str) -> None:
    try:
        text = render_patch_board(_plan("sfb2015"), **{field: value})
    except UsageError:
        assert "\n" in value or "\r" in value
        return
    prefix = {"change_id": "$OcspsChangeId = ", "reason": "$OcspsReason = "}[field]
    _checked(text, prefix, value)
    if field == "change_id":
        # the state file's and the transcript's names are built from it: only safe characters remain
        state = _literal_at(text, "-ChildPath ")
        assert re.fullmatch(r"ocsps\\patch-[A-Za-z0-9._-]+\.txt", state), state


def test_a_product_ocsps_cannot_verify_gets_no_board(catalog: Catalog) -> None:
    """No plan, no script: the board never installs what cannot be checked afterwards."""
    refused = [p for p in PRODUCTS if p not in PLANNABLE]
    for product in refused:
        with pytest.raises(UsageError, match="cannot verify"):
            _plan(product)


def test_every_script_variable_is_set_before_it_is_read() -> None:
    """A misspelt variable is $null in PowerShell, silently: every ``$ocsps...`` read is assigned first.

    Checked in text order, which is the order the top-level code runs in; script blocks (the bodies,
    ``$ocspsRead``, ``$ocspsRestore``) are defined before any code calls them.
    """
    text = _board()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assigned = {"OcspsTarget", "OcspsChangeId", "OcspsReason", "OcspsStatePath", "OcspsTranscriptPath"}
    unset = []
    for match in re.finditer(r"\$(ocsps\w+|Ocsps\w+)", code):
        name = match.group(1)
        after = code[match.end() : match.end() + 4]
        before = code[max(0, match.start() - 10) : match.start()]
        if re.match(r"\s*=[^=]", after) or re.search(r"foreach \($", before) or before.endswith("[void]"):
            assigned.add(name)
        elif name not in assigned:
            unset.append(name)
    assert sorted(set(unset)) == []


def test_every_body_the_script_calls_is_defined_once() -> None:
    text = _board()
    called = set(re.findall(r"& \$ocspsBody(\w+)", text))
    defined = re.findall(r"^\$ocspsBody(\w+) = \{$", text, re.MULTILINE)
    assert sorted(defined) == sorted(set(defined))
    assert called == set(defined)
