"""The post-implementation report of one change, as data: built from the audit trail and the saved records.

A change board asks after the window: what was done, on which server, when, by whom, with what result,
and what was checked. The audit log answers the first questions line by line; the patch records and the
pool roll states add what the log does not carry (each patch step with its messages, the versions read
before and after, the roll's progress through the pool). ``build_report`` joins them for one change ticket
(or one time window) into a ``Report``; it reads nothing and writes nothing, so every renderer and every
test works from the same model.

Nothing here adds to what the sources say: values are carried as read (the audit log is already redacted)
and a rehearsal against the lab stays marked as one on every row it produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "FORMAT",
    "CommandRun",
    "Event",
    "Milestone",
    "PoolReport",
    "Report",
    "Selection",
    "ServerReport",
    "VersionRow",
    "build_report",
    "parse_time",
]

FORMAT = "ocsps-report/1"

AUDIT_STAGES: dict[str, str] = {
    "drain": "out of service (drain)",
    "drain-watch": "out of service (drain)",
    "pool-drain-server": "out of service (drain)",
    "pool-failover": "out of service (failover)",
    "stop": "stop",
    "start": "start",
    "restart": "restart",
    "pool-start-server": "back in service (start)",
    "pool-failback": "back in service (failback)",
    "pool-step": "maintenance step",
    "pool-start": "pool started (Start-CsPool)",
    "pool-recover": "quorum-loss recovery (Reset-CsPoolRegistrarState)",
    "pool-readiness-watch": "pool readiness watched",
    "check-synthetic": "synthetic transaction (post-check)",
    "drain-follow": "drain followed",
    "patch-state": "patch state read",
    "patch-set-startup": "start-up types set",
    "patch-install": "install",
    "patch-restart": "reboot",
    "patch-database": "database update",
    "deactivate": "deactivation (LcsCmd)",
    "deactivate-step": "deactivation step",
    "deactivate-acknowledged": "deactivation checklist acknowledged",
}
"""What a recorded call did, in the words of a maintenance window (the action names are the catalog's).

Only actions that change state are audited call by call (``changes_state`` in the catalog); the read-only
ones are named too, for a log written by a version that audited them. ``patch-set-startup`` is told
apart by its start-up type (``_audit_stage``)."""

PATCH_STAGES: dict[str, str] = {
    "preflight": "preflight",
    "out-of-service": "out of service",
    "hold": "hold start-up types",
    "install": "install",
    "reboot": "reboot",
    "verify": "verify",
    "restore": "restore start-up types",
    "back-in-service": "back in service",
    "done": "done",
}
"""A patch record's steps, in the order the run takes them (``ocsps.patch.runner``): a server's own run
(``SERVER_STEPS``) or a pool member's (``POOL_STEPS``: the roll takes it out and brings it back, the
record restores the start-up types)."""

ROLL_STAGES: dict[str, str] = {
    "quorum": "quorum check",
    "taking-down": "out of service (requested)",
    "down": "out of service",
    "kept-out": "out of service (left out)",
    "awaiting-operator": "waiting for the operator",
    "step-running": "maintenance step (started)",
    "step-done": "maintenance step",
    "returning": "back in service (requested)",
    "returned": "back in service",
    "re-read": "state read again",
}
"""A roll's per-server events (``ocsps.pool.engine``)."""

PATCH_STEP_OF_STAGE: dict[str, str] = {
    "out of service (drain)": "out-of-service",
    "out of service (failover)": "out-of-service",
    "stop": "out-of-service",
    "hold start-up types": "hold",
    "install": "install",
    "reboot": "reboot",
    "database update": "database",
    "restore start-up types": "back-in-service",
    "start": "back-in-service",
    "back in service (start)": "returning",
    "back in service (failback)": "returning",
}
"""The step a recorded call belongs to. A patch record's times are whole seconds and a lab run makes
several steps in one second: within a second, calls are ordered by the step they belong to."""

