"""Pool maintenance against the lab over real HTTP, WSMan, PSRP and NTLM: readiness, fabric, failover,
a dropped reply in the middle of a failover, and topologies that must be refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsps.errors import RemoteError, UsageError
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import load_topology, parse_topology
from ocsps.pool import (
    RemoteDriver,
    RollEngine,
    RollEvent,
    RollState,
    RollStatus,
    ServerPhase,
    StepSpec,
    load_state,
    plan_roll,
    save_state,
    survey_pool,
)
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.conftest import DATA
from tests.pool.fakes import options

POOL_DATA = DATA / "pool"
BAD = sorted((POOL_DATA / "bad_topologies").glob("*.toml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_pool_topologies_are_refused(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(UsageError) as caught:
        parse_topology(path.read_text(), source=path.name)
    assert expected in caught.value.message and path.name in caught.value.message


def test_default_topology_pool() -> None:
    pool = load_topology().pools["pool01.contoso.com"]
    assert [m.fqdn for m in pool.members] == ["fe01.contoso.com", "fe02.contoso.com", "fe03.contoso.com"]
    assert [d for d, _ in pool.upgrade_domains] == ["UpgradeDomain1", "UpgradeDomain2", "UpgradeDomain3"]


def _driver(lab: Lab, timeout: float = 30.0) -> RemoteDriver:
    def factory(host: str) -> Server:
        return Server(ServerSession(lab_settings(lab, host), lab.server(host).product, retry_backoff=0.01))

    return RemoteDriver(factory, call_timeout=timeout)


@pytest.fixture
def sfb_lab() -> Iterator[Lab]:
    with Lab(load_topology(POOL_DATA / "sfb2015-four.toml")) as running:
        yield running


def _two_server_pool(product: str, **pool_keys: object) -> str:
    keys = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in pool_keys.items())
    servers = "".join(
        f'[[servers]]\nfqdn = "{n}.contoso.com"\nproduct = "{product}"\npool = "p.contoso.com"\n'
        'roles = ["FrontEnd"]\ndrain_seconds = 0.1\n'
        for n in ("fea", "feb")
    )
    return f'[[pools]]\nfqdn = "p.contoso.com"\n{keys}{servers}'


def test_sfb2019_reads_readiness_with_get_csupgradedomaininfo() -> None:
    topology = parse_topology(_two_server_pool("sfb2019"), source="sfb2019 pool")
    with Lab(topology) as lab:
        driver = _driver(lab)
        try:
            survey = survey_pool(driver, "p.contoso.com", "sfb2019", ["fea.contoso.com", "feb.contoso.com"])
        finally:
            driver.close()
    assert survey.readiness is not None and survey.readiness.state == "Ready"
    assert [d.servers for d in survey.readiness.domains] == [("fea.contoso.com",), ("feb.contoso.com",)]
    assert survey.problems == () and survey.spare == 1


def test_status_calls_out_missing_replicas() -> None:
    with Lab(load_topology(POOL_DATA / "sfb2015-missing-replicas.toml")) as lab:
        driver = _driver(lab)
        try:
            names = [s.fqdn for s in lab.topology.servers]
            survey = survey_pool(driver, "pool15.contoso.com", "sfb2015", names)
        finally:
            driver.close()
    assert survey.fabric is not None and len(survey.fabric.missing) == 1
    assert any("missing replicas" in p and "QuorumLossRecovery" in p for p in survey.problems)


def test_the_lab_refuses_a_failover_that_would_break_quorum() -> None:
    with Lab(load_topology(POOL_DATA / "sfb2015-at-quorum.toml")) as lab:
        driver = _driver(lab)
        try:
            with pytest.raises(RemoteError, match="does not have the capacity"):
                driver.failover("fe01.contoso.com", 60, None, False)
            assert lab.topology.pools["pool01.contoso.com"].operations == []
            with pytest.raises(RemoteError, match="Front-End service is not running"):
                driver.readiness("fe03.contoso.com")
        finally:
            driver.close()


def test_lync2013_failover_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    from ocsps.errors import UsageError

    topology = parse_topology(_two_server_pool("lync2013"), source="lync2013 pool")
    with Lab(topology) as lab:
        driver = _driver(lab)
        try:
            with pytest.raises(UsageError, match="computer failover arrived with Skype for Business"):
                driver.failover("fea.contoso.com", 60, None, False)
        finally:
            driver.close()
        assert lab.requests("fea.contoso.com").get("Command", 0) == 0


def test_failed_step_script_stops_the_roll(sfb_lab: Lab, tmp_path: Path) -> None:
    from ocsps.pool.plan import step_from_text

    product = sfb_lab.server("fe15a.contoso.com").product
    names = [s.fqdn for s in sfb_lab.topology.servers]
    step = step_from_text("failing-step.ps1", (POOL_DATA / "failing-step.ps1").read_text(), product)
    state = RollState(plan_roll("pool15.contoso.com", product, names), options(step=step, stable_for=0.01))
    driver = _driver(sfb_lab)
    try:
        RollEngine(driver, state, save=lambda s: None, sleep=lambda s: None).run()
    finally:
        driver.close()
    assert state.status is RollStatus.FAILED and "setup.exe exited with 1603" in state.reason
    assert state.phase("fe15a.contoso.com") is ServerPhase.STEP_RUNNING
    assert sfb_lab.topology.pools["pool15.contoso.com"].operations == ["failover fe15a.contoso.com"]


def test_roll_interrupted_mid_failover_resumes_from_saved_state(sfb_lab: Lab, tmp_path: Path) -> None:
    """The reply of fe15b's failover is lost after the server acted on it: the first run stops with the
    failover in flight; the resumed run re-reads fe15b, sees it failed over, and goes on without sending
    the failover again."""
    path = tmp_path / "pool-roll.json"
    product = sfb_lab.server("fe15a.contoso.com").product
    names = [s.fqdn for s in sfb_lab.topology.servers]
    step = StepSpec("script", "patch.ps1", ("Write-Output 'patched'",))
    state = RollState(plan_roll("pool15.contoso.com", product, names), options(step=step, stable_for=0.01))
    save_state(path, state)

    def arm(event: RollEvent) -> None:
        if event.event == "taking-down" and event.server == "fe15b.contoso.com":
            sfb_lab.faults("fe15b.contoso.com").drop_next("Receive", after_processing=True)

    driver = _driver(sfb_lab, timeout=10.0)
    try:
        RollEngine(
            driver, state, save=lambda s: save_state(path, s), sleep=lambda s: None, on_event=arm
        ).run()
    finally:
        driver.close()
    first = load_state(path)
    assert first.status is RollStatus.DISCONNECTED, first.reason
    assert first.phase("fe15a.contoso.com") is ServerPhase.RETURNED
    assert first.phase("fe15b.contoso.com") is ServerPhase.TAKING_DOWN
    sim = sfb_lab.topology.pools["pool15.contoso.com"]
    assert "fe15b.contoso.com" in sim.failed_over, "the failover did happen on the server"

    driver = _driver(sfb_lab)
    try:
        resumed = RollEngine(driver, first, save=lambda s: save_state(path, s), sleep=lambda s: None).run()
    finally:
        driver.close()
    assert resumed.status is RollStatus.DONE, resumed.reason
    assert sim.operations.count("failover fe15b.contoso.com") == 1
    assert sim.operations == [f"{op} {n}" for n in names for op in ("failover", "failback")]
    assert [fqdn for fqdn, _, up in sim.steps if not up] == names, "every step ran on a failed-over server"
    assert any(
        h["message"].startswith("re-read after resume: fe15b.contoso.com is out") for h in resumed.history
    )
    assert not sim.failed_over


_ODD = [
    "5",
    "-1",
    '""',
    '"x"',
    "[1]",
    '["a.contoso.com"]',
    "[]",
    "{}",
    '{ UD1 = ["a.contoso.com"] }',
    "{ UD1 = 5 }",
    "{ UD1 = [5] }",
    "true",
    "1.5",
    "1e300",
    '"p.contoso.com"',
    "[[1]]",
    '{ "" = [] }',
]
_POOL_KEYS = [
    "fqdn",
    "site",
    "product",
    "upgrade_domains",
    "busy_polls",
    "missing_replicas",
    "failover_seconds",
    "x",
]
_MEMBER = (
    '[[servers]]\nfqdn = "a.contoso.com"\nproduct = "sfb2015"\npool = "p.contoso.com"\nroles = ["FrontEnd"]\n'
)


@pytest.mark.parametrize("value", _ODD)
@pytest.mark.parametrize("key", _POOL_KEYS)
def test_odd_pool_values_are_accepted_or_refused_never_a_crash(key: str, value: str) -> None:
    head = (
        f"[[pools]]\nfqdn = {value}\n"
        if key == "fqdn"
        else f'[[pools]]\nfqdn = "p.contoso.com"\n{key} = {value}\n'
    )
    try:
        topology = parse_topology(head + _MEMBER, source="odd.toml")
    except UsageError as exc:
        assert "odd.toml" in exc.message
    else:
        assert [m.fqdn for m in topology.pools["p.contoso.com"].members] == ["a.contoso.com"]


def test_a_pool_read_answered_by_another_computer_is_refused() -> None:
    """The readiness answer names the computer that gave it; a member answering as another is not believed."""
    from ocsps.errors import OperationFailed

    text = _two_server_pool("sfb2015").replace(
        'fqdn = "fea.contoso.com"', 'fqdn = "fea.contoso.com"\ncomputer_name = "fez.contoso.com"'
    )
    with Lab(parse_topology(text, source="impostor")) as lab:
        driver = _driver(lab)
        try:
            with pytest.raises(OperationFailed, match=r"the computer that answered is fez\.contoso\.com"):
                driver.readiness("fea.contoso.com")
            assert driver.readiness("feb.contoso.com").state == "Ready"
        finally:
            driver.close()
