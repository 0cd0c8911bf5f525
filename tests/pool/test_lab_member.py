"""One member at a time against lab pools over real PSRP: the server's own record says what was sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ocsps.lab.runtime import Lab
from ocsps.lab.topology import load_topology
from ocsps.pool import PoolRefused, RemoteDriver, bring_back, take_out, wait_ready
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.conftest import DATA
from tests.pool.fakes import options

POOL_DATA = DATA / "pool"
FAST = options(service_poll=0.05, ready_poll=0.05, busy_interval=0.05, stable_for=0.1)


def _driver(lab: Lab) -> RemoteDriver:
    def factory(host: str) -> Server:
        return Server(ServerSession(lab_settings(lab, host), lab.server(host).product, retry_backoff=0.01))

    return RemoteDriver(factory, call_timeout=30.0)


@pytest.fixture
def sfb() -> Iterator[tuple[Lab, RemoteDriver, list[str]]]:
    with Lab(load_topology(POOL_DATA / "sfb2015-four.toml")) as lab:
        driver = _driver(lab)
        try:
            yield lab, driver, [s.fqdn for s in lab.topology.servers]
        finally:
            driver.close()


def test_sfb_members_out_until_quorum_then_back(sfb: tuple[Lab, RemoteDriver, list[str]]) -> None:
    lab, driver, names = sfb
    a, b, c, _ = names
    product = lab.server(a).product
    sim = lab.topology.pools["pool15.contoso.com"]
    pool = "pool15.contoso.com"

    rehearsal = take_out(driver, pool, product, names, a, options=FAST, dry_run=True)
    assert rehearsal.changed and sim.operations == []

    first = take_out(driver, pool, product, names, a, options=FAST)
    again = take_out(driver, pool, product, names, a, options=FAST)
    assert first.changed and not again.changed
    second = take_out(driver, pool, product, names, b, options=FAST)
    assert second.changed and second.quorum is not None and second.quorum.running_after == 2
    with pytest.raises(PoolRefused) as refused:
        take_out(driver, pool, product, names, c, options=FAST)
    assert "stays in pool15.contoso.com" in refused.value.message
    assert sim.operations == [f"failover {a}", f"failover {b}"]

    for name in (a, b):
        assert bring_back(driver, pool, product, names, name, options=FAST).changed
    assert not bring_back(driver, pool, product, names, a, options=FAST).changed
    ready = wait_ready(driver, pool, names, options=FAST)
    assert ready.state == "Ready" and ready.reads >= 2
    assert sim.operations == [f"failover {a}", f"failover {b}", f"failback {a}", f"failback {b}"]
    assert not sim.failed_over


def test_lync2013_member_is_drained_and_started() -> None:
    with Lab(load_topology(POOL_DATA / "lync2013-three-domains.toml")) as lab:
        driver = _driver(lab)
        names = [s.fqdn for s in lab.topology.servers]
        product = lab.server(names[0]).product
        pool = "pool13.contoso.com"
        try:
            out = take_out(driver, pool, product, names, names[0], options=FAST)
            back = bring_back(driver, pool, product, names, names[0], options=FAST)
        finally:
            driver.close()
    assert out.changed and out.after.all_stopped and [c.action for c in out.calls] == ["pool-drain-server"]
    assert back.changed and back.after.condition.value == "up"
    assert lab.topology.pools[pool].operations == [f"drain {names[0]}", f"start {names[0]}"]


def test_after_a_member_comes_back_busy_is_counted_then_a_take_out_is_refused_until_ready() -> None:
    """The lab pool answers Busy three times after a member returns: a take-out then is refused (the first
    Busy), a wait that allows two Busy answers stops on the other two, and the next wait finds Ready."""
    with Lab(load_topology(POOL_DATA / "sfb2015-busy.toml")) as lab:
        driver = _driver(lab)
        names = [s.fqdn for s in lab.topology.servers]
        product = lab.server(names[0]).product
        pool = "pool15.contoso.com"
        sim = lab.topology.pools[pool]
        try:
            take_out(driver, pool, product, names, names[0], options=FAST)
            bring_back(driver, pool, product, names, names[0], options=FAST)
            with pytest.raises(PoolRefused, match="answers 'Busy'"):
                take_out(driver, pool, product, names, names[1], options=FAST)
            with pytest.raises(PoolRefused, match="2 of 2 times"):
                wait_ready(driver, pool, names, options=options(**{**_fast(), "max_busy": 2}))
            ready = wait_ready(driver, pool, names, options=FAST)
        finally:
            driver.close()
    assert ready.busy == 0 and ready.readings[-1] == "Ready"
    assert sim.operations == [f"failover {names[0]}", f"failback {names[0]}"]


def _fast() -> dict[str, object]:
    return {"service_poll": 0.05, "ready_poll": 0.05, "busy_interval": 0.05, "stable_for": 0.1}
