"""The pool's readiness wait over one streaming pipeline, counted at the lab.

A wait of several readings costs one Command (the watch) and about one Receive per reading, where a read
per reading costs a Command, a Receive and a Signal each. The lab allows one unterminated command per shell
here, so a watch whose pipeline is not stopped and released once the wait is decided fails the next call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ocsps.lab.runtime import Lab
from ocsps.lab.topology import load_topology
from ocsps.pool import PoolRefused, RemoteDriver, wait_ready
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.conftest import DATA
from tests.pool.fakes import options

POOL = "pool15.contoso.com"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(load_topology(DATA / "pool" / "sfb2015-busy.toml"), max_commands_per_shell=1) as running:
        yield running


def _driver(lab: Lab) -> RemoteDriver:
    def factory(host: str) -> Server:
        return Server(ServerSession(lab_settings(lab, host), lab.server(host).product, retry_backoff=0.01))

    return RemoteDriver(factory, call_timeout=30.0)


def test_a_wait_of_many_readings_is_one_pipeline_and_leaves_none_behind(lab: Lab) -> None:
    names = [s.fqdn for s in lab.topology.servers]
    via = names[0]
    sim = lab.topology.pools[POOL]
    with _driver(lab) as driver:
        assert isinstance(driver, RemoteDriver)
        driver.readiness(via)  # the pool and the module import, out of the count
        before = lab.requests(via)
        sim.busy_left = 2  # two Busy answers, then Ready that must hold
        fast = options(ready_poll=0.05, busy_interval=0.1, stable_for=0.3, max_busy=3)
        ready = wait_ready(driver, POOL, names, options=fast)
        after = lab.requests(via)
        spent = {k: after.get(k, 0) - before.get(k, 0) for k in ("Command", "Receive", "Signal")}
        assert ready.state == "Ready" and ready.busy == 2, ready
        assert ready.readings[:2] == ("Busy", "Busy") and ready.reads >= 5, ready.readings
        # The member read that picks who answers, then the watch: stopped once decided (Signal stop and
        # terminate). Read per reading, it would be a Command per reading.
        assert spent["Command"] == 2 and spent["Signal"] == 3, spent
        assert spent["Receive"] <= ready.reads + 2, (spent, ready.reads)
        again = wait_ready(driver, POOL, names, options=options(ready_poll=0.05, stable_for=0.1))
        assert again.busy == 0, "the shell took the next watch: the first one was released"
        assert driver.readiness(via).state == "Ready"


def test_busy_answers_stop_the_wait_as_the_polled_gate_does(lab: Lab) -> None:
    names = [s.fqdn for s in lab.topology.servers]
    lab.topology.pools[POOL].busy_left = 5
    with _driver(lab) as driver:
        slow_busy = options(ready_poll=0.05, busy_interval=0.2, stable_for=0.1, max_busy=2)
        with pytest.raises(PoolRefused, match="2 of 2 times"):
            wait_ready(driver, POOL, names, options=slow_busy)
        assert driver.readiness(names[0]).state == "Busy", "the shell takes the next command"
