"""The lab's own facts (ocsps/lab/facts/): written from the documentation, used for every lab decision.

The cross-checks against the product's catalog are the point of having two tables: if the product's quorum
table or dependency list drifts from the documentation, these tests fail, which they could not if the lab
read the product's tables.
"""

from __future__ import annotations

import pytest

from ocsps.catalog import Catalog
from ocsps.lab.engine import LabEngine
from ocsps.lab.facts import load_lab_facts
from tests.lab.sim import action, cmdlet, topology

# From the documentation (domain reference, section 6), typed out again here on purpose.
DOCUMENTED_QUORUM = {
    2: (1, 0),
    3: (2, 0),
    4: (2, 0),
    5: (3, 0),
    6: (3, 0),
    7: (4, 0),
    8: (4, 7),
    9: (4, 7),
    10: (5, 9),
    11: (5, 9),
    12: (5, 9),
}


@pytest.mark.parametrize("size", range(1, 14))
def test_the_lab_quorum_table_is_the_documented_one(size: int) -> None:
    rule = load_lab_facts().pool_rule(size)
    assert (None if rule is None else (rule.up, rule.first)) == DOCUMENTED_QUORUM.get(size)


@pytest.mark.parametrize("size", sorted(DOCUMENTED_QUORUM))
def test_the_product_quorum_table_agrees_with_the_lab(size: int) -> None:
    from ocsps.pool.facts import load_pool_facts

    product = load_pool_facts().quorum_rule(size)
    lab = load_lab_facts().pool_rule(size)
    assert lab is not None
    assert (product.must_run, product.of_first or 0) == (lab.up, lab.first)


def _pool(size: int, down: set[int]) -> LabEngine:
    servers = "".join(
        f'[[servers]]\nfqdn = "fe{i:02d}.contoso.com"\nproduct = "sfb2015"\nroles = ["FrontEnd"]\n'
        f'pool = "pool01.contoso.com"\n' + ('stopped = ["RTCSRV"]\n' if i in down else "")
        for i in range(1, size + 1)
    )
    return LabEngine(topology(servers))


@pytest.mark.parametrize(
    ("size", "down", "state"),
    [
        (3, set(), "Ready"),
        (3, {3}, "InsufficientActiveFrontEnds"),  # 2 of 3 must run: none more may go
        (4, {4}, "Ready"),
        (5, {4, 5}, "InsufficientActiveFrontEnds"),
        (7, {5, 6}, "Ready"),
        (8, {8}, "Ready"),
        (8, {5, 6, 7}, "InsufficientActiveFrontEnds"),  # 4 of the first 7 up: none of them may go
        (8, {6, 7, 8}, "Ready"),  # 5 of the first 7 up
        (10, {6, 7, 8, 9}, "InsufficientActiveFrontEnds"),
        (10, {10}, "Ready"),
    ],
)
def test_pool_readiness_follows_the_lab_table(size: int, down: set[int], state: str) -> None:
    engine = _pool(size, down)
    pool = action(engine, "fe01.contoso.com", "pool-readiness", {})
    assert pool[0]["PoolUpgradeState"] == state


def test_failover_refuses_to_break_quorum_unless_forced() -> None:
    from ocsps.lab.estate import LabError

    engine = _pool(3, {3})
    with pytest.raises(LabError) as refused:
        action(engine, "fe01.contoso.com", "pool-failover", {"ComputerName": "fe02.contoso.com"})
    assert refused.value.error_id == "InsufficientPoolCapacity"
    assert "must keep 2 running" in refused.value.message
    action(engine, "fe01.contoso.com", "pool-failover", {"ComputerName": "fe02.contoso.com", "Force": True})
    assert engine.topology.server("fe02.contoso.com").find("RTCSRV").status == "Stopped"


def test_dependencies_name_catalog_services_of_their_products(catalog: Catalog) -> None:
    """The catalog is the lab's dictionary: a misspelt key would silently mean no dependency."""
    for product_id, table in load_lab_facts().dependencies.items():
        product = catalog.product(product_id)
        keys = {s.key for s in catalog.services_for(product)}
        for service, needs in table.items():
            assert {service, *needs} <= keys, (product_id, service)


