"""Every template, for every product it supports, is valid PowerShell for that product.

No PowerShell runs here, so validity is checked statically: both tree-sitter grammars parse the script with
no error, no construct is newer than the product's PowerShell level, and every cmdlet call uses only
parameters the catalog lists for that cmdlet on that product.
"""

from __future__ import annotations

import pytest

from ocsps.catalog import Action, ActionParam, Catalog, Product, load_catalog
from ocsps.powershell import syntax
from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board
from ocsps.powershell.script import RenderedScript, render_action, render_module_import

CATALOG = load_catalog()


def _sample(param: ActionParam) -> object:
    return {"strings": ("25049", "25050"), "int": 5, "switch": True}.get(param.type, "sample-value")


def _combinations() -> list[tuple[str, str]]:
    return [
        (a.name, p.id)
        for a in CATALOG.actions.values()
        for p in CATALOG.products.values()
        if CATALOG.supports(a, p)
    ]


def _render(action: Action, product: Product, *, all_params: bool) -> RenderedScript:
    values = {p.name: _sample(p) for p in CATALOG.action_params(action, product) if p.required or all_params}
    return render_action(action.name, product, values)


def _problems(catalog: Catalog, product: Product, script: str) -> list[str]:
    found = [f"{f.grammar}: {f.kind} at {f.line}:{f.column} {f.snippet!r}" for f in syntax.parse(script)]
    found += [
        f"needs PowerShell {n.min_version}: {n.construct}"
        for n in syntax.newer_constructs(script, product.powershell)
    ]
    for call in syntax.commands(script):
        if call.native or call.invocation:
            continue
        assert not call.splats, "templates do not splat: parameters must be visible to this check"
        accepted = catalog.cmdlet_parameters(product, call.name)
        if accepted is None:
            found.append(f"{call.name} does not exist on {product.id}")
            continue
        found += [
            f"{call.name} has no -{p} on {product.id}"
            for p in call.parameters
            if p.casefold() not in accepted
        ]
    return found


@pytest.mark.parametrize(("action", "product"), _combinations())
@pytest.mark.parametrize("all_params", [False, True], ids=["required", "all"])
def test_remote_script_is_valid_for_product(action: str, product: str, all_params: bool) -> None:
    prod = CATALOG.product(product)
    rendered = _render(CATALOG.action(action), prod, all_params=all_params)
    assert rendered.script.startswith("[CmdletBinding(SupportsShouldProcess=$true)]\nparam(")
    assert f"# ocsps:action={action}" in rendered.body
    assert _problems(CATALOG, prod, rendered.script) == []


@pytest.mark.parametrize(("action", "product"), _combinations())
def test_change_board_script_is_valid_for_product(action: str, product: str) -> None:
    prod = CATALOG.product(product)
    rendered = _render(CATALOG.action(action), prod, all_params=True)
    text = render_change_board(
        action, [Step(action, rendered)], ChangeInfo("srv01.contoso.com", "CHG-1", "test")
    )
    assert _problems(CATALOG, prod, text) == []
    # the body that runs remotely appears byte-for-byte in the approved file
    assert rendered.body.rstrip("\n") in text
    assert rendered.body_sha256 in text


@pytest.mark.parametrize("product", list(CATALOG.products))
def test_module_import_is_valid(product: str) -> None:
    prod = CATALOG.product(product)
    text = render_module_import(prod)
    if not prod.module:  # OCS has no module: only comments remain (which one grammar cannot parse alone)
        assert all(line.startswith("#") for line in text.splitlines() if line.strip())
        return
    assert f"Import-Module -Name '{prod.module}'" in text
    assert _problems(CATALOG, prod, text) == []


def test_values_never_appear_in_remote_script() -> None:
    marker = "zz-value-that-must-be-bound-zz"
    rendered = render_action("wmi-setting", "ocs2007r2", {"Class": marker, "Property": (marker,)})
    assert marker not in rendered.script
    assert rendered.bound_parameters == {"Class": marker, "Property": [marker]}


def test_a_newer_construct_is_caught_for_powershell_2() -> None:
    """The check has teeth: a PowerShell 3 construct in a 2.0 product's script is reported."""
    prod = CATALOG.product("lync2010")
    rendered = render_action("status", prod, {})
    bad = rendered.script + "\n$x = [pscustomobject]@{ A = 1 }\n"
    assert any("PowerShell 3" in p for p in _problems(CATALOG, prod, bad))
    assert _problems(CATALOG, CATALOG.product("sfb2019"), bad.replace("lync2010", "sfb2019")) == []


def test_a_parameter_missing_on_the_product_is_caught() -> None:
    prod = CATALOG.product("lync2010")
    script = "Stop-CsWindowsService -Name RTCSRV -Graceful -LeaveClsAgentRunning\n"
    assert _problems(CATALOG, prod, script) == [
        "Stop-CsWindowsService has no -LeaveClsAgentRunning on lync2010"
    ]
    assert _problems(CATALOG, CATALOG.product("lync2013"), script) == []


def test_leave_running_switches_only_from_2013() -> None:
    assert "LeaveClsAgentRunning" not in render_action("drain", "lync2010", {"Name": "RTCMEDSRV"}).script
    assert (
        "-LeaveClsAgentRunning:$LeaveClsAgentRunning"
        in render_action("drain", "lync2013", {"Name": "RTCMEDSRV"}).script
    )


def test_rendering_is_deterministic() -> None:
    def once() -> str:
        r = render_action("drain", "sfb2015", {"Name": "RTCMEDSRV", "NoWait": True})
        return render_change_board(
            "drain", [Step("drain", r)], ChangeInfo("med01.contoso.com", "CHG-9", "patch")
        )

    assert once() == once()


@pytest.mark.parametrize(
    ("action", "product", "reason"),
    [
        ("pool-readiness", "lync2010", "pool upgrade readiness arrived with Lync Server 2013"),
        ("pool-fabric", "lync2010", "no Windows Fabric before Lync Server 2013"),
        ("pool-failover", "lync2013", "computer failover arrived with Skype for Business Server 2015"),
        ("pool-failback", "lync2013", "computer failback arrived with Skype for Business Server 2015"),
    ],
)
def test_an_action_a_product_lacks_is_refused_when_rendering(action: str, product: str, reason: str) -> None:
    """Refused in Python, before any script exists: never a script that throws on the server."""
    from ocsps.errors import UsageError

    with pytest.raises(UsageError) as refused:
        render_action(action, product, {"PoolFqdn": "pool.contoso.com", "ComputerName": "fe01.contoso.com"})
    assert reason in refused.value.message


def test_no_template_branches_on_a_product_id() -> None:
    """Product differences are catalog data (actions.toml `since`, pools.toml), not template logic."""
    from ocsps.powershell.script import templates_dir

    templates = templates_dir().glob("*.j2")
    branching = [p.name for p in templates if "product.id" in p.read_text(encoding="utf-8")]
    assert branching == []
