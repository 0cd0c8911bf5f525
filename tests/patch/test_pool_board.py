"""``ocsps patch pool --emit-script``: each member's two-part script takes the member out with the pool's own
method, checks first what the roll checks before a member goes, is valid for the product, carries the bodies
ocsps sends, and states the order; every value stays one quoted literal."""

from __future__ import annotations

import re

import pytest

from ocsps.catalog import load_catalog
from ocsps.errors import UsageError
from ocsps.patch import default_options, load_patch_facts
from ocsps.patch.plan import PatchPlan
from ocsps.patch.pool import plan_pool_patch
from ocsps.patch.pool_board import ORDER_FILE, member_file_name, render_pool_boards
from ocsps.pool import RollOptions, RollState, UpgradeDomain, load_pool_facts
from ocsps.powershell import syntax
from ocsps.powershell.changeboard import verify_script
from ocsps.powershell.script import render_action
from tests.golden import CASES, pool_board_products
from tests.render.test_templates import _problems

CATALOG = load_catalog()
POOL = "pool01.contoso.com"
MEMBERS = ["fe01.contoso.com", "fe02.contoso.com", "fe03.contoso.com"]
DOMAINS = [
    UpgradeDomain("UD1", ("fe01.contoso.com", "fe03.contoso.com")),
    UpgradeDomain("UD2", ("fe02.contoso.com",)),
]
VERSION = CASES["patch_version"]
PRODUCTS = pool_board_products(CATALOG)
FAILOVER = [p for p in PRODUCTS if load_pool_facts().products[p].method.value == "failover"]
DRAIN = [p for p in PRODUCTS if p not in FAILOVER]


def _installer(product: str) -> str:
    return "C:\\Updates\\" + load_patch_facts().for_product(product).installer


def _planned(
    product: str, *, sql: str = "sql01.contoso.com", database_update: bool = True, **roll: object
) -> tuple[RollState, list[PatchPlan]]:
    return plan_pool_patch(
        POOL,
        CATALOG.product(product),
        MEMBERS,
        _installer(product),
        default_options(VERSION),
        domains=DOMAINS,
        roll_options=RollOptions.defaults(**roll),
        sql_server=sql,
        database_update=database_update,
    )


def _files(product: str, change_id: str = "CHG-1042", reason: str = "CU", **kw: object) -> dict[str, str]:
    state, plans = _planned(product, **kw)  # type: ignore[arg-type]
    return render_pool_boards(state, plans, change_id=change_id, reason=reason)


def _part(text: str, part: str) -> str:
    start = (
        text.index(f"if ($Part -eq '{part}') {{")
        if part == "1"
        else text.index("    else {\n        $ocspsStep = 'read what Part 1 recorded'")
    )
    return text[start : text.index("\ncatch {", start)]


def _in_order(text: str, markers: list[str]) -> None:
    """Each marker occurs after the previous one (a ``-WhatIf`` branch may show a call earlier too)."""
    at = 0
    for marker in markers:
        found = text.find(marker, at)
        assert found >= 0, f"{marker!r} does not come after the markers before it"
        at = found + len(marker)


def test_the_three_pool_methods_are_covered() -> None:
    assert {"sfb2015", "sfb2019"} <= set(FAILOVER)
    assert {"lync2013", "lync2010"} <= set(DRAIN)


