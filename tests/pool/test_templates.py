"""The pool templates: the right cmdlet per product, -Force never with -WhatIf, values bound not pasted,
and a whole roll as one change-board script that verifies and parses."""

from __future__ import annotations

import pytest

from ocsps.catalog import load_catalog
from ocsps.errors import UsageError
from ocsps.pool import StepSpec, load_pool_facts, plan_roll, roll_steps
from ocsps.powershell import syntax
from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board, verify_script
from ocsps.powershell.script import render_action
from tests.pool.fakes import members, options

CATALOG = load_catalog()
FACTS = load_pool_facts()
CS_PRODUCTS = [p for p in CATALOG.products.values() if p.service_control == "cs"]


def _problems(product_id: str, script: str) -> list[str]:
    product = CATALOG.product(product_id)
    found = [f"{f.grammar}: {f.kind} {f.snippet!r}" for f in syntax.parse(script) if not f.known_gap]
    found += [n.construct for n in syntax.newer_constructs(script, product.powershell)]
    for call in syntax.commands(script):
        if call.native or call.invocation:
            continue
        accepted = CATALOG.cmdlet_parameters(product, call.name)
        if accepted is None:
            found.append(f"{call.name} does not exist on {product_id}")
            continue
        found += [f"{call.name} -{p}" for p in call.parameters if p.casefold() not in accepted]
    return found


@pytest.mark.parametrize("product", CS_PRODUCTS, ids=lambda p: p.id)
def test_readiness_uses_the_cmdlet_pools_toml_names(product: object) -> None:
    from ocsps.catalog import Product

    assert isinstance(product, Product)
    roll = FACTS.products.get(product.id)
    if roll is None or not roll.readiness_cmdlet:  # no readiness cmdlet: Lync Server 2010 reads members
        with pytest.raises(UsageError, match="pool upgrade readiness arrived with Lync Server 2013"):
            render_action("pool-readiness", product)
        return
    body = render_action("pool-readiness", product).body
    other = {"Get-CsPoolUpgradeReadinessState", "Get-CsUpgradeDomainInfo"} - {roll.readiness_cmdlet}
    assert f"@({roll.readiness_cmdlet})" in body and not any(o in body for o in other)


@pytest.mark.parametrize("product", CS_PRODUCTS, ids=lambda p: p.id)
def test_failover_exists_where_pools_toml_says_failover(product: object) -> None:
    from ocsps.catalog import Product

    assert isinstance(product, Product)
    roll = FACTS.products.get(product.id)
    values = {"ComputerName": "fe01", "WaitTimeSeconds": 60}
    if roll is None or roll.method.value != "failover":
        with pytest.raises(UsageError, match="computer failover arrived with Skype for Business"):
            render_action("pool-failover", product, values)
        return
    assert "Invoke-CsComputerFailOver -ComputerName" in render_action("pool-failover", product, values).body


def test_failover_never_combines_force_with_whatif() -> None:
    rendered = render_action(
        "pool-failover", "sfb2019", {"ComputerName": "fe01", "WaitTimeSeconds": 60, "Force": True}
    )
    body = rendered.body
    guard = body.index("if ($Force -and $WhatIfPreference)")
    assert guard < body.index("Invoke-CsComputerFailOver -ComputerName")
    assert "throw 'Refusing -Force together with -WhatIf" in body
    calls = [c for c in syntax.commands(rendered.script) if c.name == "Invoke-CsComputerFailOver"]
    assert len(calls) == 2 and all("WhatIf" not in c.parameters for c in calls)
    assert "$PSCmdlet.ShouldProcess($ComputerName, 'Invoke-CsComputerFailOver')" in body


def test_step_script_is_bound_never_pasted() -> None:
    marker = "zz-never-in-the-script-zz"
    rendered = render_action(
        "pool-step", "sfb2015", {"StepScript": (f"Write-Output '{marker}'",), "StepName": marker}
    )
    assert marker not in rendered.script
    assert rendered.bound_parameters["StepScript"] == [f"Write-Output '{marker}'"]
    assert _problems("sfb2015", rendered.script) == []


@pytest.mark.parametrize("product", ["lync2013", "sfb2015", "sfb2019"])
@pytest.mark.parametrize("step", ["pause", "script"])
def test_a_whole_roll_is_one_verifiable_change_board_script(product: str, step: str) -> None:
    prod = CATALOG.product(product)
    spec = (
        StepSpec("script", "patch.ps1", ("Write-Output 'patching'", "Get-Date"))
        if step == "script"
        else StepSpec("pause")
    )
    plan = plan_roll("pool01.contoso.com", prod, members(3))
    steps = roll_steps(plan, options(step=spec))
    board = [Step(s.label, render_action(s.action, prod, dict(s.values))) for s in steps]
    text = render_change_board(
        "rolling maintenance of pool01.contoso.com", board, ChangeInfo("", "CHG-1", "CU")
    )
    assert verify_script(text).ok
    assert _problems(product, text) == []
    for item in board:
        assert item.rendered.body.rstrip("\n") in text
    assert text.count("# ---- end of body sha256") == len(board)
    if step == "script":
        assert "-StepScript @('Write-Output ''patching''', 'Get-Date')" in text
    else:
        assert "Read-Host -Prompt" in text