SLOTS: tuple[str, ...] = (
    "preflight",
    "quorum",
    "out-of-service",
    "down",
    "step-running",
    "hold",
    "install",
    "reboot",
    "verify",
    "restore",
    "back-in-service",
    "database",
    "done",
    "step-done",
    "returning",
    "returned",
)
"""The order of one server's window within a second: a patch record's steps (``PATCH_STAGES``) and, for a
pool member, the roll's events around them (checked, taken out, patched, brought back)."""

_SLOT_OF_ROLL = {"taking-down": "out-of-service", "kept-out": "step-done"}
"""A roll event whose slot is not its own name."""

KEPT_OUT = "kept-out"
"""A ``down`` event after the server's maintenance step began: the step failed and the roll leaves the
server out of the pool (``ocsps.pool.engine``); it follows the step, not precedes it."""

ROLL_FAILURES = frozenset({"failed", "stopped", "timed-out", "disconnected", "interrupted"})
"""Roll events that end a roll short of its goal (``RollStatus`` values)."""

PATCH_DONE = "done"
ROLL_DONE = "done"
INTENT = "intent:"
"""How ``audit.require_writable`` marks the line it writes before anything is sent."""


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time as the sources write it; a time without a zone is UTC. None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


@dataclass(frozen=True)
class Selection:
    """Which change the report is about: a ticket, a time window (``since`` inclusive, ``until`` not), or
    both (the ticket's records inside the window)."""

    change_id: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if not self.change_id and self.since is None and self.until is None:
            raise ValueError("name a change (--change-id) or a time window (--since / --until)")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("--until must be later than --since")

    def in_window(self, moment: datetime | None) -> bool:
        if self.since is None and self.until is None:
            return True
        if moment is None:
            return False
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until

    def ticket_matches(self, value: object) -> bool:
        return not self.change_id or value == self.change_id

    def describe(self) -> str:
        parts = []
        if self.change_id:
            parts.append(f"change {self.change_id}")
        if self.since is not None:
            parts.append(f"from {_iso(self.since)}")
        if self.until is not None:
            parts.append(f"until {_iso(self.until)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Event:
    """One row of a server's timeline: a recorded call, a patch step or a roll event."""

    time: str
    host: str
    stage: str
    action: str
    outcome: str
    ok: bool | None
    """True succeeded, False failed (or its outcome is unknown), None neither (a decision, a request)."""
    detail: str
    operator: str
    rehearsal: bool
    source: str
    change_id: str = ""


@dataclass(frozen=True)
class CommandRun:
    """A command started under the change: its intent line, written before anything was sent."""

    time: str
    command: str
    hosts: tuple[str, ...]
    operator: str
    rehearsal: bool
    change_id: str


@dataclass(frozen=True)
class VersionRow:
    component: str
    before: str
    after: str
    verified: bool | None
    """The version read after the install equals the one expected; None when nothing was expected."""


MILESTONES = ("out of service", "install", "reboot", "verify", "back in service")
"""The stages a board looks for first, in the order a window takes them."""

_ROLL_MILESTONES = {
    "taking-down": "out of service",
    "down": "out of service",
    "returning": "back in service",
    "returned": "back in service",
}


_CALL_MILESTONES = {
    "out of service (drain)": "out of service",
    "out of service (failover)": "out of service",
    "install": "install",
    "reboot": "reboot",
    "back in service (start)": "back in service",
    "back in service (failback)": "back in service",
}
"""Calls that take a whole server out or bring it back; a stop or a start of one service does not."""


def _milestone(event: Event) -> str | None:
    """Which of ``MILESTONES`` a timeline row belongs to, if any."""
    if event.source == "patch record":
        label = PATCH_STAGES.get(event.action, "")
    elif event.source == "pool roll":
        label = _ROLL_MILESTONES.get(event.action, "")
    elif event.stage in _CALL_MILESTONES:
        label = _CALL_MILESTONES[event.stage]
    else:
        return None
    return label if label in MILESTONES else None


@dataclass(frozen=True)
class Milestone:
    """One stage of a server's window at a glance: when it began and ended, and whether it went well."""

    stage: str
    started: str
    finished: str
    ok: bool | None
    """False if any of its rows failed, True if one succeeded and none failed, None otherwise."""


@dataclass(frozen=True)
class ServerReport:
    host: str
    product: str
    outcome: str
    """``ok``, ``failed``, or a patch record's status (``stopped``, ``running`` ...)."""
    events: tuple[Event, ...]
    versions: tuple[VersionRow, ...] = ()
    expected_version: str = ""
    statement: str = ""
    """The patch record's own words on the server's state at the end of the run."""

    @property
    def rehearsal(self) -> bool:
        return bool(self.events) and all(e.rehearsal for e in self.events)

    @property
    def verified(self) -> bool | None:
        checks = [v.verified for v in self.versions if v.verified is not None]
        return all(checks) if checks else None

    @property
    def milestones(self) -> tuple[Milestone, ...]:
        """Out of service, install, reboot, verify, back in service: those the timeline shows, in order."""
        rows: dict[str, list[Event]] = {}
        for event in self.events:
            stage = _milestone(event)
            if stage is not None:
                rows.setdefault(stage, []).append(event)
        found = []
        for stage in MILESTONES:
            if stage not in rows:
                continue
            events = rows[stage]
            times = sorted(e.time for e in events if e.time)
            oks = [e.ok for e in events]
            ok = False if False in oks else True if True in oks else None
            found.append(Milestone(stage, times[0] if times else "", times[-1] if times else "", ok))
        return tuple(found)


@dataclass(frozen=True)
class PoolReport:
    pool: str
    status: str
    reason: str
    position: str
    rehearsal: bool
    servers: tuple[tuple[str, str], ...]
    events: tuple[Event, ...]
    """The roll's own events (start, readiness, fabric, done or why it stopped); per-server ones are on
    the servers' timelines."""
    details: tuple[tuple[str, str], ...] = ()
    """What the roll was asked and did as a whole (method, units; for ``patch pool``: installer, expected
    version, database update, post-checks), as (label, value) rows in reading order."""


@dataclass(frozen=True)
class Report:
    selection: str
    change_id: str
    generated: str
    generated_by: str
    commands: tuple[CommandRun, ...]
    servers: tuple[ServerReport, ...]
    pools: tuple[PoolReport, ...]
    notes: tuple[str, ...] = ()
    started: str = ""
    finished: str = ""
    operators: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.commands or self.servers or self.pools)

    @property
    def rehearsal(self) -> str:
        """``yes`` every row is a lab rehearsal, ``no`` none is, ``mixed`` both (said loudly)."""
        flags = [c.rehearsal for c in self.commands] + [p.rehearsal for p in self.pools]
        flags += [e.rehearsal for s in self.servers for e in s.events]
        if flags and all(flags):
            return "yes"
        return "mixed" if any(flags) else "no"

    @property
    def outcome(self) -> str:
        """``failed`` if any server or roll failed, ``incomplete`` if one has not finished, else ``ok``."""
        states = [s.outcome for s in self.servers] + [
            "ok" if p.status == ROLL_DONE else "failed" if p.status in ROLL_FAILURES else "incomplete"
            for p in self.pools
        ]
        if any(s == "failed" or s in ROLL_FAILURES for s in states):
            return "failed"
        if any(s != "ok" for s in states):
            return "incomplete"
        return "ok"


