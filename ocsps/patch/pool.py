"""Patch a whole Front End pool: the pool's own roll around each server's patch, then the databases.

The roll is ``ocsps.pool``'s (quorum kept, upgrade domains or one server at a time, failover / failback
or a drain, a stable readiness between units); while a server is out, the patch steps of ``PatchRunner``
run on it (start-up types held and always restored, install, restart and reconnect, verify). A version
mismatch stops the roll with that server left out of the pool, and says so. After the last unit, the
databases are updated (``update_databases``) and every member is read once more: the result states what
the estate holds, from that last reading, not from what the steps reported on the way.

One journal: the roll's state file (``ocsps.pool.state``) carries each server's patch record under
``work`` and the request under ``request``, so ``resume`` continues at the step each server reached and
never repeats a completed install.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import msgspec

from ocsps.catalog import Product
from ocsps.errors import OcspsError, RemoteError, UsageError
from ocsps.jsonout import to_builtins
from ocsps.patch.database import DatabaseReport, DatabaseReportDocument, update_databases
from ocsps.patch.driver import PatchDriver
from ocsps.patch.facts import PatchFacts, load_patch_facts
from ocsps.patch.model import PatchState
from ocsps.patch.plan import PatchOptions, PatchOptionsDocument, PatchPlan, check_options, plan_patch
from ocsps.patch.runner import PatchEvent, PatchRecord, PatchRunner, PatchStatus, record_document
from ocsps.pool import (
    MaintenanceStop,
    Method,
    PoolDriver,
    PoolFacts,
    RollEngine,
    RollEvent,
    RollOptions,
    RollState,
    RollStatus,
    RollUnit,
    ServerPhase,
    StepSpec,
    UpgradeDomain,
    load_pool_facts,
    plan_roll,
)

__all__ = [
    "POOL_FORMAT",
    "PoolPatchDriver",
    "PoolPatchResult",
    "PoolPatchResultDocument",
    "PoolPatchStatus",
    "PostCheck",
    "ServerOutcome",
    "check_request",
    "patch_pool",
    "plan_pool_patch",
    "read_members",
]

POOL_FORMAT = "ocsps-patch-pool/1"


class PoolPatchDriver(PatchDriver, Protocol):
    """The patch driver, plus the database round trip (``RemotePatchDriver`` is both)."""

    def databases(self, host: str, sql_server: str, update: bool) -> Sequence[object]: ...


class PoolPatchStatus(StrEnum):
    DONE = "done"
    CURRENT = "current"  # every member already patched and in service: nothing was sent
    PAUSED = "paused"
    STOPPED = "stopped"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    DISCONNECTED = "disconnected"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        return {
            PoolPatchStatus.DONE: 0,
            PoolPatchStatus.CURRENT: 0,
            PoolPatchStatus.PAUSED: 1,
            PoolPatchStatus.STOPPED: 1,
            PoolPatchStatus.FAILED: 1,
            PoolPatchStatus.TIMED_OUT: 4,
            PoolPatchStatus.DISCONNECTED: 3,
            PoolPatchStatus.INTERRUPTED: 130,
        }[self]


_ROLL_STATUS = {
    PatchStatus.STOPPED: RollStatus.STOPPED,
    PatchStatus.FAILED: RollStatus.FAILED,
    PatchStatus.REBOOT_PENDING: RollStatus.STOPPED,
    PatchStatus.TIMED_OUT: RollStatus.TIMED_OUT,
    PatchStatus.DISCONNECTED: RollStatus.DISCONNECTED,
    PatchStatus.INTERRUPTED: RollStatus.INTERRUPTED,
    PatchStatus.RUNNING: RollStatus.FAILED,
}


@dataclass(frozen=True)
class PostCheck:
    """One post-check's outcome (synthetic transactions, e.g. Test-CsRegistration), as the hook says it."""

    name: str
    ok: bool
    message: str


PostChecks = Callable[[str, Sequence[str]], Sequence[PostCheck]]
"""(pool, members) -> outcomes; run once the roll and the database update are done."""


