"""A roll's saved state: where it is, so that ``--resume`` continues instead of starting over.

The file lives next to the audit log, one per pool, and is rewritten (atomically: temporary file, then
rename) after every transition. A server's phase names an *intent* before the remote call
(``taking-down``, ``step-running``, ``returning``) and its result after it, so that after a crash, a
Ctrl-C or a lost connection the resumed roll knows which call may or may not have happened, re-reads the
server, and decides; it never repeats a state-changing call blindly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgspec

from ocsps import __version__
from ocsps.audit import audit_path
from ocsps.errors import UsageError
from ocsps.localfiles import read_journal, write_journal
from ocsps.pool.plan import RollOptions, RollPlan, RollPlanDocument

__all__ = [
    "FORMAT",
    "RollState",
    "RollStateDocument",
    "RollStatus",
    "ServerPhase",
    "load_state",
    "open_saved_roll",
    "save_state",
    "state_document",
    "state_path",
]

FORMAT = "ocsps-pool-roll/1"


class RollStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    PAUSED = "paused"  # waiting for the operator to finish a maintenance step
    STOPPED = "stopped"  # a safety rule stopped it (quorum, Busy, readiness state, fabric)
    TIMED_OUT = "timed-out"
    FAILED = "failed"
    DISCONNECTED = "disconnected"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> int:
        return {
            RollStatus.DONE: 0,
            RollStatus.PAUSED: 0,
            RollStatus.RUNNING: 0,
            RollStatus.STOPPED: 1,
            RollStatus.FAILED: 1,
            RollStatus.TIMED_OUT: 4,
            RollStatus.DISCONNECTED: 3,
            RollStatus.INTERRUPTED: 130,
        }[self]


class ServerPhase(StrEnum):
    PENDING = "pending"
    TAKING_DOWN = "taking-down"
    DOWN = "down"
    AWAITING_OPERATOR = "awaiting-operator"
    STEP_RUNNING = "step-running"
    STEP_DONE = "step-done"
    RETURNING = "returning"
    RETURNED = "returned"

    @property
    def in_flight(self) -> bool:
        """A state-changing call was sent and its outcome was not recorded."""
        return self in (ServerPhase.TAKING_DOWN, ServerPhase.STEP_RUNNING, ServerPhase.RETURNING)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RollState:
    plan: RollPlan
    options: RollOptions
    status: RollStatus = RollStatus.RUNNING
    servers: dict[str, ServerPhase] = field(default_factory=dict)
    gates_passed: list[int] = field(default_factory=list)
    gate_busy: dict[int, int] = field(default_factory=dict)
    reason: str = ""
    history: list[dict[str, str]] = field(default_factory=list)
    started: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    runs: int = 0
    simulation: bool = False
    """The roll ran against the lab: its state never resumes against real servers, nor the reverse."""
    request: dict[str, Any] = field(default_factory=dict)
    """What a roll with a ``patch`` step was asked to do (installer, expected version, databases): a
    resume must be asked the same."""
    work: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per server, the record of the maintenance done on it (a patch record): the same file is the one
    journal of the roll and of each server's patch, so a resume knows the step each server reached."""

    def __post_init__(self) -> None:
        for server in self.plan.servers:
            self.servers.setdefault(server, ServerPhase.PENDING)

    def phase(self, server: str) -> ServerPhase:
        return self.servers.get(server, ServerPhase.PENDING)

    @property
    def finished(self) -> bool:
        return self.status is RollStatus.DONE

    @property
    def kind(self) -> str:
        """``patch-pool`` for a patch roll, empty for a maintenance roll (``ocsps pool maintain``)."""
        return str(self.request.get("kind", ""))

    @property
    def unfinished(self) -> bool:
        """Starting anew would forget what this roll changed. A patch roll is over only once its last
        reading confirmed every member (the databases come after the roll itself)."""
        return not self.request.get("done") if self.request else not self.finished

    def note(self, event: str, message: str, server: str | None = None, stamp: str | None = None) -> None:
        entry = {"time": stamp or _now(), "event": event, "message": message}
        if server:
            entry["server"] = server
        self.history.append(entry)

    def position(self) -> str:
        """Where the roll stands, in words an operator can act on."""
        for server in self.plan.servers:
            phase = self.phase(server)
            if phase is not ServerPhase.RETURNED:
                return f"{server}: {phase.value}"
        return "every server returned"

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, source: str) -> RollState:
        if doc.get("format") != FORMAT:
            raise UsageError(f"{source}: not an ocsps pool roll state file (format {doc.get('format')!r})")
        try:
            plan = RollPlan.from_json(doc["plan"])
            if plan.sha256 != doc.get("plan_sha256"):
                raise UsageError(
                    f"{source}: the saved plan was changed after it was written (sha256 mismatch); "
                    "check the pool and start a new roll"
                )
            state = cls(
                plan=plan,
                options=RollOptions.from_json(doc["options"]),
                status=RollStatus(doc["status"]),
                servers={str(k): ServerPhase(v) for k, v in doc["servers"].items()},
                gates_passed=[int(g) for g in doc.get("gates_passed", [])],
                gate_busy={int(k): int(v) for k, v in doc.get("gate_busy", {}).items()},
                reason=str(doc.get("reason", "")),
                history=[{str(k): str(v) for k, v in h.items()} for h in doc.get("history", [])],
                started=str(doc.get("started", "")),
                updated=str(doc.get("updated", "")),
                runs=int(doc.get("runs", 0)),
                simulation=bool(doc.get("simulation", False)),
                request=dict(doc.get("request", {})),
                work={str(k): dict(v) for k, v in doc.get("work", {}).items()},
            )
        except UsageError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{source}: damaged roll state ({exc.__class__.__name__}: {exc})") from None
        return state