# ------------------------------------------------------------------------------------------- building
def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _fold(host: str) -> str:
    return host.strip().casefold()


def _audit_outcome(outcome: str) -> bool | None:
    if outcome == "ok":
        return True
    if outcome.startswith("decided:"):
        return None
    return False


def _audit_stage(action: str, parameters: Mapping[str, Any]) -> str:
    if action == "patch-set-startup":
        return (
            "hold start-up types" if parameters.get("StartupType") == "Disabled" else "restore start-up types"
        )
    return AUDIT_STAGES.get(action, action)


def _audit_detail(action: str, parameters: Mapping[str, Any], detail: str) -> str:
    shown = [f"{k}={_text(v)}" for k, v in parameters.items() if k not in ("step_sha256",)]
    return "; ".join(x for x in (", ".join(shown), detail) if x)


@dataclass
class _Server:
    host: str
    product: str = ""
    events: list[tuple[datetime | None, int, Event]] = field(default_factory=list)
    record: Mapping[str, Any] | None = None
    pool: str = ""
    """The pool whose roll journal holds the record (``patch pool``); "" for a server's own run."""


class _Builder:
    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.servers: dict[str, _Server] = {}
        self.commands: list[tuple[datetime | None, int, CommandRun]] = []
        self.notes: list[str] = []
        self.operators: set[str] = set()
        self.moments: list[datetime] = []
        self.counter = 0

    def server(self, host: str) -> _Server:
        key = _fold(host)
        if key not in self.servers:
            self.servers[key] = _Server(host)
        return self.servers[key]

    def add(self, moment: datetime | None, event: Event) -> None:
        self.counter += 1
        self.server(event.host).events.append((moment, self.counter, event))
        if moment is not None:
            self.moments.append(moment)
        if event.operator:
            self.operators.add(event.operator)

    # ----------------------------------------------------------------------------------- audit lines
    def audit(self, lines: Iterable[Mapping[str, Any]]) -> None:
        unreadable_times = 0
        for line in lines:
            if not self.selection.ticket_matches(line.get("change_id")):
                continue
            moment = parse_time(_text(line.get("time")))
            if moment is None:
                unreadable_times += 1
                if self.selection.since is not None or self.selection.until is not None:
                    continue
            if not self.selection.in_window(moment):
                continue
            host = _text(line.get("host")) or "(no host)"
            action = _text(line.get("action"))
            outcome = _text(line.get("outcome"))
            detail = _text(line.get("detail"))
            operator = _text(line.get("operator"))
            raw_parameters = line.get("parameters")
            parameters: Mapping[str, Any] = raw_parameters if isinstance(raw_parameters, Mapping) else {}
            rehearsal = line.get("simulation") is True
            ticket = _text(line.get("change_id"))
            if outcome == "starting" and detail.startswith(INTENT):
                hosts = parameters.get("hosts")
                self.counter += 1
                self.commands.append(
                    (
                        moment,
                        self.counter,
                        CommandRun(
                            time=_iso(moment) or _text(line.get("time")),
                            command=action,
                            hosts=tuple(_text(h) for h in hosts) if isinstance(hosts, list) else (host,),
                            operator=operator,
                            rehearsal=rehearsal,
                            change_id=ticket,
                        ),
                    )
                )
                if moment is not None:
                    self.moments.append(moment)
                if operator:
                    self.operators.add(operator)
                continue
            self.add(
                moment,
                Event(
                    time=_iso(moment) or _text(line.get("time")),
                    host=host,
                    stage=_audit_stage(action, parameters),
                    action=action,
                    outcome=outcome,
                    ok=_audit_outcome(outcome),
                    detail=_audit_detail(action, parameters, detail),
                    operator=operator,
                    rehearsal=rehearsal,
                    source="audit log",
                    change_id=ticket,
                ),
            )
        if unreadable_times:
            self.notes.append(f"{unreadable_times} audit line(s) carry no readable time")

    # -------------------------------------------------------------------------------- patch records
    def patch_record(
        self,
        record: Mapping[str, Any],
        *,
        patched_in_log: bool,
        linked: bool = False,
        pool: str = "",
        since: datetime | None = None,
    ) -> None:
        """One server's patch record: its steps, versions and closing statement.

        Records carry their change ticket; with a time window only, a record whose history falls in the
        window belongs to the report. A pool member's record (``work`` of a roll state) belongs to the
        change when its roll does (``linked``); when a command of the change rolled the pool (a resume
        under another ticket keeps the first one in the journal), only its steps from ``since`` on.
        """
        host = _text(record.get("host"))
        if not host:
            return
        ticket = _text(record.get("change_id"))
        if self.selection.change_id and ticket != self.selection.change_id and not linked:
            if patched_in_log:
                self.notes.append(
                    f"the patch record of {host} now holds "
                    + (f"change {ticket}" if ticket else "a run without a change id")
                    + "; this change's patch steps on it are shown from the audit log only"
                )
            return
        history = record.get("history")
        steps: list[tuple[datetime | None, str, list[str]]] = []
        for entry in history if isinstance(history, list) else []:
            if not isinstance(entry, Mapping):
                continue
            moment = parse_time(_text(entry.get("time")))
            if not self.selection.in_window(moment):
                continue
            if since is not None and (moment is None or moment < since):
                continue
            step = _text(entry.get("step"))
            message = _text(entry.get("message"))
            if not steps or steps[-1][1] != step:
                steps.append((moment, step, []))
            if message != f"step {step}":
                steps[-1][2].append(message)
        if not steps:
            return
        server = self.server(host)
        server.product = _text(record.get("product")) or server.product
        server.record = record
        server.pool = pool
        status = _text(record.get("status"))
        rehearsal = record.get("simulation") is True
        last_step = _text(record.get("step"))
        for index, (moment, step, messages) in enumerate(steps):
            failed_here = status != PATCH_DONE and step == last_step and index == len(steps) - 1
            reason = _text(record.get("reason"))
            self.add(
                moment,
                Event(
                    time=_iso(moment),
                    host=host,
                    stage=PATCH_STAGES.get(step, step),
                    action=step,
                    outcome=(status or "failed") if failed_here else "ok",
                    ok=None if failed_here and status == "running" else not failed_here,
                    detail="; ".join(
                        [*messages, *([reason] if failed_here and reason not in messages else [])]
                    ),
                    operator="",
                    rehearsal=rehearsal,
                    source="patch record",
                    change_id=ticket,
                ),
            )

    # ---------------------------------------------------------------------------------- pool rolls
    def roll(self, state: Mapping[str, Any], started_under: datetime | None) -> PoolReport | None:
        pool = _text(state.get("pool"))
        rehearsal = state.get("simulation") is True
        history = state.get("history")
        own: list[tuple[datetime | None, int, Event]] = []
        on_servers = 0
        stepping: set[str] = set()
        for entry in history if isinstance(history, list) else []:
            if not isinstance(entry, Mapping):
                continue
            moment = parse_time(_text(entry.get("time")))
            name = _text(entry.get("event"))
            server = _text(entry.get("server"))
            kept_out = name == "down" and _fold(server) in stepping
            if name == "step-running":
                stepping.add(_fold(server))
            elif name in ("step-done", "returning", "returned", "taking-down"):
                stepping.discard(_fold(server))
            if not self.selection.in_window(moment):
                continue
            if started_under is not None and (moment is None or moment < started_under):
                continue
            failed = name in ROLL_FAILURES
            event = Event(
                time=_iso(moment),
                host=server or pool,
                stage=ROLL_STAGES[KEPT_OUT] if kept_out else ROLL_STAGES.get(name, name),
                action=name,
                outcome=name if failed else "ok",
                ok=False if failed else True if name in ("down", "step-done", "returned", "done") else None,
                detail=_text(entry.get("message")),
                operator="",
                rehearsal=rehearsal,
                source="pool roll",
                change_id=_roll_ticket(state),
            )
            if server:
                self.add(moment, event)
                on_servers += 1
            else:
                self.counter += 1
                own.append((moment, self.counter, event))
                if moment is not None:
                    self.moments.append(moment)
        if not own and not on_servers:
            return None
        servers = state.get("servers")
        return PoolReport(
            pool=pool,
            status=_text(state.get("status")),
            reason=_text(state.get("reason")),
            position=_text(state.get("position")),
            rehearsal=rehearsal,
            servers=tuple((str(k), _text(v)) for k, v in servers.items())
            if isinstance(servers, Mapping)
            else (),
            events=tuple(e for _, _, e in sorted(own, key=_order)),
            details=_roll_details(state),
        )

    # ---------------------------------------------------------------------------------------- result
    def _timeline(self, server: _Server) -> list[tuple[datetime | None, int, Event]]:
        """In time order; inside a patch run (from its command's intent line to its last recorded step,
        or for a pool member its roll's last event on it), by second and then by the step each row belongs
        to, since the record's and the roll's times are whole seconds and a fast run makes several steps
        in one."""
        items = server.events
        journals = ("patch record", "pool roll") if server.pool else ("patch record",)
        recorded = [m for m, _, e in items if e.source in journals and m is not None]
        if not recorded:
            return sorted(items, key=_order)
        first = min(recorded).replace(microsecond=0)
        end = max(recorded).replace(microsecond=0) + timedelta(seconds=1)
        starts = [
            m
            for m, _, c in self.commands
            if m is not None
            and m < first + timedelta(seconds=1)
            and c.command.startswith("patch ")
            and _fold(server.host) in {_fold(h) for h in c.hosts}
        ]
        begin = max(starts) if starts else first
        before, run, after = [], [], []
        for item in items:
            moment, _, event = item
            if event.source in journals or (moment is not None and begin <= moment < end):
                run.append(item)
            elif moment is None or moment < begin:
                before.append(item)
            else:
                after.append(item)
        return sorted(before, key=_order) + sorted(run, key=_patch_order) + sorted(after, key=_order)

    def _run_by(self, event: Event) -> Event:
        """A record's step was run by whoever started the last command on that host before it."""
        if event.operator:
            return event
        moment = parse_time(event.time)
        who = ""
        for started, _, command in self.commands:
            if moment is not None and started is not None and started.replace(microsecond=0) > moment:
                break
            if _fold(event.host) in {_fold(h) for h in command.hosts} or (
                event.source == "pool roll" and _roll_pool_of(command.command)
            ):
                who = command.operator
        return replace(event, operator=who) if who else event

    def server_report(self, server: _Server) -> ServerReport:
        self.commands.sort(key=_order)
        events = tuple(self._run_by(e) for _, _, e in self._timeline(server))
        record = server.record
        if record is not None:
            events = _settled_by_record(events, record)
        versions: tuple[VersionRow, ...] = ()
        expected = ""
        statement = ""
        outcome = "failed" if any(e.ok is False for e in events) else "ok"
        if record is not None:
            plan = record.get("plan")
            options = plan.get("options") if isinstance(plan, Mapping) else None
            expected = _text(options.get("expect_version")) if isinstance(options, Mapping) else ""
            before = record.get("versions_before")
            after = record.get("versions_after")
            before = before if isinstance(before, Mapping) else {}
            after = after if isinstance(after, Mapping) else {}
            versions = tuple(
                VersionRow(
                    component=str(name),
                    before=_text(before.get(name)),
                    after=_text(after.get(name)),
                    verified=(_text(after.get(name)) == expected) if expected and name in after else None,
                )
                for name in dict.fromkeys([*before, *after])
            )
            statement = _text(record.get("statement"))
            roll = [e for e in events if e.source == "pool roll"]
            if server.pool and roll and statement:
                statement = (
                    f"when its patch steps ended (the roll of {server.pool} still had it out): {statement}; "
                    f"then the roll: {roll[-1].detail or roll[-1].stage}"
                )
            status = _text(record.get("status"))
            if status != PATCH_DONE:
                outcome = status or "failed"
        return ServerReport(
            host=server.host,
            product=server.product,
            outcome=outcome,
            events=events,
            versions=versions,
            expected_version=expected,
            statement=statement,
        )