@dataclass(frozen=True)
class ServerOutcome:
    """One member as read at the end: its patch record's word, and the last reading's."""

    server: str
    phase: str
    patch_status: str
    reason: str
    versions: Mapping[str, str]
    at_version: bool
    in_service: bool
    left_disabled: tuple[str, ...]
    not_running: tuple[str, ...]
    disabled_by_failover: tuple[str, ...] = ()
    error: str = ""
    pending_reboot: tuple[str, ...] = ()

    @property
    def current(self) -> bool:
        """At the version, every service running, none Disabled, no restart pending: nothing to do."""
        problems = self.left_disabled or self.pending_reboot or self.error
        return self.at_version and self.in_service and not problems


@dataclass
class PoolPatchResult:
    pool: str
    product: str
    expect_version: str
    status: PoolPatchStatus
    reason: str
    roll: RollState
    servers: list[ServerOutcome] = field(default_factory=list)
    database: DatabaseReport | None = None
    database_note: str = ""
    post_checks: list[PostCheck] = field(default_factory=list)
    versions_before: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each member's component versions as read before a new roll changed anything (empty on a resume)."""

    @property
    def exit_code(self) -> int:
        return self.status.exit_code

    @property
    def out_of_service(self) -> list[str]:
        return [s.server for s in self.servers if not s.in_service]

    @property
    def left_disabled(self) -> dict[str, list[str]]:
        return {s.server: list(s.left_disabled) for s in self.servers if s.left_disabled}

    def statement(self) -> str:
        """The estate at the end, from the last reading of every member."""
        parts: list[str] = []
        at = [s.server for s in self.servers if s.at_version]
        parts.append(f"{len(at)} of {len(self.servers)} member(s) of {self.pool} at {self.expect_version}")
        unread = [s.server for s in self.servers if s.error]
        if unread:
            parts.append(f"could not be read: {', '.join(unread)}")
        out = [s for s in self.servers if not s.in_service and not s.error]
        parts.append(
            "OUT OF SERVICE: "
            + ", ".join(
                s.server + (" (failed over: Disabled until failback)" if s.disabled_by_failover else "")
                for s in out
            )
            if out
            else "every member read is in service"
        )
        left = self.left_disabled
        parts.append(
            "left Disabled: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in left.items())
            if left
            else "no service left Disabled"
        )
        if self.database is not None:
            parts.append(f"databases: {self.database.statement()}")
        elif self.database_note:
            parts.append(f"databases: {self.database_note}")
        failed = [c.name for c in self.post_checks if not c.ok]
        if self.post_checks:
            parts.append(f"post-checks failed: {', '.join(failed)}" if failed else "post-checks passed")
        return "; ".join(parts)


class PoolPatchResultDocument(msgspec.Struct):
    """What ``patch pool --json`` and the pool patch writes: the roll's position and units, each member's
    outcome, the databases and post-checks, and the statement, read when the document is made."""

    format: str
    pool: str
    product: str
    expect_version: str
    status: PoolPatchStatus
    reason: str
    position: str
    method: Method
    units: tuple[RollUnit, ...]
    phases: dict[str, ServerPhase]
    servers: list[ServerOutcome]
    out_of_service: list[str]
    left_disabled: dict[str, list[str]]
    database: DatabaseReportDocument | None
    database_note: str
    post_checks: list[PostCheck]
    statement: str
    simulation: bool
    change_id: str
    runs: int
    history: list[dict[str, str]]

    @classmethod
    def of(cls, result: PoolPatchResult) -> PoolPatchResultDocument:
        r, roll = result, result.roll
        return cls(
            format=POOL_FORMAT,
            pool=r.pool,
            product=r.product,
            expect_version=r.expect_version,
            status=r.status,
            reason=r.reason,
            position=roll.position(),
            method=roll.plan.method,
            units=roll.plan.units,
            phases=roll.servers,
            servers=r.servers,
            out_of_service=r.out_of_service,
            left_disabled=r.left_disabled,
            database=DatabaseReportDocument.of(r.database) if r.database else None,
            database_note=r.database_note,
            post_checks=r.post_checks,
            statement=r.statement(),
            simulation=roll.simulation,
            change_id=str(roll.request.get("change_id", "")),
            runs=roll.runs,
            history=roll.history,
        )


