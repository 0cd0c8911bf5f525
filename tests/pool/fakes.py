"""A scripted pool and a virtual clock, so the roll engine's rules are tested without a network or a wait.

``ScriptedPool`` answers like a pool would: members are up or down, readiness answers come from a script
(then Ready), and every state-changing call is recorded, so a test can assert what was, and was not, sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ocsps.errors import OcspsError
from ocsps.pool import (
    FabricState,
    MemberState,
    PoolReadiness,
    RollOptions,
    RollPlan,
    StepOutcome,
    StepSpec,
    UpgradeDomain,
    load_pool_facts,
    plan_roll,
)
from ocsps.results import ServiceState, ServiceStatus

FACTS = load_pool_facts()


@dataclass
class VirtualClock:
    """``clock`` and ``sleep`` for the engine: sleeping moves time on at once."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[float], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.now += seconds


def members(count: int) -> list[str]:
    return [f"fe{i:02d}.contoso.com" for i in range(1, count + 1)]


@dataclass
class ScriptedPool:
    """A ``PoolDriver`` with scripted answers."""

    hosts: list[str]
    readiness_script: list[str] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    unreachable: set[str] = field(default_factory=set)
    domains: tuple[UpgradeDomain, ...] = ()
    missing_replicas: tuple[str, ...] = ()
    drain_reads: int = 0  # member reads a drain takes before every service has stopped
    calls: list[str] = field(default_factory=list)
    readings: list[str] = field(default_factory=list)
    fail: dict[str, OcspsError | BaseException] = field(default_factory=dict)  # "failover fe01..." -> error
    fail_after_effect: bool = True
    draining: dict[str, int] = field(default_factory=dict)

    def _services(self, host: str) -> tuple[ServiceStatus, ...]:
        if host in self.draining:
            status = ServiceState.PAUSED
        elif host in self.down:
            status = ServiceState.STOPPED
        else:
            status = ServiceState.RUNNING
        return (
            ServiceStatus("RTCSRV", status, status.value, computer=host),
            ServiceStatus("REPLICA", status, status.value, computer=host),
        )

    def member(self, host: str) -> MemberState:
        if host in self.unreachable:
            return MemberState(host, None, (), f"{host}: connection refused")
        if host in self.draining:
            self.draining[host] -= 1
            if self.draining[host] < 0:
                del self.draining[host]
                self.down.add(host)
        return MemberState.from_services(host, self._services(host), FACTS.defaults.front_end_service)

    def readiness(self, via: str) -> PoolReadiness:
        state = self.readiness_script.pop(0) if self.readiness_script else "Ready"
        self.readings.append(state)
        return PoolReadiness(state, computer=via, pool="pool.contoso.com", domains=self.domains)

    def fabric(self, via: str, pool: str) -> FabricState:
        return FabricState(pool, via, (), self.missing_replicas, self.missing_replicas)

    def _call(self, name: str, effect: Callable[[], None]) -> None:
        self.calls.append(name)
        error = self.fail.pop(name, None)
        if error is not None and not self.fail_after_effect:
            raise error
        effect()
        if error is not None:
            raise error

    def drain(self, host: str) -> None:
        def effect() -> None:
            if self.drain_reads:
                self.draining[host] = self.drain_reads
            else:
                self.down.add(host)

        self._call(f"drain {host}", effect)

    def start(self, host: str) -> None:
        self._call(f"start {host}", lambda: self.down.discard(host))

    def stop_service(self, host: str, name: str) -> None:
        self._call(f"stop {name} {host}", lambda: None)

    def failover(self, host: str, wait_time: float, draining_timeout: float | None, force: bool) -> None:
        self._call(f"failover {host}", lambda: self.down.add(host))

    def failback(self, host: str, wait_time: float) -> None:
        self._call(f"failback {host}", lambda: self.down.discard(host))

    def run_step(self, host: str, step: StepSpec, timeout: float) -> StepOutcome:
        self._call(f"step {host}", lambda: None)
        return StepOutcome(host, step.name, True, "patched")

    def close(self) -> None:
        self.calls.append("close")


def sfb_plan(count: int = 4, product: str = "sfb2015") -> RollPlan:
    from ocsps.catalog import load_catalog

    return plan_roll("pool.contoso.com", load_catalog().product(product), members(count))


def options(**changes: object) -> RollOptions:
    return RollOptions.defaults(FACTS, **changes)


def changes(calls: Iterable[str]) -> list[str]:
    return [c for c in calls if c != "close"]