def test_the_catalog_knows_every_documented_dependency(catalog: Catalog) -> None:
    """The product plans stop and start orders from ``requires``: it must include what the lab enforces."""
    for product_id, table in load_lab_facts().dependencies.items():
        product = catalog.product(product_id)
        requires = {s.key: set(s.requires) for s in catalog.services_for(product)}
        for service, needs in table.items():
            assert set(needs) <= requires[service], (product_id, service)


def test_the_lab_takes_dependencies_from_its_own_facts(catalog: Catalog) -> None:
    """The catalog says RTCMRAUTH requires RTCMEDIARELAY on SfB; no source here documents it, so the lab
    does not assume it (a topology can, with ``dependencies``)."""
    sfb = catalog.product("sfb2015")
    assert "RTCMEDIARELAY" in next(s for s in catalog.services_for(sfb) if s.key == "RTCMRAUTH").requires
    edge = topology('[[servers]]\nfqdn = "edge01.contoso.com"\nproduct = "sfb2015"\nroles = ["Edge"]\n')
    assert edge.server("edge01.contoso.com").find("RTCMRAUTH").requires == ()
    r2 = topology('[[servers]]\nfqdn = "ocs01.contoso.com"\nproduct = "ocs2007r2"\nroles = ["FrontEnd"]\n')
    assert r2.server("ocs01.contoso.com").find("RTCRESPONSEGROUP").requires == ("ocs-application-host",)


def test_the_catalog_deactivation_order_follows_the_documented_sequence(catalog: Catalog) -> None:
    """Roles of one computer that the lab orders must come in that order in the product's plan too."""
    facts = load_lab_facts()
    ordered = [r for r in catalog.roles.values() if facts.deactivation_step(r.key) is not None]
    assert {r.key for r in ordered} == {k for step in facts.deactivation_sequence for k in step}
    for a in ordered:
        for b in ordered:
            step_a, step_b = facts.deactivation_step(a.key), facts.deactivation_step(b.key)
            assert step_a is not None and step_b is not None
            if a.group == b.group and step_a < step_b:
                assert a.order < b.order, (a.key, b.key)


@pytest.mark.parametrize(
    ("role_args", "activated", "accepted"),
    [
        (["/Server:ocs01.contoso.com", "/Role:SE"], ["web-components", "front-end"], False),
        (["/Web:ocs01.contoso.com"], ["web-conferencing", "web-components", "front-end"], False),
        (
            ["/Server:ocs01.contoso.com", "/Role:DataMCU"],
            ["web-conferencing", "web-components", "front-end"],
            True,
        ),
        (["/Server:ocs01.contoso.com", "/Role:SE"], ["front-end", "archiving-cdr"], True),
    ],
)
def test_lcscmd_accepts_roles_in_the_documented_sequence_only(
    role_args: list[str], activated: list[str], accepted: bool
) -> None:
    text = (
        '[[servers]]\nfqdn = "ocs01.contoso.com"\nproduct = "ocs2007r2"\nroles = ["FrontEnd"]\n'
        f"activated_roles = {activated!r}\n".replace("'", '"')
    )
    sim = topology(text).server("ocs01.contoso.com")
    code, _ = sim.lcscmd([*role_args, "/Action:Deactivate"], r"C:\Windows\Temp\t.log")
    assert (code == 0) is accepted
    assert ("Deactivate first" in sim.files[r"C:\Windows\Temp\t.log"]) is not accepted


def test_the_catalog_looks_for_the_events_the_lab_logs(catalog: Catalog) -> None:
    """The product confirms drains and stops by these ids, in this log: they must be the documented ones."""
    facts = load_lab_facts()
    for entry in facts.service_events:
        known = {e.meaning: e.id for e in catalog.events_for_service(entry.service)}
        assert {m: known.get(m) for m in entry.events} == dict(entry.events), entry.service
    for product in catalog.products.values():
        assert facts.event_logs[product.id] == product.event_log, product.id