# ------------------------------------------------------------------------------------------ request
def _request(
    installer: str, options: PatchOptions, sql_server: str, database_update: bool, change_id: str
) -> dict[str, Any]:
    return {
        "kind": "patch-pool",
        "installer": installer,
        "expect_version": options.expect_version,
        "options": to_builtins(PatchOptionsDocument.of(options)),
        "sql_server": sql_server,
        "database_update": database_update,
        "change_id": change_id,
    }


def check_request(
    state: RollState, installer: str, options: PatchOptions, sql_server: str, database_update: bool
) -> None:
    """A resume must be asked what the saved roll was asked: the same installer, version, databases."""
    saved = state.request
    if saved.get("kind") != "patch-pool":
        raise UsageError(
            "the saved roll of this pool is not a patch roll (ocsps pool maintain): resume it there"
        )
    wanted = {
        "installer": installer.strip(),
        "expect_version": options.expect_version,
        "sql_server": sql_server,
        "database_update": database_update,
    }

    def same(key: str, value: object) -> bool:
        found = saved.get(key)
        if isinstance(found, str) and isinstance(value, str) and key in ("installer", "sql_server"):
            return found.casefold() == value.casefold()  # Windows paths and host names ignore case
        return bool(found == value)

    differ = [
        f"{key} {saved.get(key)!r} (saved) vs {value!r}"
        for key, value in wanted.items()
        if not same(key, value)
    ]
    if differ:
        raise UsageError(
            f"the saved patch roll of {state.plan.pool} was asked something else: {'; '.join(differ)}; "
            "resume with the same options, or check the pool and delete the state file to start anew"
        )


def plan_pool_patch(
    pool: str,
    product: Product,
    members: Sequence[str],
    installer: str,
    options: PatchOptions,
    *,
    domains: Sequence[UpgradeDomain] = (),
    roll_options: RollOptions | None = None,
    sql_server: str = "",
    database_update: bool = True,
    change_id: str = "",
    simulation: bool = False,
    only: Sequence[str] | None = None,
    patch_facts: PatchFacts | None = None,
    pool_facts: PoolFacts | None = None,
) -> tuple[RollState, list[PatchPlan]]:
    """The roll and each member's patch plan, checked before anything is sent (a ``UsageError`` names
    what is wrong: an installer that is not the product's, a product whose level cannot be verified, a
    pool size without a quorum rule, a database update without the SQL Server's name)."""
    pf = patch_facts or load_patch_facts()
    check_options(options)
    if database_update and product.id in pf.database_products and not sql_server:
        raise UsageError(
            "--sql-server is required for the database update after the pool (or --no-database-update)"
        )
    plans = [plan_patch(m, product, installer, options, pf, in_pool=True) for m in members]
    base = roll_options or RollOptions.defaults(pool_facts or load_pool_facts())
    # Through the saved form, as a resume reads it: the same numbers are written whether or not it resumes.
    ro = RollOptions.from_json(
        {**to_builtins(base), "step": to_builtins(StepSpec("patch", plans[0].installer_path))}
    )
    plan = plan_roll(pool, product, members, domains, only=only or None, facts=pool_facts)
    state = RollState(plan, ro, simulation=simulation)
    state.request = _request(plans[0].installer_path, options, sql_server, database_update, change_id)
    return state, plans


