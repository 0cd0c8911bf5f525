"""The change-board form of a restart: same rules as a run, PowerShell 2.0, the bodies ocsps sends."""

from __future__ import annotations

import re

import pytest

from ocsps.catalog import Catalog
from ocsps.plans.restart import ServiceStep, plan_restart, plan_steps, service_restart_steps
from ocsps.plans.restart_document import plan_document
from ocsps.plans.restart_script import render_restart_board, rendered_steps
from ocsps.powershell.changeboard import ChangeInfo, verify_script
from ocsps.powershell.syntax import newer_constructs, parse

BOARDS = {
    "plan-front-end": ("ocs2007r2", ["MSFT_SIPRoutingSetting.DefaultPort"], None),
    "plan-archiving-with-sql": ("ocs2007r2", ["move-archiving-database"], None),
    "plan-edge-dependent": ("ocs2007", ["MSFT_SIPMediaRelayNetworkInterfaceData"], None),
    "service-application-host": ("ocs2007r2", [], "ocs-application-host"),
    "service-lync2010-media-relay": ("lync2010", [], "RTCMEDIARELAY"),
    "service-sfb2019-media-relay": ("sfb2019", [], "RTCMEDIARELAY"),
}


def _board(catalog: Catalog, name: str) -> tuple[str, list[ServiceStep]]:
    product_id, changed, service = BOARDS[name]
    product = catalog.product(product_id)
    if service is None:
        _, steps = plan_steps(plan_document(plan_restart(changed, product=product_id)), catalog)
    else:
        steps = service_restart_steps(catalog, product, catalog.find_service(product, service))
    text = render_restart_board(name, product, steps, ChangeInfo("fe01.contoso.com", "CHG-9", "test"))
    return text, list(steps)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_parses_and_stays_within_the_products_powershell(catalog: Catalog, name: str) -> None:
    text, _ = _board(catalog, name)
    product = catalog.product(BOARDS[name][0])
    assert parse(text) == []
    assert newer_constructs(text, product.powershell) == []
    assert verify_script(text).ok


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_looks_up_before_stopping_and_restores_in_finally(catalog: Catalog, name: str) -> None:
    text, steps = _board(catalog, name)
    lookup = text.index("$ocspsFound[$ocspsKey] = Find-OcspsService $ocspsKey")
    step_one = text.index("Step 1 of")
    assert lookup < step_one < text.index("& $ocspsBody", step_one)
    finally_at = text.index("\nfinally {")
    assert text.index("& $ocspsStart[$ocspsKey]") > finally_at, "the restore runs even after Ctrl-C"
    assert text.index('Write-Warning "Down:') > finally_at
    assert "[switch]$OcspsNoRestore" in text
    # every service that can be stopped has a start to restore it with
    stopped = {s.service.key for s in steps if s.verb == "stop"}
    for key in stopped:
        assert f"$ocspsStart['{key}'] = " in text


def test_step_bodies_are_what_ocsps_sends(catalog: Catalog) -> None:
    text, steps = _board(catalog, "service-application-host")
    product = catalog.product("ocs2007r2")
    header = text.split("#Requires", 1)[0]
    for step in rendered_steps(steps, product):
        assert step.rendered.body_sha256 in header
        assert step.rendered.body.rstrip("\n") in text
    assert verify_script(text).body_hashes == tuple(
        s.rendered.body_sha256 for s in rendered_steps(steps, product)
    )


def test_dependent_start_is_conditional_on_this_script_having_stopped_it(catalog: Catalog) -> None:
    text, _ = _board(catalog, "service-application-host")
    assert len(re.findall(r"elseif \(-not \$ocspsStopped\.Contains\('ocs-[a-z-]+'\)\)", text)) == 4


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_cmdlet_and_parameter_exists_on_the_product(catalog: Catalog, name: str) -> None:
    from ocsps.powershell import syntax

    text, _ = _board(catalog, name)
    product = catalog.product(BOARDS[name][0])
    problems = []
    for call in syntax.commands(text):
        if call.native or call.invocation or call.name == "Find-OcspsService":
            continue
        accepted = catalog.cmdlet_parameters(product, call.name)
        if accepted is None:
            problems.append(f"{call.name} does not exist on {product.id}")
            continue
        problems += [f"{call.name} -{p}" for p in call.parameters if p.casefold() not in accepted]
    assert problems == []
