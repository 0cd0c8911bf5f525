"""The roll engine's rules, with a scripted pool and a virtual clock: no network, no waiting.

Stable-for 20 minutes and Busy every 10 minutes are real durations here; the clock moves when the engine
sleeps, so the assertions are about virtual time and the calls sent, never about how long a test took.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsps.errors import ConnectError, ErrorRecord, OutcomeUnknown, RemoteError
from ocsps.pool import (
    RollEngine,
    RollEvent,
    RollState,
    RollStatus,
    ServerPhase,
    StepResume,
    StepSpec,
    load_state,
    save_state,
)
from ocsps.pool.state import state_document
from tests.pool.fakes import ScriptedPool, VirtualClock, changes, members, options, sfb_plan


def _engine(
    pool: ScriptedPool,
    state: RollState,
    clock: VirtualClock,
    path: Path | None = None,
    **kwargs: object,
) -> RollEngine:
    saves: list[str] = []

    def save(s: RollState) -> None:
        saves.append(s.position())
        if path is not None:
            save_state(path, s)

    engine = RollEngine(pool, state, save=save, clock=clock.clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]
    engine.saves = saves  # type: ignore[attr-defined]
    return engine


def test_sfb_roll_end_to_end_with_default_timings() -> None:
    names = members(4)
    pool, clock = ScriptedPool(names), VirtualClock()
    state = RollState(sfb_plan(4), options(step=StepSpec("script", "patch.ps1", ("Write-Output 1",))))
    events: list[RollEvent] = []
    engine = _engine(pool, state, clock, on_event=events.append)
    assert engine.run().status is RollStatus.DONE
    expected = []
    for name in names:
        expected += [f"failover {name}", f"step {name}", f"failback {name}"]
    assert changes(pool.calls) == expected
    # Ready must hold 20 minutes after each of the four servers (the last one included), read every minute.
    assert sum(clock.sleeps) == pytest.approx(4 * 1200)
    assert len(pool.readings) == 1 + 4 * 21
    assert all(state.phase(n) is ServerPhase.RETURNED for n in names)
    assert state.gates_passed == [0, 1, 2, 3, 4]
    assert len(engine.saves) > 4 * 6  # type: ignore[attr-defined]
    assert [e.event for e in events].count("quorum") == 4


def test_lync2013_drain_waits_for_every_service_to_stop() -> None:
    from ocsps.catalog import load_catalog
    from ocsps.pool import UpgradeDomain, plan_roll

    names = members(4)
    domains = [UpgradeDomain("UD1", tuple(names[:2])), UpgradeDomain("UD2", tuple(names[2:]))]
    plan = plan_roll("pool.contoso.com", load_catalog().product("lync2013"), names, domains)
    pool, clock = ScriptedPool(names, drain_reads=3), VirtualClock()
    state = RollState(plan, options(step=StepSpec("script", "p.ps1", ("x",)), service_poll=10.0))
    assert _engine(pool, state, clock).run().status is RollStatus.DONE
    assert changes(pool.calls)[:6] == [
        f"drain {names[0]}",
        f"step {names[0]}",
        f"start {names[0]}",
        f"drain {names[1]}",
        f"step {names[1]}",
        f"start {names[1]}",
    ]
    assert clock.sleeps.count(10.0) == 4 * 3  # three polls while each server drained
    assert len(pool.readings) == 1 + 2 * 21  # readiness waits between domains, not between servers


def test_busy_three_times_stops_the_roll_and_nothing_more_is_sent() -> None:
    names = members(4)
    pool = ScriptedPool(names, readiness_script=["Ready", "Busy", "Busy", "Busy"])
    clock = VirtualClock()
    state = RollState(sfb_plan(4), options(step=StepSpec("script", "p.ps1", ("x",))))
    assert _engine(pool, state, clock).run().status is RollStatus.STOPPED
    assert "3 of 3" in state.reason and "before unit 2" in state.reason
    assert changes(pool.calls) == [f"failover {names[0]}", f"step {names[0]}", f"failback {names[0]}"]
    assert clock.sleeps == [600.0, 600.0]
    assert state.phase(names[1]) is ServerPhase.PENDING and state.gate_busy[1] == 3
    assert RollStatus.STOPPED.exit_code == 1


def test_insufficient_front_ends_stops_before_anything_goes_down() -> None:
    pool = ScriptedPool(members(3), readiness_script=["InsufficientActiveFrontEnds"])
    state = RollState(sfb_plan(3), options())
    assert _engine(pool, state, VirtualClock()).run().status is RollStatus.STOPPED
    assert "InsufficientActiveFrontEnds" in state.reason and changes(pool.calls) == []


def test_missing_replicas_stop_the_roll_with_the_recovery_cmdlet() -> None:
    pool = ScriptedPool(members(3), missing_replicas=("Routing group 1: missing replicas",))
    state = RollState(sfb_plan(3), options())
    assert _engine(pool, state, VirtualClock()).run().status is RollStatus.STOPPED
    assert (
        "Reset-CsPoolRegistrarState -PoolFqdn pool.contoso.com -ResetType QuorumLossRecovery" in state.reason
    )


def test_a_pool_at_quorum_refuses_to_take_another_server_down() -> None:
    """An unreachable member counts as down: ocsps cannot see it serving, so it does not count on it."""
    names = members(3)
    pool = ScriptedPool(names, unreachable={names[2]})
    state = RollState(sfb_plan(3), options())
    assert _engine(pool, state, VirtualClock()).run().status is RollStatus.STOPPED
    assert state.reason == (
        "quorum: a pool of 3 must keep 2 running; fe03.contoso.com is down already; "
        "taking fe01.contoso.com down would leave 1"
    )
    assert changes(pool.calls) == []
    assert state.phase(names[0]) is ServerPhase.PENDING


def test_pause_without_an_operator_leaves_the_roll_paused_and_resume_continues(tmp_path: Path) -> None:
    names = members(3)
    pool, clock, path = ScriptedPool(names), VirtualClock(), tmp_path / "roll.json"
    state = RollState(sfb_plan(3), options(stable_for=60.0))
    assert _engine(pool, state, clock, path).run().status is RollStatus.PAUSED
    assert state.phase(names[0]) is ServerPhase.AWAITING_OPERATOR and RollStatus.PAUSED.exit_code == 0
    assert "do its maintenance now" in state.reason
    saved = load_state(path)
    asked: list[str] = []

    def operator(server: str, prompt: str) -> bool:
        asked.append(server)
        return True

    assert _engine(pool, saved, clock, path, operator=operator).run().status is RollStatus.DONE
    assert asked == names[1:]  # the resume itself was the operator's "done" for the first server
    assert changes(pool.calls).count(f"failover {names[0]}") == 1


def test_operator_who_says_stop_leaves_it_paused() -> None:
    pool = ScriptedPool(members(3))
    state = RollState(sfb_plan(3), options())
    engine = _engine(pool, state, VirtualClock(), operator=lambda server, prompt: False)
    assert engine.run().status is RollStatus.PAUSED


def test_failover_with_a_lost_reply_is_resumed_by_reading_the_server(tmp_path: Path) -> None:
    names = members(4)
    path = tmp_path / "roll.json"
    lost = OutcomeUnknown("pool-failover: the connection dropped; it may or may not have run", host=names[1])
    pool = ScriptedPool(names, fail={f"failover {names[1]}": lost})
    state = RollState(sfb_plan(4), options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=60.0))
    assert _engine(pool, state, VirtualClock(), path).run().status is RollStatus.DISCONNECTED
    saved = load_state(path)
    assert saved.phase(names[1]) is ServerPhase.TAKING_DOWN and "in flight" in saved.reason
    assert RollStatus.DISCONNECTED.exit_code == 3
    assert _engine(pool, saved, VirtualClock(), path).run().status is RollStatus.DONE
    assert changes(pool.calls).count(f"failover {names[1]}") == 1, "the failover happened: never sent twice"
    assert [h["event"] for h in saved.history].count("resume") == 1


def test_failover_that_never_happened_is_sent_again_after_resume(tmp_path: Path) -> None:
    names = members(3)
    path = tmp_path / "roll.json"
    pool = ScriptedPool(
        names, fail={f"failover {names[0]}": ConnectError("refused", host=names[0])}, fail_after_effect=False
    )
    state = RollState(sfb_plan(3), options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=60.0))
    assert _engine(pool, state, VirtualClock(), path).run().status is RollStatus.DISCONNECTED
    saved = load_state(path)
    assert _engine(pool, saved, VirtualClock(), path).run().status is RollStatus.DONE
    assert changes(pool.calls).count(f"failover {names[0]}") == 2
    assert any("was not taken down" in h["message"] for h in saved.history)


def test_ctrl_c_during_a_readiness_wait_resumes_at_that_wait(tmp_path: Path) -> None:
    names = members(3)
    path = tmp_path / "roll.json"

    def interrupt(seconds: float) -> None:
        if len(clock.sleeps) == 5:
            raise KeyboardInterrupt

    clock = VirtualClock(on_sleep=interrupt)
    pool = ScriptedPool(names)
    state = RollState(sfb_plan(3), options(step=StepSpec("script", "p.ps1", ("x",))))
    assert _engine(pool, state, clock, path).run().status is RollStatus.INTERRUPTED
    saved = load_state(path)
    assert saved.status is RollStatus.INTERRUPTED and saved.gates_passed == [0]
    assert saved.phase(names[0]) is ServerPhase.RETURNED and saved.phase(names[1]) is ServerPhase.PENDING
    assert _engine(pool, saved, VirtualClock(), path).run().status is RollStatus.DONE
    assert changes(pool.calls).count(f"failover {names[0]}") == 1


def test_interrupted_step_needs_a_decision(tmp_path: Path) -> None:
    names = members(3)
    path = tmp_path / "roll.json"
    failed = RemoteError([ErrorRecord("setup.exe exited with 1603")], host=names[0])
    pool = ScriptedPool(names, fail={f"step {names[0]}": failed})
    state = RollState(sfb_plan(3), options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=60.0))
    assert _engine(pool, state, VirtualClock(), path).run().status is RollStatus.FAILED
    assert "1603" in state.reason and state.phase(names[0]) is ServerPhase.STEP_RUNNING
    undecided = load_state(path)
    assert _engine(pool, undecided, VirtualClock(), path).run().status is RollStatus.STOPPED
    assert "--rerun-step or --step-done" in undecided.reason
    rerun = load_state(path)
    assert (
        _engine(pool, rerun, VirtualClock(), path, step_resume=StepResume.RERUN).run().status
        is RollStatus.DONE
    )
    assert changes(pool.calls).count(f"step {names[0]}") == 2
    assert changes(pool.calls).count(f"failover {names[0]}") == 1


def test_step_marked_done_is_not_run_again(tmp_path: Path) -> None:
    names = members(3)
    path = tmp_path / "roll.json"
    pool = ScriptedPool(names, fail={f"step {names[0]}": KeyboardInterrupt()})
    state = RollState(sfb_plan(3), options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=60.0))
    assert _engine(pool, state, VirtualClock(), path).run().status is RollStatus.INTERRUPTED
    saved = load_state(path)
    assert (
        _engine(pool, saved, VirtualClock(), path, step_resume=StepResume.DONE).run().status
        is RollStatus.DONE
    )
    assert changes(pool.calls).count(f"step {names[0]}") == 1


def test_a_drain_that_does_not_finish_times_out_and_resume_keeps_waiting(tmp_path: Path) -> None:
    from ocsps.catalog import load_catalog
    from ocsps.pool import plan_roll

    names = members(3)
    path = tmp_path / "roll.json"
    plan = plan_roll("pool.contoso.com", load_catalog().product("lync2013"), names)
    pool = ScriptedPool(names, drain_reads=1000)
    opts = options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=60.0, drain_timeout=300.0)
    state = RollState(plan, opts)
    assert _engine(pool, state, VirtualClock(), path).run().status is RollStatus.TIMED_OUT
    assert "did not leave the pool" in state.reason and RollStatus.TIMED_OUT.exit_code == 4
    pool.draining[names[0]] = 2  # the drain ends while nobody watches
    pool.drain_reads = 0
    saved = load_state(path)
    assert _engine(pool, saved, VirtualClock(), path).run().status is RollStatus.DONE
    assert changes(pool.calls).count(f"drain {names[0]}") == 1


def test_returning_server_is_re_read_on_resume(tmp_path: Path) -> None:
    names = members(3)
    path = tmp_path / "roll.json"
    lost = OutcomeUnknown("pool-failback: dropped", host=names[0])
    pool = ScriptedPool(names, fail={f"failback {names[0]}": lost})
    state = RollState(sfb_plan(3), options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=60.0))
    assert _engine(pool, state, VirtualClock(), path).run().status is RollStatus.DISCONNECTED
    saved = load_state(path)
    assert saved.phase(names[0]) is ServerPhase.RETURNING
    assert _engine(pool, saved, VirtualClock(), path).run().status is RollStatus.DONE
    assert changes(pool.calls).count(f"failback {names[0]}") == 1


def test_a_member_of_another_pool_is_refused() -> None:
    from ocsps.pool import PoolReadiness

    class OtherPool(ScriptedPool):
        def readiness(self, via: str) -> PoolReadiness:
            return PoolReadiness("Ready", computer=via, pool="other.contoso.com")

    pool = OtherPool(members(3))
    state = RollState(sfb_plan(3), options())
    assert _engine(pool, state, VirtualClock()).run().status is RollStatus.STOPPED
    assert "belongs to pool other.contoso.com" in state.reason


def test_a_finished_roll_does_nothing() -> None:
    pool = ScriptedPool(members(2))
    state = RollState(sfb_plan(2), options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=60.0))
    _engine(pool, state, VirtualClock()).run()
    sent = list(pool.calls)
    assert _engine(pool, state, VirtualClock()).run().status is RollStatus.DONE
    assert pool.calls == sent


def test_state_file_is_written_whole_and_refuses_edits(tmp_path: Path) -> None:
    import json

    from ocsps.errors import UsageError

    path = tmp_path / "roll.json"
    state = RollState(sfb_plan(3), options())
    save_state(path, state)
    assert state_document(load_state(path))["plan"] == state_document(state)["plan"]
    assert not list(tmp_path.glob("*.tmp"))
    doc = json.loads(path.read_text())
    doc["plan"]["members"][0] = "intruder.contoso.com"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="changed after it was written"):
        load_state(path)
    with pytest.raises(UsageError, match="nothing to resume"):
        load_state(tmp_path / "absent.json")


def test_a_readiness_wait_passed_before_an_interruption_is_done_again(tmp_path: Path) -> None:
    """Hours may pass before a resume: Ready then says nothing about the pool now."""
    names = members(3)
    path = tmp_path / "roll.json"
    failed = ConnectError("refused", host=names[1])
    pool = ScriptedPool(names, fail={f"failover {names[1]}": failed}, fail_after_effect=False)
    state = RollState(sfb_plan(3), options(step=StepSpec("script", "p.ps1", ("x",)), stable_for=1200.0))
    assert _engine(pool, state, VirtualClock(), path).run().status is RollStatus.DISCONNECTED
    saved = load_state(path)
    assert saved.gates_passed == [0, 1] and saved.phase(names[1]) is ServerPhase.TAKING_DOWN
    pool.readiness_script = ["Busy"]
    clock = VirtualClock()
    assert _engine(pool, saved, clock, path).run().status is RollStatus.DONE
    assert clock.sleeps[0] == 600.0, "the resumed roll waited on the pool before taking fe02 out"
    assert sum(clock.sleeps[:22]) >= 600.0 + 1200.0
    assert changes(pool.calls).count(f"failover {names[1]}") == 2


def test_a_cancel_during_a_wait_stops_the_roll_as_interrupted_and_resumable() -> None:
    import threading

    names = members(4)
    pool, clock = ScriptedPool(names), VirtualClock()
    cancel = threading.Event()
    state = RollState(sfb_plan(4), options(step=StepSpec("script", "patch.ps1", ("Write-Output 1",))))

    def sleep(seconds: float) -> None:  # the operator cancels while the engine waits for a stable Ready
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            cancel.set()

    engine = RollEngine(pool, state, save=lambda s: None, clock=clock.clock, sleep=sleep, cancel=cancel)
    assert engine.run().status is RollStatus.INTERRUPTED
    assert "cancelled at" in state.reason
    sent = changes(pool.calls)
    resumed = RollEngine(pool, state, save=lambda s: None, clock=clock.clock, sleep=clock.sleep)
    assert resumed.run().status is RollStatus.DONE
    assert changes(pool.calls)[: len(sent)] == sent, "the resumed roll goes on; nothing is sent twice"
    assert len(changes(pool.calls)) == 3 * len(names)


def test_the_rolls_deadline_stops_it_as_timed_out() -> None:
    names = members(4)
    pool, clock = ScriptedPool(names), VirtualClock()
    state = RollState(sfb_plan(4), options(step=StepSpec("script", "patch.ps1", ("Write-Output 1",))))
    started = clock.clock()
    engine = _engine(pool, state, clock, deadline=30 * 60.0)
    assert engine.run().status is RollStatus.TIMED_OUT
    assert "deadline passed" in state.reason
    assert clock.clock() - started <= 30 * 60.0 + 1e-6, "no wait runs past the deadline"


def test_a_remote_driver_closes_its_sessions_as_a_context_manager() -> None:
    from ocsps.pool import RemoteDriver

    closed: list[str] = []

    class _Session:
        def close(self) -> None:
            closed.append("closed")

    class _Server:
        session = _Session()

    with RemoteDriver(lambda host: _Server()) as driver:  # type: ignore[arg-type, return-value]
        driver.server("fe01.contoso.com")
    assert closed == ["closed"]
