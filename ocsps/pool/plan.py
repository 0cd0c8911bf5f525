"""Planning a roll through a pool, and the readiness wait between its units: pure functions, no I/O.

A roll takes one unit at a time out of the pool (an upgrade domain on Lync Server 2013, one server on
Skype for Business Server), does the maintenance step, brings it back, and then waits until the pool says
Ready and keeps saying it long enough. Everything here is decided from facts and readings handed in, so
the same functions drive the live roll, ``--what-if`` and the change-board script.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import msgspec

from ocsps.catalog import Catalog, Product, load_catalog
from ocsps.errors import UsageError
from ocsps.pool.facts import Method, PoolFacts, QuorumRule, Readiness, Unit, Verdict, load_pool_facts
from ocsps.pool.model import PoolReadiness, UpgradeDomain

__all__ = [
    "Gate",
    "GateDecision",
    "GateVerdict",
    "RollOptions",
    "RollPlan",
    "RollPlanDocument",
    "RollStep",
    "RollStepDocument",
    "RollUnit",
    "StepSpec",
    "gate_decision",
    "plan_roll",
    "roll_steps",
    "step_from_text",
]


# ---------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class StepSpec:
    """The maintenance done on each drained server: a pause for the operator, or a script run there."""

    kind: str  # "pause" | "script" | "patch" (the update installer ``name``, run by a maintenance hook)
    name: str = ""
    lines: tuple[str, ...] = ()
    sha256: str = field(init=False)
    """The script's digest, shown and saved with it (empty without lines)."""

    def __post_init__(self) -> None:
        if self.kind not in ("pause", "script", "patch"):
            raise UsageError(f"unknown maintenance step {self.kind!r}; choose pause or a script")
        if self.kind == "patch" and not self.name:
            raise UsageError("a patch step names the update installer")
        if self.kind == "script" and not any(line.strip() for line in self.lines):
            raise UsageError(f"the step script {self.name or ''} is empty".replace("  ", " "))
        digest = hashlib.sha256("\n".join(self.lines).encode("utf-8")).hexdigest() if self.lines else ""
        object.__setattr__(self, "sha256", digest)

    def label(self) -> str:
        if self.kind == "patch":
            return f"install the update {self.name}, restart if asked, verify every component"
        return "pause for the operator" if self.kind == "pause" else f"run {self.name or 'the step script'}"

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StepSpec:
        return cls(str(doc["kind"]), str(doc.get("name", "")), tuple(str(x) for x in doc.get("lines", [])))