def _settled_by_record(events: tuple[Event, ...], record: Mapping[str, Any]) -> tuple[Event, ...]:
    """A call of a patch run whose outcome the log could not know (a restart drops the connection) is
    not a failure when the record shows its step completed after it: the record read the server again
    (a new boot time, every automatic service running). The row keeps its outcome and says why."""
    done = record.get("done")
    completed = {_text(d) for d in done} if isinstance(done, list) else set()
    recorded = [parse_time(e.time) for e in events if e.source == "patch record"]
    begun = min((m for m in recorded if m is not None), default=None)
    if not completed or begun is None:
        return events
    begun = begun.replace(microsecond=0)
    settled = []
    for event in events:
        step = PATCH_STEP_OF_STAGE.get(event.stage, "")
        moment = parse_time(event.time)
        if (
            event.source == "audit log"
            and event.outcome.startswith("unknown")
            and step in completed
            and moment is not None
            and moment >= begun
        ):
            note = f"the patch record's {step} step completed after this call"
            event = replace(event, ok=None, detail="; ".join(x for x in (event.detail, note) if x))
        settled.append(event)
    return tuple(settled)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _roll_ticket(state: Mapping[str, Any]) -> str:
    """The change a roll ran under: ``patch pool`` keeps it in its request."""
    return _text(state.get("change_id")) or _text(_mapping(state.get("request")).get("change_id"))