@pytest.mark.parametrize("product", PRODUCTS)
def test_one_valid_self_checking_script_per_member_in_roll_order(product: str) -> None:
    files = _files(product)
    state, _plans = _planned(product)
    expected = [member_file_name(s) for s in state.plan.servers]
    assert list(files) == [*expected, ORDER_FILE]
    for server in state.plan.servers:
        text = files[member_file_name(server)]
        assert _problems(CATALOG, CATALOG.product(product), text) == []
        assert syntax.newer_constructs(text, "2.0") == []
        check = verify_script(text)
        assert check.ok, check.reason
        assert check.header["Target"] == server and check.header["Change"] == "CHG-1042"
        assert f"$OcspsTarget = '{server}'" in text


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_pool_bodies_are_what_the_roll_sends(product: str) -> None:
    text = _files(product)[member_file_name(MEMBERS[0])]
    actions = {
        "Fabric": ("pool-fabric", {"PoolFqdn": "x.contoso.com"}),
        "Readiness": ("pool-readiness", {}),
        "FailOver": ("pool-failover", {"ComputerName": "x", "WaitTimeSeconds": 1}),
        "FailBack": ("pool-failback", {"ComputerName": "x", "WaitTimeSeconds": 1}),
        "Drain": ("drain", {"Name": "RTCSRV", "NoWait": True}),
        "Stop": ("stop", {"Name": "RTCSRV", "Force": True}),
        "Start": ("start", {"Name": "RTCSRV"}),
    }
    defined = re.findall(r"^\$ocspsBody(\w+) = \{$", text, re.MULTILINE)
    called = set(re.findall(r"& \$ocspsBody(\w+)", text))
    assert sorted(defined) == sorted(set(defined)) and called == set(defined)
    for name in set(defined) & set(actions):
        action, values = actions[name]
        sent = render_action(action, product, values)
        assert sent.body.rstrip("\n") in text, name
        assert f"Body {name}: " in text and sent.body_sha256 in text
    cmdlet_products = {"sfb2015", "sfb2019", "lync2013"}
    assert ("Readiness" in defined) == (product in cmdlet_products)
    assert ("Fabric" in defined) == (product in cmdlet_products)
    assert ("FailOver" in defined) == (product in FAILOVER) == ("FailBack" in defined)
    assert ("Drain" in defined) == (product in DRAIN) == ("Start" in defined) == ("Stop" in defined)


@pytest.mark.parametrize("product", FAILOVER)
def test_failover_takes_the_member_out_after_the_pool_check_and_fails_back_last(product: str) -> None:
    text = _files(product, wait_time=1800.0, draining_timeout=900.0)[member_file_name(MEMBERS[0])]
    one, two = _part(text, "1"), _part(text, "2")
    _in_order(
        one,
        [
            "Test-Path -LiteralPath $OcspsStatePath",
            "& $ocspsBodyFabric -PoolFqdn $ocspsPoolFqdn",
            "& $ocspsBodyReadiness",
            "if ($ocspsAnswer -ne $ocspsReadyState) { throw",
            "& $ocspsBodyStatus -ExcludeActivityLevel",
            "& $ocspsBodyFailOver -ComputerName $OcspsTarget -WaitTimeSeconds $ocspsWaitSeconds "
            "-DrainingTimeoutSeconds $ocspsDrainingTimeoutSeconds",
            "still not stopped after the failover",
            # the types recorded are those the failover left: it disables the services itself
            "$ocspsTypes[$ocspsName] = $ocspsStartupOf[[string]$ocspsNow.Services[$ocspsName].StartMode]",
            "[System.IO.File]::WriteAllLines($OcspsStatePath",
            "& $ocspsBodyInstall -InstallerPath",
            "$ocspsRestartNow = $true",
        ],
    )
    assert "& $ocspsBodyDrain" not in text and "& $ocspsBodyStart" not in text
    _in_order(
        two,
        [
            "$ocspsNow.Components[$_] -ne $ocspsExpectVersion",
            "& $ocspsRestore $ocspsHeld $ocspsTypes",
            "& $ocspsBodyFailBack -ComputerName $OcspsTarget -WaitTimeSeconds $ocspsWaitSeconds",
            "[System.IO.File]::Delete($OcspsStatePath)",
            'Write-Host "Next: $ocspsNext"',
        ],
    )
    # stopped after the failover and before the end of the install: Part 2 cannot take over, so it says how
    final = text[text.index("\nfinally {") :]
    _in_order(one, ["$ocspsFailedOver = -not $ocspsWhatIf", "& $ocspsBodyFailOver", "& $ocspsBodyInstall"])
    _in_order(
        final,
        [
            "if ($ocspsFailedOver -and -not $ocspsDone) {",
            "stays FAILED OVER, or partly so (out of the pool). Once the cause is fixed: "
            "Invoke-CsComputerFailBack -ComputerName $OcspsTarget",
        ],
    )
    assert "$ocspsWaitSeconds = 1800\n" in text and "$ocspsDrainingTimeoutSeconds = 900\n" in text
    assert "Invoke-CsComputerFailOver in Part 1, Invoke-CsComputerFailBack at the end of Part 2" in text


