"""Running ``patch_pool`` against the lab, over real HTTP, WSMan, PSRP and NTLM, on a fast shared clock.

The lab and the roll share a clock that runs ``SPEED`` times faster than the wall clock, so a 20-minute
stability wait or a 5-minute install take a fraction of a second. A case's faults are set on the lab's
own patch knobs before it starts (``SimPatch`` fields); its outcome is asked of the lab afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ocsps.catalog import Product
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology
from ocsps.patch import RemotePatchDriver, default_options
from ocsps.patch.pool import PoolPatchResult, patch_pool, plan_pool_patch
from ocsps.pool import RemoteDriver, RollEvent, RollOptions, RollState, UpgradeDomain
from ocsps.pool.state import FORMAT as ROLL_FORMAT
from ocsps.pool.state import state_document
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.conftest import DATA

POOLS = DATA / "patch" / "pools"
SPEED = 1200.0


@dataclass
class FastClock:
    start: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return 1.9e9 + (time.monotonic() - self.start) * SPEED

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / SPEED)


@dataclass
class Journal:
    """The one state file, kept as the JSON text ``save_state`` would write."""

    text: str = ""
    saves: int = 0

    def save(self, state: RollState) -> None:
        self.text = json.dumps(state_document(state))
        self.saves += 1

    def load(self) -> RollState:
        doc = json.loads(self.text)
        assert doc["format"] == ROLL_FORMAT
        return RollState.from_json(doc, source="journal")


@dataclass
class PoolLab:
    lab: Lab
    clock: FastClock
    pool: str
    product: Product
    members: list[str]
    domains: list[UpgradeDomain]
    events: list[RollEvent] = field(default_factory=list)

    def factory(self, host: str) -> Server:
        return Server(
            ServerSession(lab_settings(self.lab, host), self.lab.server(host).product, retry_backoff=0.01)
        )

    def knobs(self, host: str) -> Any:
        return self.lab.engine.patch.patches[host.casefold()]

    def services(self, host: str) -> dict[str, tuple[str, str]]:
        """(status, start-up type) of every service, as the lab holds it."""
        return {s.name: (s.status, s.startup) for s in self.lab.server(host).services.values()}

    def plan(self, **changes: Any) -> RollState:
        options = default_options(changes.pop("expect", "6.0.9319.619"), **changes.pop("patch_options", {}))
        roll = RollOptions.defaults(**changes.pop("roll_options", {}))
        state, _ = plan_pool_patch(
            self.pool,
            self.product,
            self.members,
            changes.pop("installer", "C:\\Updates\\SkypeServerUpdateInstaller.exe"),
            options,
            domains=self.domains,
            roll_options=roll,
            simulation=True,
            **changes,
        )
        return state

    def run(
        self,
        state: RollState,
        journal: Journal,
        *,
        interrupt: Callable[[RollEvent], bool] | None = None,
        rerun_install: bool = False,
        call_timeout: float = 60.0,
        **kwargs: Any,
    ) -> PoolPatchResult:
        def on_event(event: RollEvent) -> None:
            self.events.append(event)
            if interrupt is not None and interrupt(event):
                raise KeyboardInterrupt

        pool_driver = RemoteDriver(self.factory, call_timeout=call_timeout)
        patch_driver = RemotePatchDriver(self.factory, call_timeout=call_timeout, probe_timeout=0.1)
        journal.save(state)
        try:
            return patch_pool(
                pool_driver,
                patch_driver,
                state,
                self.product,
                save=journal.save,
                rerun_install=rerun_install,
                clock=self.clock.now,
                sleep=self.clock.sleep,
                on_event=on_event,
                **kwargs,
            )
        finally:
            pool_driver.close()
            patch_driver.close()


@contextmanager
def pool_lab(name: str, faults: Mapping[str, Mapping[str, Any]] | None = None) -> Iterator[PoolLab]:
    """The topology ``name`` of tests/data/patch/pools, its faults set, served on loopback."""
    clock = FastClock()
    topology = parse_topology((POOLS / name).read_text(encoding="utf-8"), source=name, clock=clock.now)
    for host, knobs in (faults or {}).items():
        sim = topology.patches[host.casefold()]
        for key, value in knobs.items():
            assert hasattr(sim, key), key
            setattr(sim, key, set(value) if key == "pending" else value)
    (pool,) = topology.pools.values()
    domains = (
        [UpgradeDomain(n, tuple(s)) for n, s in pool.upgrade_domains]
        if "upgrade_domains" in (POOLS / name).read_text(encoding="utf-8")
        else []
    )
    with Lab(topology) as lab:
        yield PoolLab(lab, clock, pool.fqdn, pool.product, [m.fqdn for m in pool.members], domains)