def _roll_details(state: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The roll as a whole, from its state file: what it was asked, and what it did after the last unit."""
    plan = _mapping(state.get("plan"))
    rows: list[tuple[str, str]] = []
    method = _text(plan.get("method"))
    if method:
        rows.append(
            ("Method", method + (f", one {_text(plan.get('unit'))} at a time" if plan.get("unit") else ""))
        )
    units = plan.get("units")
    if isinstance(units, list) and units:
        shown = []
        for index, unit in enumerate(units, 1):
            unit = _mapping(unit)
            shown.append(f"{index}. {_text(unit.get('servers')) or _text(unit.get('name'))}")
        rows.append(("Units", "; ".join(shown)))
    request = _mapping(state.get("request"))
    if request.get("kind") != "patch-pool":
        return tuple(rows)
    rows.append(
        (
            "Patch",
            f"{_text(request.get('installer'))}, expected version {_text(request.get('expect_version'))}",
        )
    )
    result = _mapping(request.get("database_result"))
    if result:
        rows.append(
            (
                "Database update",
                (f"ok ({_text(result.get('status'))})" if result.get("ok") is True else "FAILED")
                + (f": {_text(result.get('error'))}" if result.get("error") else "")
                + f" (SQL Server {_text(request.get('sql_server'))})",
            )
        )
    elif request.get("database_update") is False:
        rows.append(("Database update", "not requested (--no-database-update)"))
    elif request.get("done") is True:
        rows.append(
            ("Database update", "none recorded: the product has no database step (see the command's result)")
        )
    else:
        rows.append(("Database update", "not reached"))
    checks = request.get("post_checks")
    if isinstance(checks, list):
        rows += [
            (
                f"Post-check {_text(_mapping(c).get('name'))}",
                ("ok" if _mapping(c).get("ok") is True else "FAILED")
                + f": {_text(_mapping(c).get('message'))}",
            )
            for c in checks
        ]
    else:
        rows.append(
            (
                "Post-checks",
                "not in the roll state; with --post-checks each transaction is an audit line (synthetic "
                "transaction) in the first member's timeline",
            )
        )
    return tuple(rows)


def _patch_order(item: tuple[datetime | None, int, Event]) -> tuple[datetime, int, int]:
    """Within a second: the record's step (or the roll's event) first, then the calls made in it."""
    moment, seq, event = item
    if event.source == "patch record":
        slot, call = event.action, 0
    elif event.source == "pool roll":
        action = KEPT_OUT if event.stage == ROLL_STAGES[KEPT_OUT] else event.action
        slot, call = _SLOT_OF_ROLL.get(action, action), 0
    else:
        slot, call = PATCH_STEP_OF_STAGE.get(event.stage, "done"), 1
    rank = SLOTS.index(slot) * 2 + call if slot in SLOTS else 2 * len(SLOTS)
    return ((moment or datetime.min.replace(tzinfo=UTC)).replace(microsecond=0), rank, seq)


def _order(item: tuple[datetime | None, int, Event | CommandRun]) -> tuple[datetime, int]:
    moment, seq, _ = item
    return (moment or datetime.min.replace(tzinfo=UTC), seq)


def _roll_pool_of(command: str) -> str:
    """``pool maintain pool01.contoso.com`` (or ``patch pool ...``) to the pool it rolls; "" otherwise."""
    words = command.split()
    if len(words) == 3 and words[1] in ("maintain", "pool") and words[0] in ("pool", "patch"):
        return words[2]
    return ""


def build_report(
    selection: Selection,
    audit_lines: Iterable[Mapping[str, Any]],
    *,
    patch_records: Sequence[Mapping[str, Any]] = (),
    roll_states: Sequence[Mapping[str, Any]] = (),
    generated: str,
    generated_by: str,
    notes: Sequence[str] = (),
) -> Report:
    """The report of ``selection``: pure, from already-read sources (the CLI reads them).

    A roll state belongs to the change when a command of the change rolled that pool (its intent line
    names it), when the state carries the ticket, or (time window only) when its history falls in the
    window; only the roll's events from the change's first command on are shown.
    """
    builder = _Builder(selection)
    builder.notes.extend(notes)
    builder.audit(audit_lines)
    patched = {_fold(h) for _, _, c in builder.commands if c.command.startswith("patch ") for h in c.hosts}
    patched |= {
        _fold(e.host)
        for s in builder.servers.values()
        for _, _, e in s.events
        if e.action.startswith("patch-")
    }
    seen: set[str] = set()
    for record in patch_records:
        key = json.dumps(
            [_fold(_text(record.get("host"))), record.get("history")], sort_keys=True, default=str
        )
        if key in seen:  # the same run twice (a copy of the record, or the command's --json saved beside it)
            continue
        seen.add(key)
        builder.patch_record(record, patched_in_log=_fold(_text(record.get("host"))) in patched)
    rolled: dict[str, datetime | None] = {}
    for moment, _, command in sorted(builder.commands, key=_order):
        pool = _roll_pool_of(command.command)
        if pool and _fold(pool) not in rolled:
            rolled[_fold(pool)] = moment.replace(microsecond=0) if moment is not None else None
    pools = []
    for state in roll_states:
        pool = _text(state.get("pool"))
        key = _fold(pool)
        ticket = _roll_ticket(state)
        if key in rolled:
            since = rolled[key]
        elif not selection.change_id or ticket == selection.change_id:
            since = None
        else:
            continue
        made = builder.roll(state, since)
        if made is not None:
            pools.append(made)
        work = _mapping(state.get("work"))
        if selection.change_id and ticket and ticket != selection.change_id:
            builder.notes.append(
                f"the roll state of {pool} was started under change {ticket}; this change's rows from it "
                "are those from its first command on"
            )
        for host, record in work.items():
            if not isinstance(record, Mapping):
                continue
            record = {**record, "host": _text(record.get("host")) or str(host)}
            key = json.dumps([_fold(record["host"]), record.get("history")], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            builder.patch_record(
                record, patched_in_log=_fold(record["host"]) in patched, linked=True, pool=pool, since=since
            )
    servers = tuple(
        builder.server_report(s)
        for s in sorted(builder.servers.values(), key=lambda s: _fold(s.host))
        if s.events
    )
    moments = sorted(builder.moments)
    return Report(
        selection=selection.describe(),
        change_id=selection.change_id,
        generated=generated,
        generated_by=generated_by,
        commands=tuple(c for _, _, c in sorted(builder.commands, key=_order)),
        servers=servers,
        pools=tuple(sorted(pools, key=lambda p: _fold(p.pool))),
        notes=tuple(builder.notes),
        started=_iso(moments[0]) if moments else "",
        finished=_iso(moments[-1]) if moments else "",
        operators=tuple(sorted(builder.operators)),
    )