@pytest.mark.parametrize("product", DRAIN)
def test_drain_products_drain_each_service_with_the_rolls_deadlines_and_start_them(product: str) -> None:
    text = _files(product, drain_timeout=1200.0)[member_file_name(MEMBERS[0])]
    one, two = _part(text, "1"), _part(text, "2")
    gate = (
        "& $ocspsBodyReadiness"
        if product == "lync2013"
        else "Get-CsWindowsService -ComputerName $ocspsMember"
    )
    _in_order(
        one, [gate, "& $ocspsBodyStatus -ExcludeActivityLevel", "& $ocspsBodyDrain -Name $ocspsName -NoWait"]
    )
    _in_order(two, ["& $ocspsRestore $ocspsHeld $ocspsTypes", "& $ocspsBodyStart -Name $ocspsName"])
    assert "Invoke-CsComputerFailOver" not in text
    # the roll's deadline to leave the pool, and pools.toml's per-service deadlines with their own policy
    assert "$ocspsDrainSeconds = 1200\n" in text and "$ocspsThen = 'stop'\n" in text
    facts = load_pool_facts()
    for rule in facts.service_drain:
        assert f"'{rule.service}' = {round(rule.deadline)}" in text
        assert f"'{rule.service}' = '{rule.then}'" in text


def test_lync2010_checks_every_other_members_front_end_instead_of_a_readiness_cmdlet() -> None:
    text = _files("lync2010")[member_file_name(MEMBERS[1])]
    assert "Get-CsPoolUpgradeReadinessState" not in text and "Get-CsPoolFabricState" not in text
    assert f"$ocspsMembers = @('{MEMBERS[0]}','{MEMBERS[1]}','{MEMBERS[2]}')" in text
    assert f"$ocspsFrontEnd = '{load_pool_facts().defaults.front_end_service}'" in text
    assert "#Requires -Version 2.0" in text


def test_the_order_follows_the_upgrade_domains_and_ends_with_the_databases() -> None:
    files = _files("lync2013")
    order = files[ORDER_FILE]
    lines = order.splitlines()
    numbered = [line.strip() for line in lines if re.match(r"\s+\d+\. ", line)]
    assert numbered == [
        "1. fe01.contoso.com (upgrade domain UD1): fe01.contoso.com.ps1",
        "2. fe03.contoso.com (upgrade domain UD1): fe03.contoso.com.ps1",
        "3. fe02.contoso.com (upgrade domain UD2): fe02.contoso.com.ps1",
    ]
    assert "Install-CsDatabase -ConfiguredDatabases -SqlServerFqdn sql01.contoso.com -Update" in order
    assert order.index("Between members") < order.index("After the last member")
    for line in lines:  # every script carries the same order in its header
        for name in files:
            if name != ORDER_FILE:
                assert f"# {line}" in files[name]
    # each member says which one comes next; the last one names the database step
    assert "then run fe03.contoso.com.ps1 -Part 1 on fe03.contoso.com." in files["fe01.contoso.com.ps1"]
    assert "then run fe02.contoso.com.ps1 -Part 1 on fe02.contoso.com." in files["fe03.contoso.com.ps1"]
    last = files["fe02.contoso.com.ps1"]
    next_line = next(line for line in last.splitlines() if line.startswith("$ocspsNext = "))
    assert "this was the last member" in next_line and "Install-CsDatabase" in next_line


@pytest.mark.parametrize(
    ("product", "kw", "expected"),
    [
        ("sfb2015", {"database_update": False}, "no database update was asked for"),
        ("lync2010", {}, "has no Test-CsDatabase"),
        ("sfb2019", {}, "ocsps patch database --host <a member> --sql-server sql01.contoso.com"),
    ],
)
def test_the_database_step_is_the_one_the_product_has(
    product: str, kw: dict[str, object], expected: str
) -> None:
    assert expected in _files(product, **kw)[ORDER_FILE]


