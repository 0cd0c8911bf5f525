"""What a pool reports, as frozen dataclasses, and the pure parsers that read it.

The readiness and fabric templates send objects with stable property names (``Kind`` tells them apart);
these parsers read them the way ``ocsps.results`` does: case-insensitive names, every shape that
``prop`` understands, unknown fields kept, a missing required field a ``ParseError`` naming it. Field
names of the real cmdlets beyond PoolUpgradeState are not confirmed (see pools.toml), which is why the
template, not this module, adapts to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from ocsps.results import ServiceState, ServiceStatus
from ocsps.results.base import (
    ParseError,
    PropertyReader,
    host_name,
    no_extra,
    prop,
    to_text,
)

__all__ = [
    "Condition",
    "FabricState",
    "FabricStateDocument",
    "MemberState",
    "MemberStateDocument",
    "PoolReadiness",
    "PoolReadinessDocument",
    "ServiceLine",
    "StepOutcome",
    "Transition",
    "UpgradeDomain",
    "parse_fabric",
    "parse_readiness",
    "parse_step_outcome",
    "parse_transition",
]

READINESS = "PoolReadiness"
FABRIC = "FabricState"


@dataclass(frozen=True)
class UpgradeDomain:
    name: str
    servers: tuple[str, ...]
    ready: bool | None = None

    def contains(self, server: str) -> bool:
        folded = server.casefold()
        return any(_same_host(folded, s) for s in self.servers)


@dataclass(frozen=True)
class PoolReadiness:
    """Get-CsPoolUpgradeReadinessState (or Get-CsUpgradeDomainInfo) as read on ``computer``."""

    state: str
    computer: str | None = None
    pool: str | None = None
    total_front_ends: int | None = None
    active_front_ends: int | None = None
    domains: tuple[UpgradeDomain, ...] = ()
    extra: Mapping[str, object] = field(default_factory=no_extra, hash=False)

    def domain_of(self, server: str) -> UpgradeDomain | None:
        return next((d for d in self.domains if d.contains(server)), None)


class PoolReadinessDocument(msgspec.Struct):
    """A readiness reading as ``pool status`` and the pool modules write it: the domains are
    ``upgrade_domains``, the names the cmdlet's own output uses."""

    state: str
    computer: str | None
    pool: str | None
    total_front_ends: int | None
    active_front_ends: int | None
    upgrade_domains: tuple[UpgradeDomain, ...]
    extra: Mapping[str, object]

    @classmethod
    def of(cls, readiness: PoolReadiness) -> PoolReadinessDocument:
        r = readiness
        return cls(r.state, r.computer, r.pool, r.total_front_ends, r.active_front_ends, r.domains, r.extra)


def _same_host(folded: str, other: str) -> bool:
    """A domain may list short names or FQDNs; the short name of an FQDN matches its first label."""
    theirs = other.strip().casefold()
    return theirs == folded or theirs == folded.split(".")[0] or folded == theirs.split(".")[0]