@dataclass(frozen=True)
class RollOptions:
    """Timings in seconds; defaults come from pools.toml."""

    stable_for: float
    max_busy: int
    busy_interval: float
    ready_poll: float
    wait_time: float
    drain_timeout: float
    service_poll: float
    draining_timeout: float | None = None
    force_failover: bool = False
    step: StepSpec = field(default_factory=lambda: StepSpec("pause"))
    service_deadlines: Mapping[str, float] = field(default_factory=dict)
    """Per-service drain deadlines (method drain), from pools.toml [service_drain]; others: drain_timeout."""
    service_then: Mapping[str, str] = field(default_factory=dict)
    """Per service: "stop" (the roll) or "force-stop" (the service) once its own deadline has passed."""

    def deadline_for(self, service: str) -> tuple[float, str]:
        """(seconds, then) for one service's drain."""
        folded = {k.casefold(): k for k in self.service_deadlines}
        key = folded.get(service.casefold())
        if key is None:
            return self.drain_timeout, "stop"
        return self.service_deadlines[key], self.service_then.get(key, "stop")

    def __post_init__(self) -> None:
        """Every way in (defaults, a saved roll, a library caller) meets the rules of ``parse_timings``."""
        for name in _DURATIONS:
            value = getattr(self, name)
            if value is not None or name != "draining_timeout":
                _check_seconds(name, value, zero=name in _ZERO_ALLOWED)
        _check_max_busy("max_busy", self.max_busy)

    @classmethod
    def parse_timings(cls, labels: Mapping[str, str] | None = None, **raw: object) -> dict[str, Any]:
        """The roll's timing options as an operator gives them, parsed and checked, for ``defaults``.

        The one reading of these options, for the CLI flags and the Ansible module options alike:
        durations as text (``90s``, ``15m``) or seconds, ``max_busy`` a whole number of at least 1;
        ``None`` means not given (the pools.toml default). Every duration is more than 0 and at most
        7 days, except ``stable_for``, which may be 0: the readiness wait then passes on the first Ready.
        A refusal names the option as ``labels`` spells it (default: its field name).
        """
        unknown = sorted(set(raw) - {*_DURATIONS, "max_busy"})
        if unknown:
            raise TypeError(f"not a timing option of a roll: {', '.join(unknown)}")
        names = labels or {}
        parsed: dict[str, Any] = {}
        for key, value in raw.items():
            label = names.get(key, key)
            if value is None:
                parsed[key] = None
            elif key == "max_busy":
                parsed[key] = _check_max_busy(label, _whole(label, value))
            elif isinstance(value, str):
                parsed[key] = _duration_text(label, value, zero=key in _ZERO_ALLOWED)
            else:
                parsed[key] = _check_seconds(label, value, zero=key in _ZERO_ALLOWED)
        return parsed

    @classmethod
    def from_text(
        cls,
        facts: PoolFacts | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        step: StepSpec | None = None,
        force_failover: bool | None = None,
        **raw: object,
    ) -> RollOptions:
        """``defaults`` with the timing options parsed and checked by ``parse_timings``."""
        timings = cls.parse_timings(labels, **raw)
        return cls.defaults(facts, step=step, force_failover=force_failover, **timings)

    @classmethod
    def defaults(cls, facts: PoolFacts | None = None, **changes: Any) -> RollOptions:
        f = facts or load_pool_facts()
        d = f.defaults
        base = cls(
            stable_for=d.stable_for,
            max_busy=d.max_busy,
            busy_interval=d.busy_interval,
            ready_poll=d.ready_poll,
            wait_time=d.failover_wait_time,
            drain_timeout=d.drain_timeout,
            service_poll=d.service_poll,
            service_deadlines={s.service: s.deadline for s in f.service_drain},
            service_then={s.service: s.then for s in f.service_drain},
        )
        return replace(base, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RollOptions:
        return cls(
            stable_for=float(doc["stable_for"]),
            max_busy=int(doc["max_busy"]),
            busy_interval=float(doc["busy_interval"]),
            ready_poll=float(doc["ready_poll"]),
            wait_time=float(doc["wait_time"]),
            drain_timeout=float(doc["drain_timeout"]),
            service_poll=float(doc["service_poll"]),
            draining_timeout=None if doc.get("draining_timeout") is None else float(doc["draining_timeout"]),
            force_failover=bool(doc.get("force_failover", False)),
            step=StepSpec.from_json(doc["step"]),
            service_deadlines={str(k): float(v) for k, v in doc.get("service_deadlines", {}).items()},
            service_then={str(k): str(v) for k, v in doc.get("service_then", {}).items()},
        )


_DURATIONS = (
    "stable_for",
    "busy_interval",
    "ready_poll",
    "wait_time",
    "drain_timeout",
    "service_poll",
    "draining_timeout",
)
_ZERO_ALLOWED = frozenset({"stable_for"})
"""Ready held for 0 seconds is meaningful (pass on the first Ready); a zero poll or deadline is not."""
_MAX_SECONDS = 7 * 24 * 3600
_ZERO_TEXT = re.compile(r"0+(?:\.0+)?|(?=\d)(?:0+h)?(?:0+m)?(?:0+(?:\.0+)?s)?")


def _duration_text(label: str, text: str, *, zero: bool) -> float:
    from ocsps.durations import parse_duration

    if zero and _ZERO_TEXT.fullmatch(text.strip().lower()):
        return 0.0
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise UsageError(f"{label}: {exc.message}", hint=exc.hint) from None


def _check_seconds(label: str, value: object, *, zero: bool) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and (seconds > 0 or (zero and seconds == 0)) and seconds <= _MAX_SECONDS:
            return seconds
    lowest = "0" if zero else "more than 0"
    raise UsageError(f"{label} must be {lowest} and at most 7 days (in seconds), not {value!r}")


def _whole(label: str, value: object) -> object:
    if isinstance(value, str):
        if not re.fullmatch(r"\s*\d+\s*", value):
            raise UsageError(f"{label} must be a whole number, not {value!r}")
        return int(value)
    return value


def _check_max_busy(label: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{label} must be at least 1 (Busy answers that stop the roll), not {value!r}")
    return value


def step_from_text(name: str, text: str, product: Product | None = None) -> StepSpec:
    """A maintenance script, checked before anything is sent: every line must be writable into a script
    (no control characters), and the whole must parse and stay within ``product``'s PowerShell level.

    The server would refuse a broken script only after the server was drained; finding out here costs
    nothing.
    """
    from ocsps.powershell import syntax
    from ocsps.powershell.quote import check_value

    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, 1):
        check_value(line, what=f"{name} line {number}")
    grammars = syntax.RUNTIME_GRAMMARS
    errors = [f for f in syntax.parse(text, grammars=grammars) if f.kind in ("error", "missing")]
    if errors:
        first = errors[0]
        raise UsageError(f"{name} does not parse as PowerShell: line {first.line} near {first.snippet!r}")
    if product is not None:
        newer = syntax.newer_constructs(text, product.powershell, grammars=grammars)
        if newer:
            n = newer[0]
            raise UsageError(
                f"{name} line {n.line}: {n.construct} needs PowerShell {n.min_version}; "
                f"{product.name} servers have {product.powershell}"
            )
    return StepSpec("script", name, tuple(lines))


# ------------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class RollUnit:
    name: str
    servers: tuple[str, ...]


@dataclass(frozen=True)
class RollPlan:
    """Which servers go, in which units, in which order, and the quorum rule that bounds every step."""

    pool: str
    product: str
    method: Method
    unit: Unit
    members: tuple[str, ...]
    units: tuple[RollUnit, ...]
    rule: QuorumRule
    notes: tuple[str, ...] = ()
    readiness: Readiness = Readiness.CMDLET

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(s for u in self.units for s in u.servers)

    @property
    def sha256(self) -> str:
        """The seal of a saved roll: the digest of its document with sorted keys."""
        from ocsps.jsonout import to_builtins

        canonical = json.dumps(to_builtins(RollPlanDocument.of(self)), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RollPlan:
        q = doc["quorum"]
        return cls(
            pool=str(doc["pool"]),
            product=str(doc["product"]),
            method=Method(doc["method"]),
            unit=Unit(doc["unit"]),
            members=tuple(str(m) for m in doc["members"]),
            units=tuple(RollUnit(str(u["name"]), tuple(str(s) for s in u["servers"])) for u in doc["units"]),
            rule=QuorumRule(
                int(q["min_servers"]), int(q["max_servers"]), int(q["must_run"]), q.get("of_first")
            ),
            notes=tuple(str(n) for n in doc.get("notes", [])),
            readiness=Readiness(doc.get("readiness", Readiness.CMDLET.value)),
        )


class RollPlanDocument(msgspec.Struct, omit_defaults=True):
    """A roll plan as it is saved (and sealed) in the state file and shown by ``--what-if``.

    The rule is ``quorum``; ``readiness`` is left out when it is the cmdlet, as plans saved before it
    existed have it, so that their seal still matches.
    """

    pool: str
    product: str
    method: Method
    unit: Unit
    members: tuple[str, ...]
    units: tuple[RollUnit, ...]
    quorum: QuorumRule
    notes: tuple[str, ...]
    readiness: Readiness = Readiness.CMDLET

    @classmethod
    def of(cls, plan: RollPlan) -> RollPlanDocument:
        p = plan
        return cls(p.pool, p.product, p.method, p.unit, p.members, p.units, p.rule, p.notes, p.readiness)


def _natural(text: str) -> list[object]:
    return [int(p) if p.isdigit() else p.casefold() for p in re.split(r"(\d+)", text)]


def _index(members: Sequence[str]) -> dict[str, int]:
    return {m.casefold(): i for i, m in enumerate(members)}


def plan_roll(
    pool: str,
    product: Product,
    members: Sequence[str],
    domains: Sequence[UpgradeDomain] = (),
    *,
    only: Sequence[str] | None = None,
    facts: PoolFacts | None = None,
) -> RollPlan:
    """Units and order for a roll of ``members`` (topology order) through ``pool``.

    ``domains`` are the pool's upgrade domains as the pool reports them (or as a topology file states
    them); a member no domain names becomes a unit of its own. ``only`` narrows the roll to some members;
    quorum is still counted over all of them.
    """
    f = facts or load_pool_facts()
    roll = f.roll_for(product)
    if len({m.casefold() for m in members}) != len(members):
        raise UsageError(f"pool {pool}: a server is listed twice")
    rule = f.quorum_rule(len(members))
    index = _index(members)
    chosen = list(members)
    if only:
        unknown = [s for s in only if s.casefold() not in index]
        if unknown:
            raise UsageError(
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a member of {pool}; "
                f"members: {', '.join(members)}"
            )
        wanted = {s.casefold() for s in only}
        chosen = [m for m in members if m.casefold() in wanted]
    notes: list[str] = []
    grouped: list[tuple[str, list[str]]] = []
    placed: set[str] = set()
    for domain in sorted(domains, key=lambda d: _natural(d.name)):
        servers = [m for m in members if m.casefold() not in placed and domain.contains(m)]
        placed.update(s.casefold() for s in servers)
        if servers:
            grouped.append((domain.name, servers))
    loose = [m for m in members if m.casefold() not in placed]
    if domains and loose:
        notes.append(f"not in any upgrade domain the pool reported: {', '.join(loose)} (each its own unit)")
    if not domains:
        notes.append("upgrade domains unknown: one server per unit")
    grouped += [(m, [m]) for m in loose]
    keep = {c.casefold() for c in chosen}
    units: list[RollUnit] = []
    for name, servers in grouped:
        servers = [s for s in servers if s.casefold() in keep]
        if not servers:
            continue
        if roll.unit is Unit.UPGRADE_DOMAIN:
            units.append(RollUnit(name, tuple(servers)))
        else:
            units += [RollUnit(s, (s,)) for s in servers]
    if roll.unit is Unit.UPGRADE_DOMAIN:
        notes.append(
            "servers of one upgrade domain go one after another, the readiness wait comes between domains"
        )
    if roll.readiness is Readiness.MEMBERS:
        notes.append(
            f"{product.name} has no pool readiness cmdlet nor Windows Fabric: each server is drained in "
            "turn, and the next goes only once every member's Front End has run for the stability time"
        )
    return RollPlan(
        pool,
        product.id,
        roll.method,
        roll.unit,
        tuple(members),
        tuple(units),
        rule,
        tuple(notes),
        roll.readiness,
    )


# ------------------------------------------------------------------------------------- readiness gate
class GateVerdict(StrEnum):
    PASS = "pass"
    WAIT = "wait"
    STOP = "stop"


@dataclass(frozen=True)
class Gate:
    """One readiness wait: ``stable_for`` seconds of Ready needed, Busy answers so far, Ready since when."""

    stable_for: float
    busy: int = 0
    ready_since: float | None = None
    reads: int = 0


@dataclass(frozen=True)
class GateDecision:
    verdict: GateVerdict
    gate: Gate
    wait: float
    reason: str


def _fmt(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds >= 3600 and seconds % 60 == 0:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h{rest // 60}m" if rest else f"{hours}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.0f}s"


def gate_decision(
    gate: Gate,
    readiness: PoolReadiness,
    now: float,
    options: RollOptions,
    facts: PoolFacts,
    next_servers: Collection[str] = (),
) -> GateDecision:
    """The next move of a readiness wait after one reading taken at ``now`` (a monotonic clock).

    Ready starts (or continues) the stability timer and passes once it has held ``stable_for``; Busy, or
    Ready while the next unit's upgrade domain says it is not ready, restarts the timer and counts as a
    Busy answer, and ``max_busy`` of those stop the roll; InsufficientActiveFrontEnds, or any state
    nobody has documented, stops the roll at once. The number of reads is therefore bounded: a roll
    never waits forever.
    """
    reads = gate.reads + 1
    verdict = facts.verdict(readiness.state)
    blocked = [
        d.name
        for d in {readiness.domain_of(s) for s in next_servers} - {None}
        if d is not None and d.ready is False
    ]
    if verdict is Verdict.READY and blocked:
        verdict = Verdict.BUSY
    if verdict is Verdict.STOP:
        return GateDecision(
            GateVerdict.STOP,
            replace(gate, reads=reads, ready_since=None),
            0.0,
            f"the pool answered {readiness.state!r}: the roll stops",
        )
    if verdict is Verdict.BUSY:
        busy = gate.busy + 1
        what = (
            f"upgrade domain {', '.join(sorted(blocked))} is not ready for upgrade"
            if blocked and facts.verdict(readiness.state) is Verdict.READY
            else f"the pool answered {readiness.state!r}"
        )
        new = replace(gate, busy=busy, ready_since=None, reads=reads)
        if busy >= options.max_busy:
            return GateDecision(
                GateVerdict.STOP, new, 0.0, f"{what} ({busy} of {options.max_busy} times): the roll stops"
            )
        return GateDecision(
            GateVerdict.WAIT,
            new,
            options.busy_interval,
            f"{what} ({busy} of {options.max_busy}); asking again in {_fmt(options.busy_interval)}",
        )
    since = gate.ready_since if gate.ready_since is not None else now
    held = now - since
    new = replace(gate, ready_since=since, reads=reads)
    if held >= gate.stable_for:
        return GateDecision(GateVerdict.PASS, new, 0.0, f"Ready held {_fmt(held)}")
    left = gate.stable_for - held
    return GateDecision(
        GateVerdict.WAIT,
        new,
        min(options.ready_poll, left),
        f"Ready for {_fmt(held)} of {_fmt(gate.stable_for)}",
    )


# -------------------------------------------------------------------------------------- roll as steps
@dataclass(frozen=True)
class RollStep:
    """One step of the whole roll, as ``--what-if`` shows it and the change-board script runs it."""

    kind: str  # fabric | gate | take-down | step | bring-back
    label: str
    action: str
    values: Mapping[str, object]
    server: str | None = None
    unit: str | None = None


class RollStepDocument(msgspec.Struct):
    """One step of the roll as ``--what-if --json`` shows it: a step script's lines are left out of its
    values (the options carry them, with their digest)."""

    kind: str
    label: str
    action: str
    server: str | None
    unit: str | None
    values: dict[str, object]

    @classmethod
    def of(cls, step: RollStep) -> RollStepDocument:
        values = {k: v for k, v in step.values.items() if k != "StepScript"}
        return cls(step.kind, step.label, step.action, step.server, step.unit, values)


def _gate_values(stable: float, options: RollOptions, facts: PoolFacts) -> dict[str, object]:
    return {
        "ReadyState": facts.ready_state,
        "BusyState": facts.busy_state,
        "StableSeconds": round(stable),
        "MaxBusy": options.max_busy,
        "BusyIntervalSeconds": max(1, round(options.busy_interval)),
        "PollSeconds": max(1, round(options.ready_poll)),
    }


def roll_steps(
    plan: RollPlan, options: RollOptions, facts: PoolFacts | None = None, catalog: Catalog | None = None
) -> list[RollStep]:
    """The whole roll in order: fabric check, then per unit a readiness wait and per server take-down,
    maintenance and bring-back, then a last readiness wait."""
    f = facts or load_pool_facts()
    cat = catalog or load_catalog()
    cat.product(plan.product)
    members_gate = plan.readiness is Readiness.MEMBERS
    steps = (
        []
        if members_gate
        else [
            RollStep(
                "fabric",
                f"check the Windows Fabric state of {plan.pool}",
                "pool-fabric",
                {"PoolFqdn": plan.pool},
            )
        ]
    )

    def gate(stable: float, unit: str | None, label: str) -> RollStep:
        if members_gate:  # no readiness cmdlet: the operator checks the members (Lync Server 2010)
            prompt = (
                f"Check that the Front End service runs on every member of {plan.pool} "
                f"({', '.join(plan.members)})" + (f" and has run for {_fmt(stable)}." if stable else ".")
            )
            return RollStep("gate", label, "pool-pause", {"Prompt": prompt}, unit=unit)
        return RollStep("gate", label, "pool-wait-ready", _gate_values(stable, options, f), unit=unit)

    ready = "every member's Front End runs" if members_gate else f"{plan.pool} is Ready"
    for i, unit in enumerate(plan.units):
        stable = 0.0 if i == 0 else options.stable_for
        label = f"wait until {ready}" if i == 0 else f"wait until {ready} and stays so for {_fmt(stable)}"
        steps.append(gate(stable, unit.name, label))
        for server in unit.servers:
            if plan.method is Method.FAILOVER:
                values: dict[str, object] = {
                    "ComputerName": server,
                    "WaitTimeSeconds": round(options.wait_time),
                }
                if options.draining_timeout:
                    values["DrainingTimeoutSeconds"] = round(options.draining_timeout)
                if options.force_failover:
                    values["Force"] = True
                steps.append(
                    RollStep("take-down", f"{server}: fail over", "pool-failover", values, server, unit.name)
                )
            else:
                steps.append(
                    RollStep(
                        "take-down",
                        f"{server}: drain every service gracefully",
                        "pool-drain-server",
                        {"ComputerName": server},
                        server,
                        unit.name,
                    )
                )
            if options.step.kind == "patch":
                steps.append(
                    RollStep(
                        "step",
                        f"{server}: {options.step.label()}",
                        "patch-install",
                        {"InstallerPath": options.step.name},
                        server,
                        unit.name,
                    )
                )
            elif options.step.kind == "pause":
                prompt = f"{server} is out of the pool: do its maintenance now."
                steps.append(
                    RollStep(
                        "step",
                        f"{server}: pause for the operator",
                        "pool-pause",
                        {"Prompt": prompt, "ComputerName": server},
                        server,
                        unit.name,
                    )
                )
            else:
                steps.append(
                    RollStep(
                        "step",
                        f"{server}: {options.step.label()}",
                        "pool-step",
                        {"StepScript": options.step.lines, "StepName": options.step.name},
                        server,
                        unit.name,
                    )
                )
            if plan.method is Method.FAILOVER:
                values = {"ComputerName": server, "WaitTimeSeconds": round(options.wait_time)}
                steps.append(
                    RollStep("bring-back", f"{server}: fail back", "pool-failback", values, server, unit.name)
                )
            else:
                steps.append(
                    RollStep(
                        "bring-back",
                        f"{server}: start every service",
                        "pool-start-server",
                        {"ComputerName": server},
                        server,
                        unit.name,
                    )
                )
    steps.append(
        gate(options.stable_for, None, f"wait until {ready} and stays so for {_fmt(options.stable_for)}")
    )
    return steps