class RollStateDocument(msgspec.Struct, omit_defaults=True):
    """The state file (format ``ocsps-pool-roll/1``), key for key as it has always been written: what
    ``--resume`` and ``ocsps report`` read. ``request`` and ``work`` are left out while empty."""

    format: str
    generated_by: str
    pool: str
    status: RollStatus
    reason: str
    position: str
    plan: RollPlanDocument
    plan_sha256: str
    options: RollOptions
    servers: dict[str, ServerPhase]
    gates_passed: list[int]
    gate_busy: dict[str, int]
    started: str
    updated: str
    runs: int
    simulation: bool
    history: list[dict[str, str]]
    request: dict[str, Any] = {}
    work: dict[str, dict[str, Any]] = {}

    @classmethod
    def of(cls, state: RollState) -> RollStateDocument:
        return cls(
            format=FORMAT,
            generated_by=f"ocsps {__version__}",
            pool=state.plan.pool,
            status=state.status,
            reason=state.reason,
            position=state.position(),
            plan=RollPlanDocument.of(state.plan),
            plan_sha256=state.plan.sha256,
            options=state.options,
            servers=state.servers,
            gates_passed=state.gates_passed,
            gate_busy={str(k): v for k, v in state.gate_busy.items()},
            started=state.started,
            updated=state.updated,
            runs=state.runs,
            simulation=state.simulation,
            history=state.history,
            request=state.request,
            work=state.work,
        )


def state_path(pool: str, env: Mapping[str, str] | None = None, *, simulation: bool = False) -> Path:
    """``pool-roll-<pool>.json`` in the audit log's directory; ``pool-roll-lab-<pool>.json`` for the lab.

    A lab pool may bear the name of a real one (``pool01.contoso.com``): separate files keep a rehearsal's
    saved roll from ever being resumed against production.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", pool.strip().casefold())[:120] or "pool"
    kind = "pool-roll-lab" if simulation else "pool-roll"
    return audit_path(env).parent / f"{kind}-{safe}.json"


def save_state(path: Path, state: RollState) -> None:
    state.updated = _now()
    write_journal(path, state_document(state))


def state_document(state: RollState) -> dict[str, Any]:
    """The state file's document, as plain JSON values."""
    from ocsps.jsonout import to_builtins

    doc: dict[str, Any] = to_builtins(RollStateDocument.of(state))
    return doc


def load_state(path: Path) -> RollState:
    return RollState.from_json(read_journal(path, what="roll state", saved="saved roll"), source=str(path))


_KIND_NAMES = {"": "maintenance roll", "patch-pool": "patch roll"}


def open_saved_roll(
    path: Path, pool: str, *, resume: bool, simulation: bool, kind: str = "", resume_hint: str = "--resume"
) -> RollState | None:
    """The saved roll to continue, or None to plan a new one; checked before any connection.

    A resume must find a roll of the same pool, run the same way (lab or real servers: a rehearsal never
    resumes against production) and of the same kind. A new roll is refused while an unfinished one is
    saved: it would forget which servers the first left out of the pool.
    """
    if resume:
        saved = load_state(path)
        if saved.plan.pool.casefold() != pool.casefold():
            raise UsageError(f"{path} holds a roll of {saved.plan.pool}, not {pool}")
        if saved.simulation != simulation:
            ran, here = ("the lab", "real servers") if saved.simulation else ("real servers", "the lab")
            raise UsageError(
                f"{path} holds a roll that ran against {ran}; it cannot be resumed against {here}"
            )
        if saved.kind != kind:
            found, asked = (_KIND_NAMES.get(k, k) for k in (saved.kind, kind))
            raise UsageError(f"{path} holds a {found} of {pool}, not a {asked}: resume it as it was started")
        return saved
    if path.exists():
        previous = load_state(path)
        if previous.unfinished:
            raise UsageError(
                f"an unfinished roll of {pool} is saved in {path} ({previous.status.value}, at "
                f"{previous.position()}); continue it with {resume_hint}, or delete that file once the pool "
                "has been checked"
            )
    return None