# ------------------------------------------------------------------------------------------ the hook
class _Patcher:
    """The roll's maintenance: each server's patch, its record kept in the roll's journal."""

    def __init__(
        self,
        driver: PoolPatchDriver,
        state: RollState,
        product: Product,
        save: Callable[[RollState], None],
        *,
        facts: PatchFacts,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        on_event: Callable[[RollEvent], None] | None,
        rerun_install: bool,
    ) -> None:
        self.driver = driver
        self.state = state
        self.product = product
        self.save = save
        self.facts = facts
        self.clock = clock
        self.sleep = sleep
        self.on_event = on_event
        self.rerun_install = rerun_install
        self.runners: dict[str, PatchRunner] = {}

    def _store(self, server: str, record: PatchRecord) -> None:
        record.change_id = str(self.state.request.get("change_id", ""))
        self.state.work[server] = record_document(record)
        self.save(self.state)

    def _show(self, server: str) -> Callable[[PatchEvent], None]:
        def show(event: PatchEvent) -> None:
            if self.on_event is not None:
                self.on_event(RollEvent(event.time, f"patch:{event.step}", event.message, server))

        return show

    def runner(self, server: str) -> PatchRunner:
        found = self.runners.get(server)
        if found is not None:
            return found
        saved = self.state.work.get(server)
        record = PatchRecord.from_json(saved, source=f"patch record of {server}") if saved else None
        options = PatchOptions.from_json(self.state.request["options"])
        plan = (
            record.plan
            if record is not None
            else plan_patch(
                server, self.product, str(self.state.request["installer"]), options, self.facts, in_pool=True
            )
        )
        runner = PatchRunner(
            self.driver,
            plan,
            save=lambda rec: self._store(server, rec),
            facts=self.facts,
            clock=self.clock,
            sleep=self.sleep,
            on_event=self._show(server),
            simulation=self.state.simulation,
            record=record,
            rerun_install=self.rerun_install,
        )
        self.runners[server] = runner
        return runner

    def check(self, server: str) -> None:
        record = self.runner(server).check()
        if record.status is not PatchStatus.RUNNING:
            raise MaintenanceStop(f"{server}: {record.reason}", _ROLL_STATUS[record.status])

    def run(self, server: str) -> str:
        record = self.runner(server).run_while_out()
        if record.status is PatchStatus.DONE:
            versions = ", ".join(sorted(set(record.versions_after.values())))
            return f"{server} patched: every component reports {versions}; start-up types restored"
        raise MaintenanceStop(
            f"{server}: {record.reason}; {server} is left out of the pool", _ROLL_STATUS[record.status]
        )


# ------------------------------------------------------------------------------------------ the run
def patch_pool(
    pool_driver: PoolDriver,
    patch_driver: PoolPatchDriver,
    state: RollState,
    product: Product,
    *,
    save: Callable[[RollState], None],
    rerun_install: bool = False,
    post_checks: PostChecks | None = None,
    patch_facts: PatchFacts | None = None,
    pool_facts: PoolFacts | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_event: Callable[[RollEvent], None] | None = None,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
) -> PoolPatchResult:
    """Run (or resume) the patch roll ``state`` (from ``plan_pool_patch``, or a saved one), then update
    the databases, run the ``post_checks`` hook and read every member once more.

    Never raises for the roll's own outcome: the result's status, reason and statement say what
    happened and what the estate holds. ``save`` is called after every transition with the whole state
    (the one journal)."""
    pf = patch_facts or load_patch_facts()
    request = state.request
    if request.get("kind") != "patch-pool":
        raise UsageError("this roll state holds no patch request: plan it with plan_pool_patch")
    patcher = _Patcher(
        patch_driver,
        state,
        product,
        save,
        facts=pf,
        clock=clock,
        sleep=sleep,
        on_event=on_event,
        rerun_install=rerun_install,
    )
    engine = RollEngine(
        pool_driver,
        state,
        save=save,
        facts=pool_facts,
        clock=clock,
        sleep=sleep,
        on_event=on_event,
        cancel=cancel,
        deadline=deadline,
        maintenance=patcher,
    )
    engine.run()
    status = PoolPatchStatus(state.status.value)
    reason = state.reason
    result = PoolPatchResult(
        state.plan.pool, product.id, str(request["expect_version"]), status, reason, state
    )
    if state.status is RollStatus.DONE:
        _databases(result, patch_driver, pf, save, on_event)
        if post_checks is not None and result.status is PoolPatchStatus.DONE:
            result.post_checks = list(post_checks(state.plan.pool, state.plan.members))
            failed = [c.name for c in result.post_checks if not c.ok]
            if failed:
                result.status = PoolPatchStatus.STOPPED
                result.reason = f"post-checks failed: {', '.join(failed)}"
    result.servers = read_members(patch_driver, state)
    if result.status is PoolPatchStatus.DONE:
        wrong = [s.server for s in result.servers if not (s.at_version and s.in_service) or s.left_disabled]
        if wrong:
            result.status = PoolPatchStatus.STOPPED
            result.reason = f"the last reading does not confirm the roll on {', '.join(wrong)}"
        else:
            request["done"] = True  # a new roll of this pool may start; nothing is left to resume
            save(state)
    _note(on_event, f"final state: {result.statement()}")
    return result