@pytest.mark.parametrize(("roles", "stopped_event"), [('["Edge"]', 12289), ('["FrontEnd"]', None)])
def test_rtcsrv_logs_the_edge_events_on_an_edge_server_only(roles: str, stopped_event: int | None) -> None:
    text = f'[[servers]]\nfqdn = "s01.contoso.com"\nproduct = "sfb2015"\nroles = {roles}\n'
    sim = topology(text).server("s01.contoso.com")
    sim.stop("RTCSRV", force=True)
    assert [e.id for e in sim.events] == ([stopped_event] if stopped_event else [])
    assert all(e.log == "Lync Server" for e in sim.events)


def _form(tokens: list[str] | tuple[str, ...]) -> list[str]:
    """A command line as a form: /Role and /Action keep their value, other tokens lose theirs."""
    return sorted(
        t.casefold() if t.casefold().startswith(("/role:", "/action:")) else t.partition(":")[0].casefold()
        for t in tokens
    )


def test_the_product_sends_an_lcscmd_form_the_lab_accepts(catalog: Catalog) -> None:
    """For every role ocsps deactivates, its command line is one the lab's LCSCmd.exe knows."""
    forms = load_lab_facts().lcscmd_forms
    assert set(forms) == set(catalog.roles)
    for role in catalog.roles.values():
        assert _form(role.lcscmd) in [_form(f) for f in forms[role.key]], role.key


@pytest.mark.parametrize(
    ("arguments", "code", "detail"),
    [
        (["/Server:ocs01.contoso.com", "/Role:SE", "/Action:Deactivate"], 0, None),
        (
            ["/Action:Deactivate", "/Role:se", "/SERVER:ocs01.contoso.com", "/XML"],
            0,
            None,
        ),  # any order, any case
        (["/Server", "/Role:SE", "/Action:Deactivate"], 0, None),  # no FQDN: this computer
        (
            ["/Server:ocs02.contoso.com", "/Role:SE", "/Action:Deactivate"],
            1,
            "ocs02.contoso.com is not this computer",
        ),
        (
            ["/Server:ocs01.contoso.com", "/Role:Nonsense", "/Action:Deactivate"],
            1,
            "Unrecognized command line",
        ),
    ],
)
def test_lcscmd_deactivates_roles_of_the_computer_it_runs_on(
    arguments: list[str], code: int, detail: str | None
) -> None:
    text = (
        '[[servers]]\nfqdn = "ocs01.contoso.com"\nproduct = "ocs2007r2"\nroles = ["FrontEnd"]\n'
        'activated_roles = ["front-end"]\n'
    )
    sim = topology(text).server("ocs01.contoso.com")
    assert sim.lcscmd(arguments, r"C:\Windows\Temp\t.log")[0] == code
    assert ("front-end" in sim.activated_roles) is (code != 0)
    if detail:
        assert detail in sim.files[r"C:\Windows\Temp\t.log"]


def test_a_failed_over_server_keeps_its_services_disabled_until_failback() -> None:
    """Invoke-CsComputerFailOver stops and disables the services: starting them instead of failing back
    is refused, as a reboot would not start them either."""
    from ocsps.lab.wsman import PipelineFailure

    engine = _pool(3, set())
    action(engine, "fe01.contoso.com", "pool-failover", {"ComputerName": "fe02.contoso.com"})
    with pytest.raises(PipelineFailure) as refused:
        cmdlet(engine, "fe02.contoso.com", "Start-CsWindowsService", Name="RTCSRV")
    assert refused.value.error_id == "CouldNotStartService"
    action(engine, "fe01.contoso.com", "pool-failback", {"ComputerName": "fe02.contoso.com"})
    sim = engine.topology.server("fe02.contoso.com")
    assert {s.status for s in sim.services.values()} == {"Running"}
    assert {s.startup for s in sim.services.values()} == {"Automatic"}
