"""Pool maintenance facts from ``ocsps/catalog/data/pools.toml``, loaded and checked once.

The quorum table, the readiness states, the per-product roll method and the timing defaults are facts an
administrator may need to correct; keeping them in data (checked against the catalog here, at load time)
means a correction is reviewed as data and a typo fails before any server is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from ocsps.catalog import Catalog, CatalogError, Product, load_catalog, read_data
from ocsps.durations import parse_duration
from ocsps.errors import UsageError

__all__ = [
    "Method",
    "PoolDefaults",
    "PoolFacts",
    "ProductRoll",
    "QuorumRule",
    "Readiness",
    "ServiceDrain",
    "Unit",
    "Verdict",
    "load_pool_facts",
    "parse_pool_facts",
]


class Method(StrEnum):
    """How one server leaves and rejoins its pool."""

    DRAIN = "drain"
    FAILOVER = "failover"


class Unit(StrEnum):
    """What is taken out of the pool between two readiness waits."""

    UPGRADE_DOMAIN = "upgrade-domain"
    SERVER = "server"


class Readiness(StrEnum):
    """Where a roll reads whether the pool may lose its next unit."""

    CMDLET = "cmdlet"  # the product's readiness cmdlet (and the Windows Fabric state)
    MEMBERS = "members"  # no such cmdlet (Lync Server 2010): every member's Front End must run


class Verdict(StrEnum):
    """What a PoolUpgradeState value means for a roll."""

    READY = "ready"
    BUSY = "busy"
    STOP = "stop"


@dataclass(frozen=True)
class QuorumRule:
    """For pools of ``min_servers``..``max_servers``: ``must_run`` servers must run, among the first
    ``of_first`` (None: among all) in topology order."""

    min_servers: int
    max_servers: int
    must_run: int
    of_first: int | None = None

    def covers(self, size: int) -> bool:
        return self.min_servers <= size <= self.max_servers

    def describe(self) -> str:
        among = f" of the first {self.of_first}" if self.of_first else ""
        size = (
            str(self.min_servers)
            if self.min_servers == self.max_servers
            else f"{self.min_servers}-{self.max_servers}"
        )
        return f"pools of {size} servers keep {self.must_run}{among} running"


@dataclass(frozen=True)
class PoolDefaults:
    """Timing defaults, in seconds, and the Front End service's short name."""

    stable_for: float
    max_busy: int
    busy_interval: float
    ready_poll: float
    failover_wait_time: float
    drain_timeout: float
    service_poll: float
    call_margin: float
    front_end_service: str


@dataclass(frozen=True)
class ProductRoll:
    product: str
    method: Method
    unit: Unit
    readiness_cmdlet: str  # empty when ``readiness`` is MEMBERS
    readiness: Readiness = Readiness.CMDLET


@dataclass(frozen=True)
class ServiceDrain:
    """One service's own drain deadline and what happens when it passes (pools.toml [service_drain])."""

    service: str
    deadline: float
    then: str  # "stop" | "force-stop"


@dataclass(frozen=True)
class PoolFacts:
    defaults: PoolDefaults
    ready_state: str
    busy_state: str
    verdicts: Mapping[str, Verdict]
    products: Mapping[str, ProductRoll]
    quorum: tuple[QuorumRule, ...]
    missing_replica_patterns: tuple[str, ...]
    recovery: str
    service_drain: tuple[ServiceDrain, ...] = ()

    def drain_rule(self, service: str) -> ServiceDrain | None:
        folded = service.casefold()
        return next((d for d in self.service_drain if d.service.casefold() == folded), None)

    def roll_for(self, product: Product) -> ProductRoll:
        """How ``product`` pools are rolled, or a usage error naming the products that can be."""
        found = self.products.get(product.id)
        if found is None:
            raise UsageError(
                f"{product.name} pools cannot be rolled by ocsps (no upgrade readiness or failover); "
                f"products: {', '.join(self.products)}"
            )
        return found

    def verdict(self, state: str) -> Verdict:
        """Unknown states stop the roll: a value nobody has documented is not a reason to go on."""
        folded = state.strip().casefold()
        for name, verdict in self.verdicts.items():
            if name.casefold() == folded:
                return verdict
        return Verdict.STOP

    def quorum_rule(self, size: int) -> QuorumRule:
        for rule in self.quorum:
            if rule.covers(size):
                return rule
        sizes = ", ".join(
            f"{r.min_servers}" if r.min_servers == r.max_servers else f"{r.min_servers}-{r.max_servers}"
            for r in self.quorum
        )
        raise UsageError(
            f"no quorum rule for a pool of {size} server(s): a rolling maintenance needs a pool of {sizes}"
        )

    def recovery_for(self, pool: str) -> str:
        return self.recovery.replace("{pool}", pool)


def _seconds(raw: Mapping[str, Any], key: str) -> float:
    value = raw.get(key)
    if not isinstance(value, str):
        raise CatalogError(f"pools.toml defaults.{key}: expected a duration such as 20m")
    try:
        return parse_duration(value)
    except UsageError as exc:
        raise CatalogError(f"pools.toml defaults.{key}: {exc.message}") from None