def _note(on_event: Callable[[RollEvent], None] | None, message: str, server: str | None = None) -> None:
    if on_event is not None:
        from datetime import UTC, datetime

        on_event(RollEvent(datetime.now(UTC).isoformat(timespec="seconds"), "patch", message, server))


def _databases(
    result: PoolPatchResult,
    driver: PoolPatchDriver,
    facts: PatchFacts,
    save: Callable[[RollState], None],
    on_event: Callable[[RollEvent], None] | None,
) -> None:
    """The database step, once per roll: a done step is not repeated on resume; a failed one is."""
    state, request = result.roll, result.roll.request
    done = request.get("database_result")
    if result.product not in facts.database_products:
        result.database_note = (
            "this product has no Test-CsDatabase (it arrived with Lync Server 2013, actions.toml "
            "patch-database): "
            "apply the update's database changes as its KB article says"
        )
        return
    if not request.get("database_update"):
        result.database_note = "not requested (--no-database-update)"
        return
    if isinstance(done, dict) and done.get("ok"):
        result.database_note = "updated by an earlier run of this roll"
        return
    via = state.plan.members[0]
    sql = str(request["sql_server"])
    _note(on_event, f"database update: Test-CsDatabase / Install-CsDatabase -Update on {sql}", via)
    try:
        report = update_databases(driver, via, sql, update=True)
    except (RemoteError, OcspsError) as exc:
        result.status = PoolPatchStatus.FAILED
        result.reason = (
            f"every server is patched, but the database update on {sql} failed: {exc.message}; nothing is "
            "verified there: fix the cause (an account without rights on the SQL Server is the usual one), "
            "then resume to run the database update again"
        )
        request["database_result"] = {"ok": False, "error": exc.message}
        save(state)
        return
    result.database = report
    request["database_result"] = {"ok": report.ok, "status": report.status}
    save(state)
    if not report.ok:
        result.status = PoolPatchStatus.FAILED
        result.reason = f"the database update is not verified: {report.statement()}"


def _final(driver: PatchDriver, state: RollState, server: str) -> ServerOutcome:
    """One member read once more: versions, services, start-up types. A member left failed over has its
    services Disabled by the failover itself (until failback): reported apart, not as left by the run."""
    saved = state.work.get(server)
    record = PatchRecord.from_json(saved) if saved else None
    expected = str(state.request["expect_version"])
    phase = state.phase(server)
    status = record.status.value if record else "not-started"
    reason = record.reason if record else ""
    try:
        services = record.services if record and record.services else driver.services(server)
        reading: PatchState = driver.state(server, services)
    except OcspsError as exc:
        unrestored = tuple(record.held) if record and not record.restored else ()
        return ServerOutcome(
            server, phase.value, status, reason, {}, False, False, unrestored, (), (), exc.message
        )
    versions = {c.name: c.version for c in reading.components}
    ran = record.running_before if record and record.running_before else list(services)
    not_running = tuple(n for n in ran if (s := reading.service(n)) is None or not s.running)
    disabled = tuple(s.name for s in reading.services if s.disabled)
    failed_over = state.plan.method is Method.FAILOVER and phase not in (
        ServerPhase.PENDING,
        ServerPhase.RETURNED,
    )
    held = set(record.held) if record and not record.restored else set()
    left = tuple(n for n in disabled if n in held) if failed_over else disabled
    return ServerOutcome(
        server,
        phase.value,
        status,
        reason,
        versions,
        bool(versions) and all(v == expected for v in versions.values()),
        not not_running,
        left,
        not_running,
        tuple(n for n in disabled if n not in left) if failed_over else (),
        pending_reboot=tuple(reading.pending_reboot),
    )


def read_members(driver: PatchDriver, state: RollState) -> list[ServerOutcome]:
    """Every server of the roll read once, as the result states them (versions, services, start-up
    types, restart flags); a read only."""
    return [_final(driver, state, s) for s in state.plan.servers]
