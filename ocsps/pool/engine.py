"""The roll engine: walk a plan one server at a time, keep quorum, wait for Ready, save every step.

The engine owns no connection and no clock: the driver does the remote work, ``clock``/``sleep`` are
injected (so a 20-minute stability wait is tested in microseconds), and ``save`` is called after every
transition. It stops rather than guesses: quorum in doubt, a Busy pool, an undocumented readiness state,
missing replicas, a call whose outcome is unknown all end the run with the state saved and a reason an
operator can act on. ``run`` never raises for the roll's own outcome; the status says what happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from ocsps.errors import ConnectError, OcspsError, OutcomeUnknown, TimeoutExceeded
from ocsps.pool.driver import PoolDriver
from ocsps.pool.facts import Method, PoolFacts, Readiness, load_pool_facts
from ocsps.pool.model import Condition, MemberState, PoolReadiness
from ocsps.pool.plan import Gate, GateVerdict, RollPlan, gate_decision
from ocsps.pool.quorum import may_take_down
from ocsps.pool.state import RollState, RollStatus, ServerPhase

__all__ = ["Maintenance", "MaintenanceStop", "Operator", "RollEngine", "RollEvent", "StepResume"]

Operator = Callable[[str, str], bool]
"""Asked at a pause: (server, prompt) -> True to go on, False to leave the roll paused."""


class MaintenanceStop(OcspsError):
    """The maintenance of one server cannot go on; ``status`` is what the roll becomes."""

    def __init__(self, message: str, status: RollStatus = RollStatus.STOPPED) -> None:
        super().__init__(message)
        self.status = status


class Maintenance(Protocol):
    """The work a ``patch`` step does on each server; it keeps its own per-server record (resumable)."""

    def check(self, server: str) -> None:
        """Before ``server`` is taken out: raise ``MaintenanceStop`` to stop with nothing changed on it."""
        ...

    def run(self, server: str) -> str:
        """While ``server`` is out: do (or resume) the work; a one-line summary, or ``MaintenanceStop``
        with the server left out of the pool."""
        ...


class StepResume(StrEnum):
    """What to do on resume with a maintenance script whose outcome was not recorded."""

    RERUN = "rerun"
    DONE = "done"


@dataclass(frozen=True)
class RollEvent:
    time: str
    event: str
    message: str
    server: str | None = None


class _Halt(Exception):
    def __init__(self, status: RollStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RollEngine:
    """Run (or resume) one roll. Not thread-safe; one engine per roll."""

    def __init__(
        self,
        driver: PoolDriver,
        state: RollState,
        *,
        save: Callable[[RollState], None],
        operator: Operator | None = None,
        facts: PoolFacts | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        stamp: Callable[[], str] = _stamp,
        on_event: Callable[[RollEvent], None] | None = None,
        step_resume: StepResume | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
        maintenance: Maintenance | None = None,
    ) -> None:
        """``cancel`` and ``deadline`` (seconds for the whole run) are looked at before every remote call
        and during every wait: the roll then stops as interrupted or timed out, with its state saved, and
        resumes from there."""
        self.cancel = cancel
        self.deadline = deadline
        self._ends: float | None = None
        self.driver = driver
        self.state = state
        self.save = save
        self.operator = operator
        self.facts = facts or load_pool_facts()
        self.clock = clock
        self.sleep = sleep
        self.stamp = stamp
        self.on_event = on_event
        self.step_resume = step_resume
        self.maintenance = maintenance

    @property
    def plan(self) -> RollPlan:
        return self.state.plan

    # ------------------------------------------------------------------ bookkeeping
    def _event(self, event: str, message: str, server: str | None = None) -> None:
        stamp = self.stamp()
        self.state.note(event, message, server, stamp)
        if self.on_event is not None:
            self.on_event(RollEvent(stamp, event, message, server))

    def _persist(self) -> None:
        self.save(self.state)

    def _set(self, server: str, phase: ServerPhase, message: str) -> None:
        self.state.servers[server] = phase
        self._event(phase.value, message, server)
        self._persist()

    # ------------------------------------------------------------------ the roll
    def run(self) -> RollState:
        st = self.state
        if st.finished:
            return st
        resumed = st.runs > 0
        st.runs += 1
        st.status, st.reason = RollStatus.RUNNING, ""
        plan = st.plan
        self._event(
            "resume" if resumed else "start",
            f"{'resuming' if resumed else 'starting'} the roll of {plan.pool} ({plan.product}, "
            f"{plan.method.value}, {len(plan.units)} unit(s), {len(plan.servers)} server(s))",
        )
        self._persist()
        self._ends = None if self.deadline is None else self.clock() + self.deadline
        try:
            if st.options.step.kind == "patch" and self.maintenance is None:
                raise _Halt(
                    RollStatus.FAILED,
                    "this roll patches its servers and needs its maintenance (nothing was sent): continue it "
                    "with ocsps patch pool --resume",
                )
            if resumed:
                self._reconcile()
            count = len(plan.units)
            for index in range(count + 1):
                if index not in st.gates_passed:
                    self._check_limits()
                    self._gate(index)
                if index == count:
                    break
                for server in plan.units[index].servers:
                    self._check_limits()
                    self._server(server)
            st.status = RollStatus.DONE
            self._event("done", f"every server of the roll returned and {plan.pool} is Ready")
        except _Halt as halt:
            self._stop(halt.status, halt.reason)
        except OutcomeUnknown as exc:
            self._stop(
                RollStatus.DISCONNECTED,
                f"{exc.message}; the saved state marks the call as in flight: resume to re-read the "
                "server and go on",
            )
        except TimeoutExceeded as exc:
            self._stop(RollStatus.TIMED_OUT, exc.message)
        except ConnectError as exc:
            self._stop(RollStatus.DISCONNECTED, f"{exc.message}; resume once the server answers again")
        except OcspsError as exc:
            self._stop(RollStatus.FAILED, exc.message)
        except KeyboardInterrupt:
            self._stop(RollStatus.INTERRUPTED, f"interrupted at {st.position()}; resume to go on from there")
        finally:
            self._persist()
        return st

    def _check_limits(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise _Halt(RollStatus.INTERRUPTED, f"cancelled at {self.state.position()}; resume to go on")
        if self._ends is not None and self.clock() >= self._ends:
            where = self.state.position()
            raise _Halt(RollStatus.TIMED_OUT, f"the roll's deadline passed at {where}; resume to go on")

    def _pause(self, seconds: float) -> None:
        """Wait between reads, but never past the roll's deadline nor through a cancel."""
        self._check_limits()
        if self._ends is not None:
            seconds = max(0.0, min(seconds, self._ends - self.clock()))
        self.sleep(seconds)
        self._check_limits()

    def _stop(self, status: RollStatus, reason: str) -> None:
        self.state.status, self.state.reason = status, reason
        self._event(status.value, reason)

    # ------------------------------------------------------------------ resume
    def _reconcile(self) -> None:
        """Turn every in-flight phase into a known one by reading the server, never by repeating a call."""
        for server in self.plan.servers:
            phase = self.state.phase(server)
            if phase is ServerPhase.AWAITING_OPERATOR:
                self._set(
                    server, ServerPhase.STEP_DONE, "the roll was resumed: the operator's maintenance is done"
                )
            elif phase is ServerPhase.STEP_RUNNING:
                if self.state.options.step.kind == "patch":
                    self._set(server, ServerPhase.DOWN, "the patch resumes at the step its record reached")
                elif self.step_resume is StepResume.RERUN:
                    self._set(server, ServerPhase.DOWN, "the interrupted maintenance step will run again")
                elif self.step_resume is StepResume.DONE:
                    self._set(
                        server, ServerPhase.STEP_DONE, "the operator marked the interrupted step as done"
                    )
                else:
                    raise _Halt(
                        RollStatus.STOPPED,
                        f"the maintenance step on {server} was interrupted and may or may not have finished; "
                        "check the server, then resume with --rerun-step or --step-done",
                    )
            elif phase is ServerPhase.TAKING_DOWN:
                member = self.driver.member(server)
                if self._is_down(member):
                    self._set(server, ServerPhase.DOWN, f"re-read after resume: {server} is out of the pool")
                elif self._untouched(member):
                    self._set(
                        server, ServerPhase.PENDING, f"re-read after resume: {server} was not taken down"
                    )
                else:
                    self._event("re-read", f"{server} is still leaving the pool; waiting for it", server)
            elif phase is ServerPhase.RETURNING:
                member = self.driver.member(server)
                if member.condition is Condition.UP:
                    self._set(server, ServerPhase.RETURNED, f"re-read after resume: {server} is back")
                elif member.condition is Condition.DOWN:
                    self._set(
                        server, ServerPhase.STEP_DONE, f"re-read after resume: {server} did not come back yet"
                    )
                else:
                    self._event("re-read", f"{server} is coming back; waiting for it", server)
        self._forget_stale_gates()

    def _forget_stale_gates(self) -> None:
        """A readiness wait passed before the interruption says nothing about the pool now: if the unit
        after it has not started, the wait is done again (Ready, and stable, at the time it matters)."""
        plan, st = self.plan, self.state
        count = len(plan.units)
        stale = [
            i
            for i in st.gates_passed
            if i < count and all(st.phase(s) is ServerPhase.PENDING for s in plan.units[i].servers)
        ]
        if stale:
            st.gates_passed = [i for i in st.gates_passed if i not in stale]
            names = ", ".join(plan.units[i].name for i in stale)
            self._event("re-read", f"the pool's readiness is checked again before {names}")
            self._persist()

    def _is_down(self, member: MemberState) -> bool:
        if self.plan.method is Method.DRAIN:
            return member.all_stopped
        return member.condition is Condition.DOWN

    @staticmethod
    def _untouched(member: MemberState) -> bool:
        return not member.error and bool(member.services) and all(s.is_running for s in member.services)

    # ------------------------------------------------------------------ readiness waits
    def _via(self) -> str:
        """The first member that is up: the readiness cmdlets only answer on a member of the pool."""
        for member in self.plan.members:
            if self.driver.member(member).condition is Condition.UP:
                return member
        raise _Halt(RollStatus.STOPPED, f"no member of {self.plan.pool} is up to read the pool's readiness")

    def _gate(self, index: int) -> None:
        plan, opts = self.plan, self.state.options
        count = len(plan.units)
        stable = 0.0 if index == 0 else opts.stable_for
        where = (
            "before the first unit"
            if index == 0
            else "after the last unit"
            if index == count
            else f"before unit {index + 1} of {count} ({plan.units[index].name})"
        )
        if plan.readiness is Readiness.MEMBERS:
            self._members_gate(index, stable, where)
            return
        via = self._via()
        if index == 0:
            fabric = self.driver.fabric(via, plan.pool)
            if fabric.missing:
                raise _Halt(
                    RollStatus.STOPPED,
                    f"the Windows Fabric of {plan.pool} reports missing replicas ({fabric.missing[0]}); "
                    f"recover first, e.g. {self.facts.recovery_for(plan.pool)}",
                )
            self._event("fabric", f"Windows Fabric state read on {via}: no missing replicas")
        next_servers = plan.units[index].servers if index < count else ()
        gate = Gate(stable)
        while True:
            readiness = self.driver.readiness(via)
            if readiness.pool and readiness.pool.casefold() != plan.pool.casefold():
                raise _Halt(RollStatus.STOPPED, f"{via} belongs to pool {readiness.pool}, not {plan.pool}")
            decision = gate_decision(gate, readiness, self.clock(), opts, self.facts, next_servers)
            gate = decision.gate
            self.state.gate_busy[index] = gate.busy
            self._event("readiness", f"{where}: {readiness.state} on {via}: {decision.reason}")
            if decision.verdict is GateVerdict.PASS:
                self.state.gates_passed.append(index)
                self._persist()
                return
            if decision.verdict is GateVerdict.STOP:
                raise _Halt(RollStatus.STOPPED, f"{where}: {decision.reason}")
            self._persist()
            self._pause(decision.wait)

    def _members_gate(self, index: int, stable: float, where: str) -> None:
        """A pool without a readiness cmdlet (Lync Server 2010): 'Ready' is every member's Front End
        running, read on each member; a member not running counts as a Busy answer, so the same bounded
        rules apply (stability time, max_busy)."""
        plan, opts = self.plan, self.state.options
        gate = Gate(stable)
        while True:
            states = [self.driver.member(m) for m in plan.members]
            down = [m.host for m in states if m.condition is not Condition.UP]
            answer = self.facts.busy_state if down else self.facts.ready_state
            readiness = PoolReadiness(answer, pool=plan.pool)
            decision = gate_decision(gate, readiness, self.clock(), opts, self.facts)
            gate = decision.gate
            self.state.gate_busy[index] = gate.busy
            seen = f"not running on {', '.join(down)}" if down else "running on every member"
            reason = decision.reason.replace(f"the pool answered {answer!r}", "a member is not up")
            self._event("readiness", f"{where}: Front End {seen}: {reason}")
            if decision.verdict is GateVerdict.PASS:
                self.state.gates_passed.append(index)
                self._persist()
                return
            if decision.verdict is GateVerdict.STOP:
                raise _Halt(RollStatus.STOPPED, f"{where}: Front End {seen}: {reason}")
            self._persist()
            self._pause(decision.wait)

    # ------------------------------------------------------------------ one server
    def _server(self, server: str) -> None:
        opts = self.state.options
        failover = self.plan.method is Method.FAILOVER
        while True:
            phase = self.state.phase(server)
            if phase is ServerPhase.RETURNED:
                return
            if phase is ServerPhase.PENDING:
                if self.maintenance is not None:
                    try:
                        self.maintenance.check(server)
                    except MaintenanceStop as stop:
                        raise _Halt(stop.status, stop.message) from None
                self._check_quorum(server)
                if failover:
                    self._set(
                        server, ServerPhase.TAKING_DOWN, f"failing {server} over (Invoke-CsComputerFailOver)"
                    )
                    self.driver.failover(server, opts.wait_time, opts.draining_timeout, opts.force_failover)
                    first = None
                else:
                    self._set(
                        server, ServerPhase.TAKING_DOWN, f"draining every service of {server} gracefully"
                    )
                    first = self.driver.drain(server)
                self._wait(server, down=True, first=first)
                self._set(server, ServerPhase.DOWN, f"{server} is out of the pool")
            elif phase is ServerPhase.TAKING_DOWN:
                self._wait(server, down=True)
                self._set(server, ServerPhase.DOWN, f"{server} is out of the pool")
            elif phase is ServerPhase.DOWN:
                self._step(server)
            elif phase is ServerPhase.STEP_DONE:
                if failover:
                    self._set(
                        server, ServerPhase.RETURNING, f"failing {server} back (Invoke-CsComputerFailBack)"
                    )
                    self.driver.failback(server, opts.wait_time)
                    first = None
                else:
                    self._set(server, ServerPhase.RETURNING, f"starting every service of {server}")
                    first = self.driver.start(server)
                self._wait(server, down=False, first=first)
                self._set(server, ServerPhase.RETURNED, f"{server} is back in the pool")
            elif phase is ServerPhase.RETURNING:
                self._wait(server, down=False)
                self._set(server, ServerPhase.RETURNED, f"{server} is back in the pool")
            else:
                raise _Halt(RollStatus.STOPPED, f"{server} is in phase {phase.value}: resume to go on")

    def _check_quorum(self, server: str) -> None:
        plan = self.plan
        down = [m for m in plan.members if self.driver.member(m).condition is not Condition.UP]
        verdict = may_take_down(plan.members, down, server, plan.rule)
        self._event("quorum", verdict.reason, server)
        if not verdict.allowed:
            raise _Halt(RollStatus.STOPPED, verdict.reason)

    def _wait(self, server: str, *, down: bool, first: MemberState | None = None) -> None:
        """Poll the server's services until it is out of (or back in) the pool, up to the deadline;
        ``first`` is what the call that started the change already reported."""
        opts = self.state.options
        started = self.clock()
        deadline = started + opts.drain_timeout
        forced: set[str] = set()
        while True:
            member, first = first or self.driver.member(server), None
            if self._is_down(member) if down else member.condition is Condition.UP:
                return
            if down and self.plan.method is Method.DRAIN:
                self._service_deadlines(server, member, started, forced)
            left = deadline - self.clock()
            if left <= 0:
                what = "leave" if down else "come back to"
                raise _Halt(
                    RollStatus.TIMED_OUT,
                    f"{server} did not {what} the pool within the deadline "
                    f"({member.condition.value}); resume to keep waiting",
                )
            self._pause(min(opts.service_poll, left))

    def _service_deadlines(self, server: str, member: MemberState, started: float, forced: set[str]) -> None:
        """A service with its own drain deadline (pools.toml [service_drain]: the Response Group service
        never finishes draining on some builds) is stopped, or stops the roll, once that deadline passes;
        the others keep the roll's drain_timeout."""
        opts = self.state.options
        waited = self.clock() - started
        for svc in member.services:
            if svc.is_stopped or svc.name.casefold() in forced:
                continue
            limit, then = opts.deadline_for(svc.name)
            if limit >= opts.drain_timeout or waited < limit:
                continue
            if then != "force-stop":
                raise _Halt(
                    RollStatus.STOPPED,
                    f"{svc.name} on {server} did not finish draining within its own deadline ({limit:g}s); "
                    f"{server} is left draining: stop {svc.name} by hand, then resume",
                )
            self._event(
                "force-stop",
                f"{svc.name} did not finish draining within {limit:g}s: stopping it (Stop-CsWindowsService "
                "-Force)",
                server,
            )
            self.driver.stop_service(server, svc.name)
            forced.add(svc.name.casefold())
            self._persist()

    def _step(self, server: str) -> None:
        step = self.state.options.step
        how = "failed over" if self.plan.method is Method.FAILOVER else "drained"
        if step.kind == "patch":
            if self.maintenance is None:
                raise _Halt(RollStatus.FAILED, "a patch roll needs its maintenance (nothing ran)")
            self._set(server, ServerPhase.STEP_RUNNING, f"patching {server} while it is out ({how})")
            try:
                summary = self.maintenance.run(server)
            except MaintenanceStop as stop:
                self._set(server, ServerPhase.DOWN, f"{server} stays out of {self.plan.pool}: {stop.message}")
                raise _Halt(stop.status, stop.message) from None
            self._set(server, ServerPhase.STEP_DONE, summary)
            return
        if step.kind == "pause":
            prompt = f"{server} is out of pool {self.plan.pool} ({how}): do its maintenance now."
            self._set(server, ServerPhase.AWAITING_OPERATOR, prompt)
            if self.operator is not None and self.operator(server, prompt):
                self._set(server, ServerPhase.STEP_DONE, "the operator continued the roll")
                return
            raise _Halt(
                RollStatus.PAUSED,
                f"waiting for the operator: {prompt} Resume the roll (--resume) when the work is done",
            )
        self._set(server, ServerPhase.STEP_RUNNING, f"running {step.name or 'the step script'} on {server}")
        outcome = self.driver.run_step(server, step, self.state.options.drain_timeout)
        first = next((line for line in outcome.output.splitlines() if line.strip()), "")
        self._set(server, ServerPhase.STEP_DONE, f"maintenance step done{': ' + first if first else ''}")
