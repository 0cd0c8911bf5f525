"""Run one server's patch: each step verified before the next, start-up types always restored.

The runner owns no connection and no clock: the driver does the remote work, ``clock`` / ``sleep`` are
injected (a 30-minute reboot deadline is tested in microseconds) and ``save`` is called after every step
with the whole record, so that whatever stops the run, the file says what was done, what was seen, and
which start-up types were changed. ``run`` never raises for the run's own outcome: the status says what
happened, and the final state is read from the server (or said to be unknown) before it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec

from ocsps import __version__
from ocsps.errors import ConnectError, OcspsError, OutcomeUnknown, TimeoutExceeded, UsageError
from ocsps.patch.driver import PatchDriver
from ocsps.patch.facts import PatchFacts, load_patch_facts
from ocsps.patch.model import InstallOutcome, PatchState, PatchStateDocument, startup_type
from ocsps.patch.plan import PatchPlan, PatchPlanDocument

__all__ = [
    "FORMAT",
    "POOL_STEPS",
    "SERVER_STEPS",
    "PatchEvent",
    "PatchRecord",
    "PatchRecordDocument",
    "PatchRunner",
    "PatchStatus",
    "record_document",
]

SERVER_STEPS = ("preflight", "out-of-service", "hold", "install", "reboot", "verify", "back-in-service")
POOL_STEPS = ("hold", "install", "reboot", "verify", "restore")
"""A pool member's steps while the pool method holds it out (its preflight ran before, with ``check``)."""

FORMAT = "ocsps-patch-server/1"


class PatchStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    CURRENT = "current"  # already at the version, no restart pending: nothing was changed
    STOPPED = "stopped"  # a check failed: version mismatch, pending reboot, a service that never drained
    FAILED = "failed"  # the installer failed, or a call failed
    REBOOT_PENDING = "reboot-pending"  # --reboot never and a restart is needed
    TIMED_OUT = "timed-out"
    DISCONNECTED = "disconnected"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        return {
            PatchStatus.DONE: 0,
            PatchStatus.CURRENT: 0,
            PatchStatus.RUNNING: 1,
            PatchStatus.STOPPED: 1,
            PatchStatus.FAILED: 1,
            PatchStatus.REBOOT_PENDING: 1,
            PatchStatus.TIMED_OUT: 4,
            PatchStatus.DISCONNECTED: 3,
            PatchStatus.INTERRUPTED: 130,
        }[self]