def test_rendering_is_deterministic_and_the_standalone_script_is_not_the_pool_one() -> None:
    assert _files("sfb2015") == _files("sfb2015")
    text = _files("sfb2015")[member_file_name(MEMBERS[0])]
    assert "IN A POOL" in text
    from tests.golden import render_patch_board

    assert "IN A POOL" not in render_patch_board("sfb2015") and "$ocspsPoolFqdn" not in render_patch_board(
        "sfb2015"
    )


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_script_variable_is_set_before_it_is_read(product: str) -> None:
    text = _files(product)[member_file_name(MEMBERS[0])]
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


# ------------------------------------------------------------------------------------------- hostile values

HOSTILE = [
    "it's",
    "\u2019); Remove-Item C:\\ -Recurse; (\u2018",
    "$(Remove-Item C:\\)",
    "`$x`n",
    '"; exit 0; "',
    "#> <# comment",
    "a\nb",
    "tab\there",
]


def _literal_at(text: str, prefix: str) -> str:
    start = text.index(prefix) + len(prefix)
    found = [lit for lit in syntax.string_literals(text) if lit.start == start]
    assert len(found) == 1, f"no single literal after {prefix!r}"
    assert found[0].value is not None and found[0].kind == "verbatim"
    return found[0].value


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["change_id", "reason"])
def test_a_hostile_change_id_or_reason_stays_one_literal_or_is_refused(field: str, value: str) -> None:
    try:
        files = _files("sfb2015", **{field: value})
    except UsageError:
        assert "\n" in value or "\r" in value
        return
    prefix = {"change_id": "$OcspsChangeId = ", "reason": "$OcspsReason = "}[field]
    for name, text in files.items():
        if name == ORDER_FILE:
            continue
        assert [f for f in syntax.parse(text) if not f.known_gap] == []
        assert _literal_at(text, prefix) == value
        assert verify_script(text).ok


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_pool_or_member_name_is_refused_or_stays_one_literal(value: str) -> None:
    """Names are checked by the roll's planner; past it (a plan built by hand), they stay literals."""
    for pool, members in ((f"pool{value}.contoso.com", MEMBERS), (POOL, [*MEMBERS[:2], f"fe{value}"])):
        try:
            state, plans = plan_pool_patch(
                pool,
                CATALOG.product("sfb2015"),
                members,
                _installer("sfb2015"),
                default_options(VERSION),
                sql_server="sql01.contoso.com",
            )
        except UsageError:
            continue
        try:
            files = render_pool_boards(state, plans)
        except UsageError:
            assert "\n" in value
            continue
        for name, text in files.items():
            if name == ORDER_FILE:
                continue
            assert [f for f in syntax.parse(text) if not f.known_gap] == []
            assert _literal_at(text, "$ocspsPoolFqdn = ") == pool
            assert verify_script(text).ok
            assert re.fullmatch(r"[A-Za-z0-9._-]+\.ps1", name)


def test_a_hostile_sql_server_in_the_header_stays_a_comment() -> None:
    state, plans = _planned("sfb2015", sql="sql01.contoso.com")
    state.request["sql_server"] = "x #> <# \u2028 $(evil)"
    text = render_pool_boards(state, plans)[member_file_name(MEMBERS[0])]
    assert [f for f in syntax.parse(text) if not f.known_gap] == []
    assert verify_script(text).ok
    assert "\u2028" not in text


def test_two_members_that_would_share_a_file_name_are_refused() -> None:
    state, plans = plan_pool_patch(
        POOL,
        CATALOG.product("lync2010"),
        ["fe 1.contoso.com", "fe_1.contoso.com"],
        _installer("lync2010"),
        default_options(VERSION),
    )
    with pytest.raises(UsageError, match=re.escape("share the file name fe_1.contoso.com.ps1")):
        render_pool_boards(state, plans)