def parse_pool_facts(raw: Mapping[str, Any], catalog: Catalog) -> PoolFacts:
    """Build and cross-check the facts; anything inconsistent is a ``CatalogError`` naming the key."""
    try:
        d = raw["defaults"]
        max_busy = d["max_busy"]
        if isinstance(max_busy, bool) or not isinstance(max_busy, int) or max_busy < 1:
            raise CatalogError("pools.toml defaults.max_busy: expected a whole number of at least 1")
        defaults = PoolDefaults(
            stable_for=_seconds(d, "stable_for"),
            max_busy=max_busy,
            busy_interval=_seconds(d, "busy_interval"),
            ready_poll=_seconds(d, "ready_poll"),
            failover_wait_time=_seconds(d, "failover_wait_time"),
            drain_timeout=_seconds(d, "drain_timeout"),
            service_poll=_seconds(d, "service_poll"),
            call_margin=_seconds(d, "call_margin"),
            front_end_service=str(d["front_end_service"]),
        )
        readiness = raw["readiness"]
        verdicts = {str(k): Verdict(str(v)) for k, v in readiness["states"].items()}
        products = {
            pid: ProductRoll(
                pid,
                Method(spec["method"]),
                Unit(spec["unit"]),
                str(spec.get("readiness_cmdlet", "")),
                Readiness(spec.get("readiness", "cmdlet")),
            )
            for pid, spec in raw["products"].items()
        }
        service_drain = []
        for name, spec in raw.get("service_drain", {}).items():
            then = str(spec.get("then", "stop"))
            if then not in ("stop", "force-stop"):
                raise CatalogError(f"pools.toml service_drain.{name}.then: stop or force-stop")
            service_drain.append(ServiceDrain(str(name), _seconds(spec, "deadline"), then))
        quorum = tuple(
            QuorumRule(
                min_servers=int(q["servers"][0]),
                max_servers=int(q["servers"][1]),
                must_run=int(q["must_run"]),
                of_first=int(q["of_first"]) if "of_first" in q else None,
            )
            for q in raw["quorum"]
        )
        fabric = raw["fabric"]
        facts = PoolFacts(
            defaults=defaults,
            ready_state=str(readiness["ready"]),
            busy_state=str(readiness["busy"]),
            verdicts=verdicts,
            products=products,
            quorum=quorum,
            missing_replica_patterns=tuple(str(p).casefold() for p in fabric["missing_replica_patterns"]),
            recovery=str(fabric["recovery"]),
            service_drain=tuple(service_drain),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CatalogError(f"pools.toml is malformed: {exc.__class__.__name__}: {exc}") from None
    _validate(facts, catalog)
    return facts


def _validate(facts: PoolFacts, catalog: Catalog) -> None:
    problems: list[str] = []
    if facts.verdict(facts.ready_state) is not Verdict.READY:
        problems.append(f"readiness.ready {facts.ready_state!r} is not a 'ready' state")
    if facts.verdict(facts.busy_state) is not Verdict.BUSY:
        problems.append(f"readiness.busy {facts.busy_state!r} is not a 'busy' state")
    try:
        front_end = catalog.service_by_key(facts.defaults.front_end_service)
    except CatalogError:
        problems.append(f"front_end_service {facts.defaults.front_end_service!r} is not in the catalog")
    else:
        missing = [p for p in facts.products if p not in front_end.products]
        problems += [f"front_end_service does not exist on {p}" for p in missing]
    for roll in facts.products.values():
        if roll.product not in catalog.products:
            problems.append(f"products.{roll.product}: unknown product")
            continue
        product = catalog.products[roll.product]
        if roll.readiness is Readiness.MEMBERS:
            if roll.readiness_cmdlet or roll.method is not Method.DRAIN or roll.unit is not Unit.SERVER:
                problems.append(
                    f"products.{roll.product}: readiness 'members' goes with method drain, unit server and "
                    "no readiness_cmdlet"
                )
            needed = ["Stop-CsWindowsService", "Start-CsWindowsService"]
            problems += [
                f"products.{roll.product}: {c} is not listed for it in cmdlets.toml"
                for c in needed
                if catalog.cmdlet_parameters(product, c) is None
            ]
            continue
        needed = ["Get-CsPoolFabricState", roll.readiness_cmdlet]
        needed += (
            ["Invoke-CsComputerFailOver", "Invoke-CsComputerFailBack"]
            if roll.method is Method.FAILOVER
            else ["Stop-CsWindowsService", "Start-CsWindowsService"]
        )
        problems += [
            f"products.{roll.product}: {c} is not listed for it in cmdlets.toml"
            for c in needed
            if catalog.cmdlet_parameters(product, c) is None
        ]
    previous = 1
    for rule in facts.quorum:
        if rule.min_servers != previous + 1 or rule.max_servers < rule.min_servers:
            problems.append(f"quorum rule for {rule.min_servers}-{rule.max_servers}: sizes must follow on")
        if not 1 <= rule.must_run <= (rule.of_first or rule.min_servers):
            problems.append(f"quorum rule for {rule.min_servers}-{rule.max_servers}: must_run out of range")
        if rule.of_first is not None and rule.of_first > rule.min_servers:
            problems.append(f"quorum rule for {rule.min_servers}-{rule.max_servers}: of_first too large")
        previous = rule.max_servers
    if problems:
        raise CatalogError("pools.toml is inconsistent: " + "; ".join(problems))


@cache
def load_pool_facts() -> PoolFacts:
    """The packaged pool facts, checked against the packaged catalog, once per process."""
    return parse_pool_facts(dict(read_data("pools")), load_catalog())
