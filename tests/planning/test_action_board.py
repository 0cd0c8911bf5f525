"""The change-board script for one action: the choices ``ocsps render``, ``--emit-script`` and Ansible
share.

Their byte-for-byte output is pinned by the golden copies in ``tests/golden/cli``.
"""

from __future__ import annotations

import re

import pytest

from ocsps.catalog import Catalog
from ocsps.errors import UsageError
from ocsps.plans.action_board import action_board, action_values
from ocsps.plans.restart import service_restart_steps
from ocsps.plans.restart_script import render_restart_board
from ocsps.powershell.changeboard import ChangeInfo, verify_script
from ocsps.powershell.script import render_action

INFO = ChangeInfo("srv01.contoso.com", "CHG-1042", "Cumulative update")

# A service with a dependent, per product: a bare restart cmdlet would be refused while the dependent runs.
WITH_DEPENDENT = {
    "ocs2007": ("ocs-av-edge", "ocs-av-authentication"),
    "ocs2007r2": ("ocs-application-host", "ocs-response-group"),
    "lync2010": ("RTCMEDIARELAY", "RTCMRAUTH"),
    "lync2013": ("RTCMEDIARELAY", "RTCMRAUTH"),
    "sfb2015": ("RTCMEDIARELAY", "RTCMRAUTH"),
    "sfb2019": ("RTCMEDIARELAY", "RTCMRAUTH"),
}


def _param_line(text: str, name: str) -> str:
    found = re.search(rf"^\s*\[\w+\]\${name}\b.*$", text, re.MULTILINE)
    assert found is not None, f"no parameter {name}"
    return found.group(0).strip().rstrip(",")


def test_every_product_has_a_restart_case(catalog: Catalog) -> None:
    assert set(WITH_DEPENDENT) == set(catalog.products)


@pytest.mark.parametrize("product_id", sorted(WITH_DEPENDENT))
def test_restart_is_the_board_that_brings_the_dependents_back(catalog: Catalog, product_id: str) -> None:
    service, dependent = WITH_DEPENDENT[product_id]
    product = catalog.product(product_id)
    text = action_board("restart", product_id, service=service, info=INFO, catalog=catalog)
    steps = service_restart_steps(catalog, product, catalog.find_service(product, service))
    assert text == render_restart_board(f"restart {service}", product, steps, INFO, catalog=catalog)
    assert steps[0].service.key == dependent, "the dependent stops first"
    bare = render_action("restart", product, catalog.service_parameters(product, steps[1].service))
    check = verify_script(text)
    assert check.ok and len(check.body_hashes) == len(steps)
    assert bare.body_sha256 not in check.body_hashes, "not the plain restart cmdlet"


def test_force_reaches_the_stops_of_a_restart(catalog: Catalog) -> None:
    plain = action_board("restart", "lync2010", service="RTCMEDIARELAY", catalog=catalog)
    forced = action_board("restart", "lync2010", service="RTCMEDIARELAY", force=True, catalog=catalog)
    stops = [line.strip() for line in forced.splitlines() if line.strip().endswith(" -Force")]
    assert stops == ["& $ocspsBody1 -Name 'RTCMRAUTH' -Force", "& $ocspsBody1 -Name 'RTCMEDIARELAY' -Force"]
    assert not [line for line in plain.splitlines() if line.strip().endswith(" -Force")]
    assert forced == action_board(
        "restart", "lync2010", service="RTCMEDIARELAY", extra={"Force": True}, catalog=catalog
    )


def test_a_drain_board_waits_unless_told_not_to(catalog: Catalog) -> None:
    waits = action_board("drain", "sfb2019", service="RTCMEDSRV", catalog=catalog)
    returns = action_board("drain", "sfb2019", service="RTCMEDSRV", extra={"NoWait": True}, catalog=catalog)
    assert _param_line(waits, "NoWait") == "[switch]$NoWait"
    assert _param_line(returns, "NoWait") == "[switch]$NoWait = $true"
    assert action_values("drain", "sfb2019", service="RTCMEDSRV", catalog=catalog)["NoWait"] is False
    assert "NoWait" not in action_values("stop", "sfb2019", service="RTCMEDSRV", catalog=catalog)


def test_leave_running_switches_are_on_by_default_in_the_script(catalog: Catalog) -> None:
    text = action_board(
        "drain",
        "lync2013",
        service="RTCMEDSRV",
        leave_running={"LeaveClsAgentRunning": True},
        catalog=catalog,
    )
    assert _param_line(text, "LeaveClsAgentRunning") == "[switch]$LeaveClsAgentRunning = $true"
    assert _param_line(text, "LeaveWebServerRunning") == "[switch]$LeaveWebServerRunning"


def test_the_title_names_the_service_as_given(catalog: Catalog) -> None:
    text = action_board("stop", "sfb2015", service="rtcmedsrv", catalog=catalog)
    assert "# Action:   stop rtcmedsrv\n" in text
    assert "# Action:   status\n" in action_board("status", "sfb2015", catalog=catalog)


def test_same_inputs_same_bytes(catalog: Catalog) -> None:
    once = action_board("drain", "lync2010", service="RTCMEDSRV", info=INFO, catalog=catalog)
    assert once == action_board("drain", catalog.product("lync2010"), service="RTCMEDSRV", info=INFO)


REFUSED = [
    ("restart without a service", ("restart", "sfb2019"), {}, "needs the service"),
    (
        "force on a start",
        ("start", "sfb2019"),
        {"service": "RTCMEDSRV", "force": True},
        "no parameter 'Force'",
    ),
    (
        "leave running on a restart",
        ("restart", "lync2013"),
        {"service": "RTCMEDSRV", "leave_running": {"LeaveClsAgentRunning": True}},
        "no parameter 'LeaveClsAgentRunning'",
    ),
    ("a drain where there is none", ("drain", "ocs2007r2"), {"service": "ocs-frontend"}, "drain"),
    ("an unknown service", ("stop", "sfb2019"), {"service": "RTCNOPE"}, "RTCNOPE"),
    ("an unknown product", ("stop", "lcs2005"), {"service": "RTCMEDSRV"}, "lcs2005"),
    ("an unknown action", ("explode", "sfb2019"), {}, "explode"),
    ("an unknown value", ("status", "sfb2019"), {"extra": {"Bogus": "x"}}, "Bogus"),
    ("a value that is code", ("stop", "sfb2019"), {"service": "RTCMEDSRV", "info": ChangeInfo("a\nb")}, ""),
]


@pytest.mark.parametrize(("case", "words", "options", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_input_is_one_clear_refusal(
    catalog: Catalog, case: str, words: tuple[str, str], options: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as refused:
        action_board(*words, catalog=catalog, **options)  # type: ignore[arg-type]
    assert message in refused.value.message and "\n" not in refused.value.message