def _int(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    return int(text) if re.fullmatch(r"\s*\d+\s*", text) else None


def _flag(text: str | None) -> bool | None:
    folded = (text or "").strip().casefold()
    return True if folded == "true" else False if folded == "false" else None


def parse_readiness(objects: Sequence[object]) -> PoolReadiness:
    """One 'pool' object and its 'upgrade-domain' objects, in the order the template sends them."""
    pools = [o for o in objects if (to_text(prop(o, "Kind")) or "pool").casefold() == "pool"]
    if not pools:
        raise ParseError(READINESS, "Kind", "no 'pool' object was returned")
    reader = PropertyReader(pools[0], READINESS)
    reader.text("Kind")
    state = reader.required_text("PoolUpgradeState")
    domains: list[UpgradeDomain] = []
    for obj in objects:
        if (to_text(prop(obj, "Kind")) or "").casefold() != "upgrade-domain":
            continue
        d = PropertyReader(obj, READINESS)
        servers = d.text("FrontEnds", "Frontends") or ""
        domains.append(
            UpgradeDomain(
                name=d.required_text("UpgradeDomain", "Name"),
                servers=tuple(s.strip() for s in re.split(r"[,;\s]+", servers) if s.strip()),
                ready=_flag(d.text("IsReadyForUpgrade")),
            )
        )
    return PoolReadiness(
        state=state,
        computer=host_name(reader.text("ComputerName")),
        pool=(reader.text("PoolFqdn") or "").strip() or None,
        total_front_ends=_int(reader.text("TotalFrontEnds", "TotalFrontends")),
        active_front_ends=_int(reader.text("TotalActiveFrontEnds", "TotalActiveFrontends")),
        domains=tuple(domains),
        extra=reader.extra(),
    )


@dataclass(frozen=True)
class FabricState:
    """Get-CsPoolFabricState's text and warnings; ``missing`` holds the lines that name missing replicas."""

    pool: str
    computer: str | None
    lines: tuple[str, ...]
    warnings: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.missing


class FabricStateDocument(msgspec.Struct):
    """The fabric state with its verdict (``healthy``) and the missing-replica lines first."""

    pool: str
    computer: str | None
    healthy: bool
    missing_replicas: tuple[str, ...]
    warnings: tuple[str, ...]
    lines: tuple[str, ...]

    @classmethod
    def of(cls, fabric: FabricState) -> FabricStateDocument:
        f = fabric
        return cls(f.pool, f.computer, f.healthy, f.missing, f.warnings, f.lines)


def parse_fabric(objects: Sequence[object], pool: str, patterns: Iterable[str]) -> FabricState:
    """Sort lines from warnings and call out every one that matches a missing-replica pattern."""
    lines: list[str] = []
    warnings: list[str] = []
    computer: str | None = None
    for obj in objects:
        reader = PropertyReader(obj, FABRIC)
        text = reader.text("Text") or ""
        computer = computer or host_name(reader.text("ComputerName"))
        kind = (reader.text("Kind") or "state").casefold()
        (warnings if kind == "warning" else lines).append(text)
    folded = [p.casefold() for p in patterns]
    missing = tuple(t for t in [*warnings, *lines] if any(p in t.casefold() for p in folded))
    return FabricState(pool, computer, tuple(lines), tuple(warnings), missing)


class Condition(StrEnum):
    """A member as the roll sees it: only UP counts as serving users."""

    UP = "up"
    DOWN = "down"
    CHANGING = "changing"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class MemberState:
    """One pool member's services, reduced to what a roll decides on."""

    host: str
    front_end: ServiceState | None
    services: tuple[ServiceStatus, ...] = ()
    error: str = ""

    @property
    def condition(self) -> Condition:
        if self.error:
            return Condition.UNREACHABLE
        if self.front_end is ServiceState.RUNNING:
            return Condition.UP
        if self.front_end is ServiceState.STOPPED:
            return Condition.DOWN
        return Condition.CHANGING

    @property
    def all_stopped(self) -> bool:
        """A graceful drain is over once every service has stopped."""
        return not self.error and bool(self.services) and all(s.is_stopped for s in self.services)

    @property
    def draining(self) -> bool:
        return any(s.is_paused or s.status is ServiceState.STOP_PENDING for s in self.services)

    @classmethod
    def from_services(cls, host: str, services: Sequence[ServiceStatus], front_end: str) -> MemberState:
        found = next((s for s in services if s.name.casefold() == front_end.casefold()), None)
        return cls(host, found.status if found else None, tuple(services))


class ServiceLine(msgspec.Struct):
    """A member's service as the roll shows it: its name and status, not the whole parsed result."""

    name: str
    status: ServiceState


class MemberStateDocument(msgspec.Struct):
    """A member with the condition the roll decides on (a verdict read when the document is made)."""

    host: str
    condition: Condition
    front_end: ServiceState | None
    services: tuple[ServiceLine, ...]
    error: str

    @classmethod
    def of(cls, member: MemberState) -> MemberStateDocument:
        services = tuple(ServiceLine(s.name, s.status) for s in member.services)
        return cls(member.host, member.condition, member.front_end, services, member.error)


@dataclass(frozen=True)
class Transition:
    """What the failover / failback templates return: whether the cmdlet was called (not under -WhatIf)."""

    computer: str
    operation: str
    invoked: bool


def parse_transition(objects: Sequence[object]) -> Transition:
    if not objects:
        raise ParseError("Transition", None, "no object was returned")
    reader = PropertyReader(objects[-1], "Transition")
    return Transition(
        computer=reader.required_text("ComputerName"),
        operation=reader.required_text("Operation"),
        invoked=bool(reader.boolean("Invoked", required=True)),
    )


@dataclass(frozen=True)
class StepOutcome:
    computer: str
    name: str
    ran: bool
    output: str


def parse_step_outcome(objects: Sequence[object]) -> StepOutcome:
    if not objects:
        raise ParseError("StepOutcome", None, "no object was returned")
    reader = PropertyReader(objects[-1], "StepOutcome")
    return StepOutcome(
        computer=reader.required_text("ComputerName"),
        name=reader.text("StepName") or "",
        ran=bool(reader.boolean("Ran", required=True)),
        output=reader.multiline("Output") or "",
    )