@dataclass(frozen=True)
class PatchEvent:
    time: str
    step: str
    message: str


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class PatchRecord:
    """Everything a run did and saw, as the state file and ``--json`` carry it."""

    plan: PatchPlan
    status: PatchStatus = PatchStatus.RUNNING
    reason: str = ""
    step: str = "preflight"
    services: list[str] = field(default_factory=list)
    running_before: list[str] = field(default_factory=list)
    startup_before: dict[str, str] = field(default_factory=dict)  # service -> Set-Service value
    held: list[str] = field(default_factory=list)  # services this run set Disabled
    restored: bool = False
    versions_before: dict[str, str] = field(default_factory=dict)
    versions_after: dict[str, str] = field(default_factory=dict)
    install: InstallOutcome | None = None
    install_sent: bool = False  # the installer was started; ``install`` None: its outcome never came
    reboot_needed: bool = False
    boot_before: str = ""  # the boot time read just before the restart was requested
    rebooted: bool = False
    done: list[str] = field(default_factory=list)  # steps completed and verified (a resume skips them)
    runs: int = 0
    final: PatchState | None = None
    final_error: str = ""
    history: list[dict[str, str]] = field(default_factory=list)
    simulation: bool = False
    change_id: str = ""

    @property
    def left_disabled(self) -> list[str]:
        """Services this run set Disabled that the last reading still shows Disabled (or unknown)."""
        if not self.held or self.restored:
            return []
        if self.final is None:
            return list(self.held)
        return [n for n in self.held if (s := self.final.service(n)) is None or s.disabled]

    @property
    def out_of_service(self) -> list[str]:
        if self.final is None:
            return []
        return [n for n in self.running_before if (s := self.final.service(n)) is None or not s.running]

    def statement(self) -> str:
        """The server's state at the end, in words, from the last reading only."""
        if self.final is None:
            return (
                f"the final state of {self.plan.host} could not be read "
                f"({self.final_error or 'no reading'}); "
                + (
                    f"start-up types NOT restored: {', '.join(self.held)} may still be Disabled; the "
                    "original types are in the state file"
                    if self.held and not self.restored
                    else "no start-up type was left changed"
                )
            )
        parts = []
        down = self.out_of_service
        parts.append(
            f"{self.plan.host} is OUT OF SERVICE ({', '.join(down)} not running)"
            if down
            else f"{self.plan.host} is in service (every service that ran before runs)"
        )
        left = self.left_disabled
        parts.append(
            f"left Disabled by this run: {', '.join(left)}"
            if left
            else "no service left Disabled by this run"
        )
        if self.final.components:
            versions = sorted({c.version for c in self.final.components})
            parts.append(f"component versions read: {', '.join(versions)}")
        if self.final.pending_reboot:
            parts.append(f"a restart is pending ({', '.join(self.final.pending_reboot)})")
        return "; ".join(parts)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, source: str = "record") -> PatchRecord:
        """A saved record, to resume from: the final reading is not kept (it is read again)."""
        if doc.get("format") != FORMAT:
            raise UsageError(f"{source}: not an ocsps patch record (format {doc.get('format')!r})")
        try:
            raw_install = doc.get("install")
            install = None
            if raw_install:
                code = raw_install.get("exit_code")
                install = InstallOutcome(
                    computer=str(raw_install["computer"]),
                    ran=bool(raw_install["ran"]),
                    exit_code=None if code is None else int(code),
                    log_path=str(raw_install.get("log_path", "")),
                    log_tail=str(raw_install.get("log_tail", "")),
                )
            return cls(
                plan=PatchPlan.from_json(doc["plan"]),
                status=PatchStatus(doc["status"]),
                reason=str(doc.get("reason", "")),
                step=str(doc["step"]),
                services=[str(s) for s in doc.get("services", [])],
                running_before=[str(s) for s in doc.get("running_before", [])],
                startup_before={str(k): str(v) for k, v in doc.get("startup_before", {}).items()},
                held=[str(s) for s in doc.get("held", [])],
                restored=bool(doc.get("restored", False)),
                versions_before={str(k): str(v) for k, v in doc.get("versions_before", {}).items()},
                versions_after={str(k): str(v) for k, v in doc.get("versions_after", {}).items()},
                install=install,
                install_sent=bool(doc.get("install_sent", False)),
                reboot_needed=bool(doc.get("reboot_needed", False)),
                boot_before=str(doc.get("boot_before", "")),
                rebooted=bool(doc.get("rebooted", False)),
                done=[str(s) for s in doc.get("done", [])],
                runs=int(doc.get("runs", 0)),
                history=[{str(k): str(v) for k, v in h.items()} for h in doc.get("history", [])],
                simulation=bool(doc.get("simulation", False)),
                change_id=str(doc.get("change_id", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"{source}: damaged patch record ({exc.__class__.__name__}: {exc})") from None


class PatchRecordDocument(msgspec.Struct):
    """The record file (format ``ocsps-patch-server/1``) and ``patch server --json``, key for key as it
    has always been written; what ``--resume``, a pool's roll state (``work``) and ``ocsps report`` read.
    The verdicts (``left_disabled``, ``statement``) are read when the document is made."""

    format: str
    generated_by: str
    host: str
    product: str
    status: PatchStatus
    reason: str
    step: str
    plan: PatchPlanDocument
    services: list[str]
    running_before: list[str]
    startup_before: dict[str, str]
    held: list[str]
    restored: bool
    left_disabled: list[str]
    versions_before: dict[str, str]
    versions_after: dict[str, str]
    install: InstallOutcome | None
    install_sent: bool
    reboot_needed: bool
    boot_before: str
    rebooted: bool
    done: list[str]
    runs: int
    final: PatchStateDocument | None
    final_error: str
    statement: str
    simulation: bool
    change_id: str
    history: list[dict[str, str]]

    @classmethod
    def of(cls, record: PatchRecord) -> PatchRecordDocument:
        r = record
        return cls(
            format=FORMAT,
            generated_by=f"ocsps {__version__}",
            host=r.plan.host,
            product=r.plan.product,
            status=r.status,
            reason=r.reason,
            step=r.step,
            plan=PatchPlanDocument.of(r.plan),
            services=r.services,
            running_before=r.running_before,
            startup_before=r.startup_before,
            held=r.held,
            restored=r.restored,
            left_disabled=r.left_disabled,
            versions_before=r.versions_before,
            versions_after=r.versions_after,
            install=r.install,
            install_sent=r.install_sent,
            reboot_needed=r.reboot_needed,
            boot_before=r.boot_before,
            rebooted=r.rebooted,
            done=r.done,
            runs=r.runs,
            final=PatchStateDocument.of(r.final) if r.final else None,
            final_error=r.final_error,
            statement=r.statement(),
            simulation=r.simulation,
            change_id=r.change_id,
            history=r.history,
        )


def record_document(record: PatchRecord) -> dict[str, Any]:
    """The record as plain JSON values: what its file holds."""
    from ocsps.jsonout import to_builtins

    doc: dict[str, Any] = to_builtins(PatchRecordDocument.of(record))
    return doc


class _Stop(Exception):
    def __init__(self, status: PatchStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PatchRunner:
    """Run one plan once. Not thread-safe; one runner per run."""

    def __init__(
        self,
        driver: PatchDriver,
        plan: PatchPlan,
        *,
        save: Callable[[PatchRecord], None] | None = None,
        facts: PatchFacts | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        stamp: Callable[[], str] = _stamp,
        on_event: Callable[[PatchEvent], None] | None = None,
        simulation: bool = False,
        record: PatchRecord | None = None,
        rerun_install: bool = False,
        skip_current: bool = False,
    ) -> None:
        """``record``: a saved record to resume from (the run starts at the step it reached and never
        repeats a completed install); ``rerun_install``: an install interrupted before its outcome was
        recorded, and not found at the expected version, is run again (only when the operator knows the
        installer is no longer running); ``skip_current``: a server (not a pool member: its pool decides)
        whose every component already reports the version, with no restart pending, ends at the preflight
        as ``current``: taking it out of service to run an installer with nothing to do is a needless
        outage."""
        self.driver = driver
        self.plan = plan
        self.record = record if record is not None else PatchRecord(plan, simulation=simulation)
        self.resumed = record is not None
        self.rerun_install = rerun_install
        self.skip_current = skip_current and not plan.in_pool
        self.save = save
        self.facts = facts or load_patch_facts()
        self.clock = clock
        self.sleep = sleep
        self.stamp = stamp
        self.on_event = on_event

    @property
    def host(self) -> str:
        return self.plan.host

    @property
    def opts(self) -> Any:
        return self.plan.options

    def _event(self, message: str) -> None:
        stamp = self.stamp()
        self.record.history.append({"time": stamp, "step": self.record.step, "message": message})
        if self.on_event is not None:
            self.on_event(PatchEvent(stamp, self.record.step, message))
        self._persist()

    def _persist(self) -> None:
        if self.save is not None and not self._deciding_current():
            self.save(self.record)

    def _deciding_current(self) -> bool:
        """A run that may end ``current`` writes nothing until its preflight has decided: the record of
        the server's last real run stays its evidence, not overwritten by a run that changed nothing."""
        rec = self.record
        return (
            self.skip_current
            and not self.resumed
            and rec.step == "preflight"
            and rec.status in (PatchStatus.RUNNING, PatchStatus.CURRENT)
        )

    def _enter(self, step: str) -> None:
        self.record.step = step
        self._event(f"step {step}")

    # ------------------------------------------------------------------ the run
    def run(self) -> PatchRecord:
        """The whole run of a server outside a pool (or the rest of it, resumed from ``record``)."""
        return self._run(SERVER_STEPS)

    def check(self) -> PatchRecord:
        """A pool member's preflight, before the pool method takes it out: reads only. The status is
        RUNNING when every check passed, else what stopped it."""
        if "preflight" in self.record.done:
            return self.record
        return self._run(("preflight",), finish=False)

    def run_while_out(self) -> PatchRecord:
        """A pool member's steps once the pool method has taken it out: hold, install, restart, verify,
        restore the start-up types; resumed at the step the record reached."""
        return self._run(POOL_STEPS)

    def _recheck_out_of_service(self) -> None:
        """Resuming: a service that ran before and runs again (an update's Fabric step starts services
        that are not Disabled) is drained again before anything else."""
        rec = self.record
        state = self._read()
        again = [n for n in rec.running_before if (s := state.service(n)) is not None and not s.stopped]
        if again:
            self._event(f"resuming: running again since the interruption: {', '.join(again)}; draining again")
            rec.done.remove("out-of-service")

    def _steps(self) -> dict[str, Callable[[], None]]:
        return {
            "preflight": self._preflight,
            "out-of-service": self._out_of_service,
            "hold": self._hold,
            "install": self._install,
            "reboot": self._reboot,
            "verify": self._verify,
            "back-in-service": self._back_in_service,
            "restore": self._restore_step,
        }

    def _run(self, steps: Sequence[str], *, finish: bool = True) -> PatchRecord:
        rec = self.record
        rec.runs += 1
        rec.status, rec.reason, rec.final, rec.final_error = PatchStatus.RUNNING, "", None, ""
        if self.resumed and finish:
            self._event(
                "resuming: done before: " + (", ".join(rec.done) or "nothing") + f"; at step {rec.step}"
            )
        table = self._steps()
        try:
            if self.resumed and "out-of-service" in rec.done and "out-of-service" in steps:
                self._recheck_out_of_service()
            for step in steps:
                if step in rec.done:
                    continue
                if step == "reboot" and not rec.reboot_needed:
                    continue
                table[step]()
                rec.done.append(step)
                self._persist()
            if finish:
                rec.status = PatchStatus.DONE
                rec.step = "done"
                where = "restored start-up types" if self.plan.in_pool else "back in service"
                self._event(f"{self.host} patched to {self.opts.expect_version}, verified, {where}")
        except _Stop as stop:
            rec.status, rec.reason = stop.status, stop.reason
        except TimeoutExceeded as exc:
            rec.status, rec.reason = PatchStatus.TIMED_OUT, exc.message
        except (ConnectError, OutcomeUnknown) as exc:
            rec.status, rec.reason = PatchStatus.DISCONNECTED, exc.message
        except OcspsError as exc:
            rec.status, rec.reason = PatchStatus.FAILED, exc.message
        except KeyboardInterrupt:
            rec.status, rec.reason = PatchStatus.INTERRUPTED, f"interrupted during {rec.step}"
        finally:
            if rec.status is not PatchStatus.DONE and (finish or rec.status is not PatchStatus.RUNNING):
                self._event(f"{rec.status.value}: {rec.reason}")
            if finish:
                self._finish()
            else:
                self._persist()
        return rec

    # ------------------------------------------------------------------ steps
    def _preflight(self) -> None:
        self._enter("preflight")
        rec, opts = self.record, self.opts
        rec.services = self.driver.services(self.host)
        if not rec.services:
            raise _Stop(PatchStatus.STOPPED, f"{self.host} lists no Lync / Skype for Business service")
        state = self.driver.state(self.host, rec.services, self.plan.installer_path)
        missing = [s.name for s in state.services if not s.exists]
        if missing:
            raise _Stop(
                PatchStatus.STOPPED, f"Win32_Service does not know {', '.join(missing)} on {self.host}"
            )
        rec.running_before = [s.name for s in state.services if s.running]
        rec.startup_before = {s.name: startup_type(s.start_mode) for s in state.services}
        rec.versions_before = {c.name: c.version for c in state.components}
        before = ", ".join(sorted(set(rec.versions_before.values()))) or "none read"
        self._event(
            f"{len(rec.services)} service(s), {len(rec.running_before)} running; boot time "
            f"{state.boot_time}; versions before: {before}"
        )
        at_version = bool(rec.versions_before) and set(rec.versions_before.values()) == {opts.expect_version}
        if self.skip_current and at_version and not state.pending_reboot:
            raise _Stop(
                PatchStatus.CURRENT,
                f"every component of {self.host} already reports {opts.expect_version} and no restart is "
                "pending: nothing was changed",
            )
        problems = []
        if state.pending_reboot:
            problems.append(
                f"a restart is already pending ({', '.join(state.pending_reboot)}): restart first, so that "
                "the update's own restart request can be told apart"
            )
        if state.free_bytes is None:
            problems.append("the free space of the system drive could not be read")
        elif state.free_bytes < opts.min_free_bytes:
            problems.append(
                f"only {state.free_bytes // 1024**2} MB free on the system drive "
                f"(at least {opts.min_free_bytes // 1024**2} MB required)"
            )
        if state.installer_found is not True:
            where = (
                "a file share read from a remote session needs Kerberos delegation (CredSSP or resource-"
                "based delegation): copy the installer to a local disk of the server instead"
                if self.plan.unc
                else "copy it there first"
            )
            problems.append(f"the server does not see {self.plan.installer_path}: {where}")
        if not state.components:
            problems.append(f"{self.plan.verify} returned no component: the patch level cannot be verified")
        if problems:
            raise _Stop(PatchStatus.STOPPED, "preflight: " + "; ".join(problems) + ". Nothing was changed")
        self._event("preflight passed: no restart pending, enough space, installer visible from the server")

    def _read(self, *, probe: bool = False) -> PatchState:
        return self.driver.state(self.host, self.record.services, probe=probe)

    def _out_of_service(self) -> None:
        self._enter("out-of-service")
        opts = self.opts
        draining: dict[str, float] = {}
        for name in self.record.running_before:
            self.driver.drain(self.host, name)
            limit, _then, _own = opts.drain_rule(name)
            draining[name] = self.clock() + limit
            self._event(f"drain requested: {name} (deadline {limit:g}s)")
        while True:
            state = self._read()
            for name in list(draining):
                svc = state.service(name)
                if svc is not None and svc.stopped:
                    del draining[name]
                    self._event(f"{name} drained and stopped")
            if not draining:
                break
            now = self.clock()
            late = [n for n, deadline in draining.items() if deadline <= now]
            if late:
                forced = [n for n in late if opts.drain_rule(n)[1] == "force-stop"]
                waiting = [n for n in late if n not in forced]
                if waiting:
                    limits = ", ".join(f"{opts.drain_rule(n)[0]:g}s" for n in waiting)
                    raise _Stop(
                        PatchStatus.STOPPED,
                        f"{', '.join(waiting)} did not finish draining within {limits} and is still "
                        "draining; nothing was installed. Wait, or run again with --then force-stop",
                    )
                for name in forced:
                    limit, _then, own = opts.drain_rule(name)
                    why = "pools.toml [service_drain]" if own else "--then force-stop"
                    self._event(
                        f"{name} did not drain within its deadline ({limit:g}s): stopping it now ({why})"
                    )
                    self.driver.stop(self.host, name)
                state = self._read()
                still = [n for n in forced if (s := state.service(n)) is None or not s.stopped]
                if still:
                    raise _Stop(PatchStatus.STOPPED, f"{', '.join(still)} did not stop even when forced")
                for name in forced:
                    del draining[name]
                continue
            soonest = min(draining.values())
            self.sleep(max(0.0, min(opts.service_poll, soonest - now)))
        state = self._read()
        running = [s.name for s in state.services if not s.stopped]
        if running:
            raise _Stop(PatchStatus.STOPPED, f"still not stopped after the drain: {', '.join(running)}")
        self._event(f"every service of {self.host} is stopped")

    def _hold(self) -> None:
        self._enter("hold")
        rec = self.record
        if self.plan.hold == "none":
            self._event("patch.toml holds no service for this product")
            return
        if self.plan.in_pool and not rec.held:
            # the types to restore are those the pool method left (failover may set its own)
            state = self._read()
            rec.startup_before = {s.name: startup_type(s.start_mode) for s in state.services}
        rec.restored = False  # held again on a resume after an earlier restore
        targets = [n for n in rec.services if rec.startup_before.get(n) != "Disabled"]
        if not targets:
            return
        rec.held = list(targets)  # recorded before the call: a lost reply still gets restored
        self._persist()
        after = self.driver.set_startup(self.host, targets, "Disabled")
        wrong = [s.name for s in after if not s.disabled]
        if wrong:
            raise _Stop(
                PatchStatus.FAILED, f"the start-up type of {', '.join(wrong)} did not become Disabled"
            )
        self._event(
            "start-up types recorded ("
            + ", ".join(f"{n}={rec.startup_before[n]}" for n in targets)
            + ") and set to Disabled"
        )

    def _install(self) -> None:
        rec = self.record
        if rec.install is not None and rec.install.exit_code is not None:
            meaning = self.facts.exit_meaning(rec.install.exit_code)
            if meaning != "failure":  # it ended before the interruption; its outcome is recorded
                pending = self._read().pending_reboot
                rec.reboot_needed = meaning == "reboot-required" or bool(pending)
                self._event(
                    f"the install ended before the interruption (exit code {rec.install.exit_code}, "
                    f"{meaning}): it is not run again"
                )
                return
        if rec.install_sent and rec.install is None and self.resumed and self._install_found_done():
            return
        self._enter("install")
        opts = self.opts
        if rec.install is not None:
            self._event(
                f"the previous attempt ended with exit code {rec.install.exit_code}: running the installer "
                "again"
            )
        rec.install, rec.install_sent = None, True  # recorded before the call: its reply may be lost
        self._persist()
        try:
            outcome = self.driver.install(
                self.host, self.plan.installer_path, self.plan.arguments, opts.install_timeout
            )
        except TimeoutExceeded as exc:
            raise _Stop(
                PatchStatus.TIMED_OUT,
                f"the installer did not finish within {opts.install_timeout:g}s ({exc.message}); stopping "
                "the remote command does not stop the installer process, which may still be running: check "
                "the server before anything else",
            ) from None
        rec.install = outcome
        if not outcome.ran or outcome.exit_code is None:
            raise _Stop(PatchStatus.FAILED, "the installer did not run (the server reported no exit code)")
        meaning = self.facts.exit_meaning(outcome.exit_code)
        log = f"; log: {outcome.log_path}" if outcome.log_path else "; no installer log was found next to it"
        if meaning == "failure":
            last = next((ln for ln in reversed(outcome.log_tail.splitlines()) if ln.strip()), "")
            raise _Stop(
                PatchStatus.FAILED,
                f"the installer failed with exit code {outcome.exit_code}{log}"
                + (f" (last line: {last[:200]})" if last else ""),
            )
        state = self._read()
        pending = state.pending_reboot
        self._event(
            f"installer exit code {outcome.exit_code} ({meaning}){log}"
            + (f"; restart pending: {', '.join(pending)}" if pending else "")
        )
        rec.reboot_needed = meaning == "reboot-required" or bool(pending)

    def _install_found_done(self) -> bool:
        """Resuming an install whose outcome was never recorded: the installer may have run to its end, be
        running still (the process outlives the session), or never have started. Only versions at the
        expected level count as done; otherwise stop, unless the operator asked for it to run again."""
        rec, expected = self.record, self.opts.expect_version
        state = self._read()
        versions = {c.name: c.version for c in state.components}
        if versions and all(v == expected for v in versions.values()):
            rec.reboot_needed = bool(state.pending_reboot)
            self._event(
                f"the interrupted install finished: every component reports {expected}"
                + (f"; restart pending: {', '.join(state.pending_reboot)}" if state.pending_reboot else "")
                + "; the installer is not run again"
            )
            return True
        if self.rerun_install:
            self._event("the interrupted install is not at the expected version: running it again, as asked")
            return False
        found = ", ".join(sorted(set(versions.values()))) or "none read"
        raise _Stop(
            PatchStatus.STOPPED,
            f"the install on {self.host} was interrupted before its outcome was recorded, and the versions "
            f"read now ({found}) are not {expected}: the installer may still be running. Check the server; "
            "resume once it has ended (or with --rerun-install if it never ran)",
        )

    def _reboot(self) -> None:
        rec = self.record
        if rec.boot_before and not rec.rebooted and self.resumed:
            # a restart was requested before the interruption: wait for it, do not ask twice, unless
            # the computer answers with its old boot time (the request never reached it)
            state: PatchState | None = None
            try:
                state = self._read(probe=True)
            except (ConnectError, OutcomeUnknown, TimeoutExceeded):
                self.driver.reset(self.host)
            if state is None or state.boot_time != rec.boot_before:
                self._event("resuming after a restart was requested: waiting for it, not restarting again")
                back = self._wait_back(rec.boot_before, self.opts.reboot_timeout)
                rec.rebooted = True
                self._event(f"{self.host} is back: boot time {back.boot_time}; every automatic service runs")
                return
        self._enter("reboot")
        opts = self.opts
        if opts.reboot == "never":
            raise _Stop(
                PatchStatus.REBOOT_PENDING,
                f"{self.host} needs a restart to finish the update and --reboot never was given: the update "
                "is not verified; restart the server, then check its version",
            )
        before = self._read().boot_time
        rec.boot_before = before
        self._persist()
        try:
            self.driver.restart(self.host)
            self._event(f"restart requested (boot time before: {before})")
        except (ConnectError, OutcomeUnknown) as exc:  # the session ends with the restart: a lost reply
            self._event(f"restart requested; the session ended ({exc.message[:120]})")
        self.driver.reset(self.host)
        state = self._wait_back(before, opts.reboot_timeout)
        self.record.rebooted = True
        self._event(f"{self.host} is back: boot time {state.boot_time}; every automatic service runs")

    def _wait_back(self, boot_before: str, timeout: float) -> PatchState:
        """Reconnect with backoff until WinRM answers, the boot time has changed and every service whose
        start-up type is Automatic runs; a ``_Stop`` (timed out) at the deadline."""
        opts = self.opts
        deadline = self.clock() + timeout
        wait = opts.reconnect_first
        seen = "no answer yet"
        while True:
            left = deadline - self.clock()
            if left <= 0:
                raise _Stop(
                    PatchStatus.TIMED_OUT,
                    f"{self.host} did not come back within {timeout:g}s after the restart ({seen})",
                )
            self.sleep(min(wait, left))
            wait = min(wait * 2, opts.reconnect_max)
            try:
                state = self._read(probe=True)
            except (ConnectError, TimeoutExceeded) as exc:
                seen = f"last attempt: {exc.message[:120]}"
                self.driver.reset(self.host)
                continue
            if not state.boot_time or state.boot_time == boot_before:
                seen = "it answers, but its boot time has not changed"
                continue
            waiting = [s.name for s in state.services if s.automatic and not s.running]
            if waiting:
                seen = f"it answers; not running yet: {', '.join(waiting)}"
                continue
            if self.clock() > deadline:  # the answer came, but after the deadline: say so
                raise _Stop(
                    PatchStatus.TIMED_OUT,
                    f"{self.host} did not come back within {timeout:g}s after the restart (it answered "
                    "only after the deadline)",
                )
            return state

    def _verify(self) -> None:
        self._enter("verify")
        rec, expected = self.record, self.opts.expect_version
        state = self._read()
        rec.versions_after = {c.name: c.version for c in state.components}
        if not state.components:
            raise _Stop(
                PatchStatus.STOPPED,
                f"no component version could be read after the update; {self.host} is left out of service",
            )
        wrong = {name: v for name, v in rec.versions_after.items() if v != expected}
        if wrong:
            listed = ", ".join(f"{n} is {v}" for n, v in sorted(wrong.items()))
            raise _Stop(
                PatchStatus.STOPPED,
                f"version mismatch after the update: {listed}, expected {expected}; {self.host} is left out "
                "of service (its services stay stopped; start-up types are restored)",
            )
        self._event(f"every component reports {expected} ({len(rec.versions_after)} component(s))")

    def _restore(self, state: PatchState) -> None:
        """Put back the start-up types this run changed, deciding from ``state`` (a fresh reading) which
        still differ: after a lost reply, nothing is set twice on a guess."""
        rec = self.record
        by_type: dict[str, list[str]] = {}
        for name in rec.held:
            svc = state.service(name)
            now = startup_type(svc.start_mode) if svc is not None and svc.start_mode else ""
            if now != rec.startup_before[name]:
                by_type.setdefault(rec.startup_before[name], []).append(name)
        for startup, names in by_type.items():
            after = self.driver.set_startup(self.host, names, startup)
            wrong = [s.name for s in after if startup_type(s.start_mode) != startup]
            if wrong:
                raise OcspsError(f"the start-up type of {', '.join(wrong)} did not return to {startup}")
        rec.restored = True
        self._event("start-up types restored: " + ", ".join(f"{n}={rec.startup_before[n]}" for n in rec.held))

    def _restore_step(self) -> None:
        self._enter("restore")
        rec = self.record
        if rec.held and not rec.restored:
            self._restore(self._read())
        else:
            self._event("no start-up type to restore")

    def _back_in_service(self) -> None:
        self._enter("back-in-service")
        rec, opts = self.record, self.opts
        if rec.held and not rec.restored:
            self._restore(self._read())
        for name in rec.running_before:
            self.driver.start(self.host, name)
        deadline = self.clock() + opts.drain_timeout
        while True:
            state = self._read()
            waiting = [n for n in rec.running_before if (s := state.service(n)) is None or not s.running]
            if not waiting:
                break
            left = deadline - self.clock()
            if left <= 0:
                raise _Stop(
                    PatchStatus.TIMED_OUT, f"not running within {opts.drain_timeout:g}s: {', '.join(waiting)}"
                )
            self.sleep(min(opts.service_poll, left))
        self._event(f"every service that ran before runs again on {self.host}")

    # ------------------------------------------------------------------ whatever happened
    def _finish(self) -> None:
        """Restore start-up types if the run changed them, then read the final state: both keep trying to
        reach the server for ``restore_timeout`` (a restart longer than its deadline may still end)."""
        rec = self.record
        deadline = self.clock() + self.opts.restore_timeout
        wait = self.opts.reconnect_first
        while True:
            try:
                state = self._read(probe=True)  # one short attempt: is the server there at all?
                if rec.held and not rec.restored:
                    self._restore(state)
                    if rec.status is not PatchStatus.DONE and "hold" in rec.done:
                        rec.done.remove("hold")  # restored: a resume holds them again
                    state = self._read(probe=True)
                rec.final = state
                rec.final_error = ""
                break
            except (ConnectError, OutcomeUnknown, TimeoutExceeded) as exc:
                rec.final_error = exc.message
                self.driver.reset(self.host)
            except OcspsError as exc:
                rec.final_error = exc.message
                break
            left = deadline - self.clock()
            if left <= 0:
                break
            self.sleep(min(wait, left))
            wait = min(wait * 2, self.opts.reconnect_max)
        self._event(f"final state: {rec.statement()}")
