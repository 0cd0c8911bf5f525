"""Readiness and fabric answers, in the shape the templates send, parsed into typed results."""

from __future__ import annotations

import pytest

from ocsps.jsonout import to_builtins
from ocsps.pool import Condition, MemberState, parse_fabric, parse_readiness
from ocsps.pool.model import FabricStateDocument, parse_step_outcome, parse_transition
from ocsps.results import ParseError, ServiceState, ServiceStatus
from tests.pool.fakes import FACTS


def test_readiness_with_upgrade_domains() -> None:
    objects = [
        {
            "Kind": "pool",
            "ComputerName": "fe01.contoso.com",
            "PoolFqdn": "pool01.contoso.com",
            "PoolUpgradeState": "Busy",
            "TotalFrontEnds": "3",
            "TotalActiveFrontEnds": "2",
            "Future": 1,
        },
        {
            "Kind": "upgrade-domain",
            "UpgradeDomain": "UpgradeDomain1",
            "FrontEnds": "fe01.contoso.com,fe02",
            "IsReadyForUpgrade": "True",
        },
        {
            "Kind": "upgrade-domain",
            "UpgradeDomain": "UpgradeDomain2",
            "FrontEnds": "",
            "IsReadyForUpgrade": "",
        },
    ]
    r = parse_readiness(objects)
    assert (r.state, r.pool, r.total_front_ends, r.active_front_ends) == ("Busy", "pool01.contoso.com", 3, 2)
    assert [(d.name, d.servers, d.ready) for d in r.domains] == [
        ("UpgradeDomain1", ("fe01.contoso.com", "fe02"), True),
        ("UpgradeDomain2", (), None),
    ]
    assert r.domain_of("FE02.contoso.com") is r.domains[0]
    assert r.domain_of("fe03.contoso.com") is None
    assert dict(r.extra) == {"Future": 1}


def test_readiness_fields_that_are_not_confirmed_may_be_blank() -> None:
    r = parse_readiness([{"Kind": "pool", "PoolUpgradeState": "Ready", "TotalFrontEnds": "", "PoolFqdn": ""}])
    assert (r.state, r.total_front_ends, r.pool, r.domains) == ("Ready", None, None, ())


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([], "no 'pool' object"),
        ([{"Kind": "pool"}], "PoolUpgradeState"),
        ([{"Kind": "pool", "PoolUpgradeState": "  "}], "is empty"),
        ([{"Kind": "pool", "PoolUpgradeState": "Ready"}, {"Kind": "upgrade-domain"}], "UpgradeDomain"),
    ],
)
def test_readiness_without_its_required_fields_is_a_parse_error(objects: list[object], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_readiness(objects)


def test_fabric_calls_out_missing_replicas_in_lines_and_warnings() -> None:
    objects = [
        {"Kind": "state", "ComputerName": "fe01.contoso.com", "Text": "Front End fe01.contoso.com: Up"},
        {"Kind": "state", "Text": "Routing group 12ab: No Primary"},
        {"Kind": "warning", "Text": "Routing group 34cd: missing replicas."},
    ]
    f = parse_fabric(objects, "pool01.contoso.com", FACTS.missing_replica_patterns)
    assert f.missing == ("Routing group 34cd: missing replicas.", "Routing group 12ab: No Primary")
    assert not f.healthy and f.computer == "fe01.contoso.com" and len(f.lines) == 2
    healthy = parse_fabric(objects[:1], "pool01.contoso.com", FACTS.missing_replica_patterns)
    assert healthy.healthy and to_builtins(FabricStateDocument.of(healthy))["missing_replicas"] == []


@pytest.mark.parametrize(
    ("front_end", "others", "condition", "all_stopped"),
    [
        (ServiceState.RUNNING, ServiceState.RUNNING, Condition.UP, False),
        (ServiceState.STOPPED, ServiceState.STOPPED, Condition.DOWN, True),
        (ServiceState.STOPPED, ServiceState.PAUSED, Condition.DOWN, False),
        (ServiceState.PAUSED, ServiceState.STOPPED, Condition.CHANGING, False),
        (None, ServiceState.RUNNING, Condition.CHANGING, False),
    ],
)
def test_member_condition(
    front_end: ServiceState | None, others: ServiceState, condition: Condition, all_stopped: bool
) -> None:
    services = [ServiceStatus("REPLICA", others, others.value)]
    if front_end is not None:
        services.insert(0, ServiceStatus("RTCSRV", front_end, front_end.value))
    member = MemberState.from_services("fe01", services, "RTCSRV")
    assert (member.condition, member.all_stopped) == (condition, all_stopped)
    assert MemberState("fe01", None, (), "refused").condition is Condition.UNREACHABLE


def test_transition_and_step_outcome() -> None:
    t = parse_transition([{"ComputerName": "fe01", "Operation": "FailOver", "Invoked": True}])
    assert (t.computer, t.operation, t.invoked) == ("fe01", "FailOver", True)
    s = parse_step_outcome(
        [{"ComputerName": "fe01", "StepName": "p.ps1", "Ran": "False", "Output": ["a", "b"]}]
    )
    assert (s.ran, s.output) == (False, "a\nb")
    with pytest.raises(ParseError):
        parse_transition([])
