"""The engine's additions for patch rolls, with a scripted pool and a virtual clock: the maintenance hook
(checked before a server goes, run while it is out, resumed at its own step), the members gate of pools
without a readiness cmdlet (Lync Server 2010), and per-service drain deadlines."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ocsps.catalog import load_catalog
from ocsps.pool import (
    MaintenanceStop,
    MemberState,
    RollEngine,
    RollState,
    RollStatus,
    ServerPhase,
    StepSpec,
    plan_roll,
)
from ocsps.results import ServiceState, ServiceStatus
from tests.pool.fakes import FACTS, ScriptedPool, VirtualClock, changes, members, options, sfb_plan


@dataclass
class Hook:
    """A maintenance that records what it was asked, and stops where told."""

    refuse: set[str] = field(default_factory=set)
    fail: dict[str, int] = field(default_factory=dict)  # server -> how many runs fail
    calls: list[str] = field(default_factory=list)

    def check(self, server: str) -> None:
        self.calls.append(f"check {server}")
        if server in self.refuse:
            raise MaintenanceStop(f"{server}: a restart is already pending")

    def run(self, server: str) -> str:
        self.calls.append(f"run {server}")
        if self.fail.get(server, 0) > 0:
            self.fail[server] -= 1
            raise MaintenanceStop(f"{server}: version mismatch", RollStatus.STOPPED)
        return f"{server} patched"


def _engine(pool: ScriptedPool, state: RollState, clock: VirtualClock, hook: Hook | None) -> RollEngine:
    return RollEngine(
        pool, state, save=lambda s: None, clock=clock.clock, sleep=clock.sleep, maintenance=hook
    )


def _patch_state(plan_count: int = 4) -> RollState:
    return RollState(
        sfb_plan(plan_count), options(step=StepSpec("patch", "C:\\U\\SkypeServerUpdateInstaller.exe"))
    )


def test_the_hook_runs_on_each_server_while_it_is_out() -> None:
    names = members(4)
    pool, clock, hook = ScriptedPool(names), VirtualClock(), Hook()
    state = _patch_state()
    assert _engine(pool, state, clock, hook).run().status is RollStatus.DONE
    assert hook.calls == [c for n in names for c in (f"check {n}", f"run {n}")]
    assert changes(pool.calls) == [c for n in names for c in (f"failover {n}", f"failback {n}")]


def test_a_refused_check_stops_before_the_server_is_taken_out() -> None:
    names = members(4)
    pool, clock, hook = ScriptedPool(names), VirtualClock(), Hook(refuse={names[1]})
    state = _patch_state()
    _engine(pool, state, clock, hook).run()
    assert state.status is RollStatus.STOPPED and "a restart is already pending" in state.reason
    assert changes(pool.calls) == [f"failover {names[0]}", f"failback {names[0]}"]
    assert state.phase(names[1]) is ServerPhase.PENDING


def test_a_failed_run_leaves_the_server_out_and_a_resume_runs_the_hook_again_not_the_failover() -> None:
    names = members(4)
    pool, clock, hook = ScriptedPool(names), VirtualClock(), Hook(fail={names[0]: 1})
    state = _patch_state()
    _engine(pool, state, clock, hook).run()
    assert state.status is RollStatus.STOPPED and "version mismatch" in state.reason
    assert state.phase(names[0]) is ServerPhase.DOWN and names[0] in pool.down
    assert changes(pool.calls) == [f"failover {names[0]}"]
    _engine(pool, state, clock, hook).run()
    assert state.status is RollStatus.DONE
    assert changes(pool.calls).count(f"failover {names[0]}") == 1
    assert hook.calls.count(f"run {names[0]}") == 2 and hook.calls.count(f"check {names[0]}") == 1


def test_an_interrupted_hook_is_resumed_by_the_hook_itself() -> None:
    names = members(4)
    pool, clock, hook = ScriptedPool(names), VirtualClock(), Hook()
    state = _patch_state()
    state.servers[names[0]] = ServerPhase.STEP_RUNNING
    pool.down.add(names[0])
    state.runs = 1
    _engine(pool, state, clock, hook).run()
    assert state.status is RollStatus.DONE
    assert any("the patch resumes at the step its record reached" in h["message"] for h in state.history)
    assert f"failover {names[0]}" not in pool.calls


def test_a_patch_step_without_its_hook_is_refused() -> None:
    pool, clock = ScriptedPool(members(4)), VirtualClock()
    state = _patch_state()
    _engine(pool, state, clock, None).run()
    assert state.status is RollStatus.FAILED and "needs its maintenance (nothing was sent)" in state.reason
    assert pool.calls == [] and pool.readings == []


# ------------------------------------------------------------------------------------ members gate
def _lync2010_state(count: int = 3) -> RollState:
    plan = plan_roll("pool10.contoso.com", load_catalog().product("lync2010"), members(count))
    return RollState(plan, options(step=StepSpec("script", "s.ps1", ("Write-Output 1",))))


def test_lync2010_pools_are_drained_one_server_at_a_time_without_readiness_or_fabric() -> None:
    names = members(3)
    pool, clock = ScriptedPool(names), VirtualClock()
    state = _lync2010_state()
    assert state.plan.method.value == "drain" and [u.servers for u in state.plan.units] == [
        (n,) for n in names
    ]
    assert _engine(pool, state, clock, None).run().status is RollStatus.DONE
    assert pool.readings == []  # no readiness cmdlet was asked
    assert changes(pool.calls) == [c for n in names for c in (f"drain {n}", f"step {n}", f"start {n}")]
    # 20 minutes of every Front End running, after each of the three servers
    assert sum(clock.sleeps) == pytest.approx(3 * 1200)


def test_a_member_that_stays_down_stops_the_members_gate_after_max_busy() -> None:
    names = members(3)
    pool, clock = ScriptedPool(names, down={names[2]}), VirtualClock()
    state = _lync2010_state()
    _engine(pool, state, clock, None).run()
    assert state.status is RollStatus.STOPPED
    assert f"Front End not running on {names[2]}" in state.reason
    assert f"({FACTS.defaults.max_busy} of {FACTS.defaults.max_busy} times)" in state.reason
    assert changes(pool.calls) == []


# ------------------------------------------------------------------------------------ service deadlines
@dataclass
class StuckPool(ScriptedPool):
    """Draining leaves ``stuck`` Paused until it is stopped; everything else stops at once."""

    stuck: str = "RTCRGS"
    forced: set[str] = field(default_factory=set)
    drained: set[str] = field(default_factory=set)

    def member(self, host: str) -> MemberState:
        if host not in self.drained:
            return super().member(host)
        stuck = ServiceState.STOPPED if host in self.forced else ServiceState.PAUSED
        services = (
            ServiceStatus("RTCSRV", ServiceState.STOPPED, "Stopped", computer=host),
            ServiceStatus(self.stuck, stuck, stuck.value, computer=host),
        )
        return MemberState.from_services(host, services, FACTS.defaults.front_end_service)

    def drain(self, host: str) -> None:
        self._call(f"drain {host}", lambda: self.drained.add(host))

    def start(self, host: str) -> None:
        def effect() -> None:
            self.drained.discard(host)
            self.forced.discard(host)

        self._call(f"start {host}", effect)

    def stop_service(self, host: str, name: str) -> None:
        self._call(f"stop {name} {host}", lambda: self.forced.add(host))


@pytest.mark.parametrize(("then", "status"), [("force-stop", RollStatus.DONE), ("stop", RollStatus.STOPPED)])
def test_a_service_with_its_own_drain_deadline(then: str, status: RollStatus) -> None:
    names = members(3)
    pool, clock = StuckPool(names), VirtualClock()
    plan = plan_roll("pool10.contoso.com", load_catalog().product("lync2010"), names)
    opts = options(
        step=StepSpec("script", "s.ps1", ("Write-Output 1",)),
        service_deadlines={"RTCRGS": 600.0},
        service_then={"RTCRGS": then},
    )
    state = RollState(plan, opts)
    _engine(pool, state, clock, None).run()
    assert state.status is status, state.reason
    if then == "force-stop":
        assert [c for c in pool.calls if c.startswith("stop ")] == [f"stop RTCRGS {n}" for n in names]
    else:
        assert (
            "RTCRGS on fe01.contoso.com did not finish draining within its own deadline (600s)"
            in state.reason
        )
        assert changes(pool.calls) == [f"drain {names[0]}"]
        assert state.phase(names[0]) is ServerPhase.TAKING_DOWN
