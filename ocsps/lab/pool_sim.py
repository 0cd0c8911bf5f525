"""Pool-level simulation: upgrade domains, readiness, fabric state, computer failover and failback.

A model, not a copy: readiness is computed from the members' actual services (a pool that could not lose
one more server answers InsufficientActiveFrontEnds, the lab's own quorum table in
``ocsps/lab/facts/quorum.toml`` deciding, never ocsps's), a server that has just come back makes the pool
answer Busy for ``busy_polls`` readings, failover refuses to break quorum unless forced and leaves the
server's services stopped and Disabled until failback, and the fabric reports whatever
``missing_replicas`` the topology declares. Topology keys
(under ``[[pools]]``)::

    fqdn, site, product
    upgrade_domains = { UpgradeDomain1 = ["fe01..."], ... }   # default: one server per domain
    busy_polls = 0          # Busy readings after each server comes back
    missing_replicas = []   # routing groups the fabric reports as missing replicas
    failover_seconds = 0    # how long a failover takes (a real wait: lets a test cut it short)
    test_users = []         # SIP addresses of the health-monitoring test users (see ocsps.lab.synthetic_sim)

Field names the real cmdlets use beyond PoolUpgradeState are not confirmed; the lab answers in the shape
ocsps's templates send, which is what the roll reads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocsps.catalog import Product
from ocsps.errors import UsageError
from ocsps.lab.estate import RUNNING, STOPPED, LabError, SimServer, SimService
from ocsps.lab.facts import load_lab_facts

if TYPE_CHECKING:
    from ocsps.lab.wsman import PipelineSink

__all__ = ["POOL_KEYS", "PoolSim", "SimPool", "parse_pools", "pool_handlers"]

POOL_KEYS = {
    "fqdn",
    "site",
    "product",
    "upgrade_domains",
    "busy_polls",
    "missing_replicas",
    "failover_seconds",
    "test_users",
}

Handler = Callable[[SimServer, Mapping[str, Any], "PipelineSink"], None]


@dataclass
class SimPool:
    """One Front End pool of the lab and what has happened to it."""

    fqdn: str
    product: Product
    members: list[SimServer]
    upgrade_domains: list[tuple[str, list[str]]]
    site: str = ""
    busy_polls: int = 0
    missing_replicas: list[str] = field(default_factory=list)
    failover_seconds: float = 0.0
    test_users: list[str] = field(default_factory=list)
    failed_over: set[str] = field(default_factory=set)
    startup_before: dict[str, dict[str, str]] = field(default_factory=dict)  # fqdn -> service start-up types
    busy_left: int = 0
    readings: int = 0
    operations: list[str] = field(default_factory=list)
    steps: list[tuple[str, str, bool]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def member(self, fqdn: str) -> SimServer | None:
        return next((m for m in self.members if m.fqdn.casefold() == fqdn.casefold()), None)

    def is_up(self, server: SimServer) -> bool:
        front_end = _front_end(server)
        return front_end is not None and front_end.status == RUNNING and server.fqdn not in self.failed_over

    def down(self) -> list[str]:
        return [m.fqdn for m in self.members if not self.is_up(m)]

    def quorum_after(self, leaving: str | None = None) -> tuple[bool, str]:
        """Whether the pool keeps quorum once ``leaving`` (if any) is down too, and a reason in words."""
        names = [m.fqdn for m in self.members]
        rule = load_lab_facts().pool_rule(len(names))
        if rule is None:
            return False, f"no documented quorum rule for a pool of {len(names)} servers"
        down = {n.casefold() for n in self.down()} | ({leaving.casefold()} if leaving else set())
        among = f" of the first {rule.first}" if rule.first else ""
        if rule.enough(names, down):
            return True, f"a pool of {len(names)} keeps {rule.up}{among} running"
        return False, f"a pool of {len(names)} must keep {rule.up}{among} running"

    def reading(self) -> str:
        """The PoolUpgradeState a member would report now; a Busy reading is used up."""
        facts = load_lab_facts()
        with self.lock:
            self.readings += 1
            if self._spare() < 1:
                return facts.insufficient
            if self.busy_left > 0:
                self.busy_left -= 1
                return facts.busy
            return facts.ready

    def _spare(self) -> int:
        """How many more counted servers could go down now (negative: quorum lost; no rule: -1)."""
        rule = load_lab_facts().pool_rule(len(self.members))
        if rule is None:
            return -1
        counted = self.members[: rule.first] if rule.first else self.members
        return sum(1 for m in counted if self.is_up(m)) - rule.up

    def came_back(self) -> None:
        with self.lock:
            self.busy_left = self.busy_polls


def _front_end(server: SimServer) -> SimService | None:
    name = load_lab_facts().front_end_service.casefold()
    return next((s for s in server.services.values() if name in (s.name.casefold(), s.key.casefold())), None)


# ------------------------------------------------------------------------------------------ topology
def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a table")
    return value


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected a list of text values")
    return list(value)


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise UsageError(f"{where}: expected a number of seconds from 0 to 3600")
    return float(value)


def parse_pools(entries: object, servers: list[SimServer], source: str) -> dict[str, SimPool]:
    """``[[pools]]`` entries plus every pool the servers name; keys are checked, members must exist."""
    if not isinstance(entries, list):
        raise UsageError(f"{source}: [[pools]] must be an array of tables")
    by_pool: dict[str, list[SimServer]] = {}
    for server in servers:
        if server.pool:
            by_pool.setdefault(server.pool.casefold(), []).append(server)
    pools: dict[str, SimPool] = {}
    for index, raw in enumerate(entries, 1):
        where = f"{source} pool #{index}"
        entry = _table(raw, where)
        unknown = sorted(set(entry) - POOL_KEYS)
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(POOL_KEYS))}")
        fqdn = entry.get("fqdn")
        if not isinstance(fqdn, str) or not fqdn.strip():
            raise UsageError(f"{where}: needs fqdn")
        where = f"{where} ({fqdn})"
        if fqdn.casefold() in pools:
            raise UsageError(f"{where}: duplicate pool")
        members = by_pool.get(fqdn.casefold(), [])
        pools[fqdn.casefold()] = _pool(fqdn, entry, members, where)
    for key, members in by_pool.items():
        if key not in pools:
            pools[key] = _pool(members[0].pool, {}, members, f"{source} pool {members[0].pool}")
    return pools


def _pool(fqdn: str, entry: dict[str, Any], members: list[SimServer], where: str) -> SimPool:
    products = {m.product.id for m in members}
    if len(products) > 1:
        raise UsageError(f"{where}: members run different products ({', '.join(sorted(products))})")
    if "product" in entry and members and str(entry["product"]) not in products:
        raise UsageError(f"{where}: product {entry['product']} does not match its members ({products.pop()})")
    if not members:
        raise UsageError(f"{where}: no [[servers]] entry names this pool")
    names = {m.fqdn.casefold(): m.fqdn for m in members}
    domains: list[tuple[str, list[str]]] = []
    if "upgrade_domains" in entry:
        placed: set[str] = set()
        for name, listed in _table(entry["upgrade_domains"], f"{where} upgrade_domains").items():
            servers = _strings(listed, f"{where} upgrade_domains.{name}")
            for server in servers:
                folded = server.casefold()
                if folded not in names:
                    raise UsageError(f"{where}: upgrade domain {name} names {server}, which is not a member")
                if folded in placed:
                    raise UsageError(f"{where}: {server} is in two upgrade domains")
                placed.add(folded)
            domains.append((str(name), [names[s.casefold()] for s in servers]))
        missing = [m.fqdn for m in members if m.fqdn.casefold() not in placed]
        if missing:
            raise UsageError(f"{where}: not in any upgrade domain: {', '.join(missing)}")
    else:
        domains = [(f"UpgradeDomain{i}", [m.fqdn]) for i, m in enumerate(members, 1)]
    busy = entry.get("busy_polls", 0)
    if isinstance(busy, bool) or not isinstance(busy, int) or busy < 0:
        raise UsageError(f"{where}: busy_polls must be a whole number of at least 0")
    return SimPool(
        fqdn=fqdn,
        product=members[0].product,
        members=members,
        upgrade_domains=domains,
        site=str(entry.get("site", "")),
        busy_polls=busy,
        missing_replicas=_strings(entry.get("missing_replicas", []), f"{where} missing_replicas"),
        failover_seconds=_seconds(entry.get("failover_seconds", 0), f"{where} failover_seconds"),
        test_users=_strings(entry.get("test_users", []), f"{where} test_users"),
    )


# ------------------------------------------------------------------------------------------ handlers
def _view(server: SimServer, svc: SimService) -> dict[str, Any]:
    return {
        "ComputerName": server.fqdn,
        "Name": svc.name,
        "DisplayName": svc.display_name,
        "Status": svc.status,
        "RoleName": ",".join(r for r in svc.roles if r != "All"),
        "ActivityLevel": "",
    }


class PoolSim:
    """The handlers for ocsps's pool templates, over the pools of one topology."""

    def __init__(self, pools: Mapping[str, SimPool], servers: Sequence[SimServer]) -> None:
        self.pools = pools  # by casefolded pool FQDN
        self.servers = servers

    def handlers(self) -> dict[str, Handler]:
        return {
            "pool-readiness": self._readiness,
            "pool-fabric": self._fabric,
            "pool-drain-server": self._drain_server,
            "pool-start-server": self._start_server,
            "pool-failover": self._failover,
            "pool-failback": self._failback,
            "pool-step": self._step,
        }

    def _pool_of(self, server: SimServer) -> SimPool:
        pool = self.pools.get(server.pool.casefold()) if server.pool else None
        if pool is None:
            raise LabError(
                f"{server.fqdn} is not a member of a Front End pool.",
                category="InvalidOperation",
                error_id="NotInPool",
            )
        return pool

    def _target(self, params: Mapping[str, Any]) -> tuple[SimServer, SimPool]:
        name = str(params.get("ComputerName") or "")
        server = next((s for s in self.servers if s.fqdn.casefold() == name.casefold()), None)
        if server is None:
            raise LabError(
                f"Cannot connect to computer '{name}'.",
                category="ObjectNotFound",
                error_id="ComputerNotFound",
            )
        return server, self._pool_of(server)

    @staticmethod
    def _needs(server: SimServer, cmdlet: str, message: str) -> None:
        if server.catalog.cmdlet_parameters(server.product, cmdlet) is None:
            raise LabError(f"{server.product.name} {message}", error_id="RuntimeException")

    def _readiness(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        if sim.product.id not in load_lab_facts().readiness_products:
            raise LabError(
                f"{sim.product.name} has no upgrade domains: pool upgrade readiness arrived with "
                "Lync Server 2013.",
                error_id="RuntimeException",
            )
        pool = self._pool_of(sim)
        front_end = _front_end(sim)
        if front_end is None or front_end.status != RUNNING:
            raise LabError(
                "The Front-End service is not running on this computer: the pool state cannot be read here.",
                error_id="FrontEndNotRunning",
            )
        state = pool.reading()
        ready = _is_ready(state)
        with pool.lock:
            active = [m for m in pool.members if pool.is_up(m)]
            out.write(
                {
                    "Kind": "pool",
                    "ComputerName": sim.reported_name,
                    "PoolFqdn": pool.fqdn,
                    "PoolUpgradeState": state,
                    "TotalFrontEnds": str(len(pool.members)),
                    "TotalActiveFrontEnds": str(len(active)),
                }
            )
            for name, servers in pool.upgrade_domains:
                out.write(
                    {
                        "Kind": "upgrade-domain",
                        "ComputerName": sim.reported_name,
                        "UpgradeDomain": name,
                        "FrontEnds": ",".join(servers),
                        "IsReadyForUpgrade": "True" if ready else "False",
                    }
                )

    def _fabric(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        self._needs(sim, "Get-CsPoolFabricState", "has no Windows Fabric.")
        wanted = str(params.get("PoolFqdn") or "")
        pool = self.pools.get(wanted.casefold())
        if pool is None:
            raise LabError(f"Pool '{wanted}' was not found in the topology.", error_id="PoolNotFound")
        with pool.lock:
            for member in pool.members:
                text = f"Front End {member.fqdn}: {'Up' if pool.is_up(member) else 'Down'}"
                out.write(
                    {"Kind": "state", "ComputerName": sim.reported_name, "PoolFqdn": pool.fqdn, "Text": text}
                )
            for group in pool.missing_replicas:
                text = f"Routing group {group}: missing replicas (no secondary replica is up)."
                warning = {"Kind": "warning", "PoolFqdn": pool.fqdn, "Text": text}
                out.write({**warning, "ComputerName": sim.reported_name})

    def _drain_server(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        target, pool = self._target(params)
        for svc in list(target.services.values()):
            target.stop(svc.name, graceful=True)
        pool.operations.append(f"drain {target.fqdn}")
        if not params.get("NoWait"):
            while any(s.status != STOPPED for s in target.services.values()) and not out.wait_cancelled(0.05):
                target.tick()
        for svc in target.list_services():
            out.write(_view(target, svc))

    def _start_server(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        target, pool = self._target(params)
        for svc in list(target.services.values()):
            target.start(svc.name)
        pool.operations.append(f"start {target.fqdn}")
        pool.came_back()
        for svc in target.list_services():
            out.write(_view(target, svc))

    def _failover(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        self._needs(
            sim,
            "Invoke-CsComputerFailOver",
            "has no computer failover: Invoke-CsComputerFailOver arrived with "
            "Skype for Business Server 2015.",
        )
        target, pool = self._target(params)
        with pool.lock:
            if target.fqdn in pool.failed_over:
                raise LabError(f"{target.fqdn} is already failed over.", error_id="AlreadyFailedOver")
            if not params.get("Force"):
                allowed, reason = pool.quorum_after(target.fqdn)
                if not allowed:
                    raise LabError(
                        f"Cannot fail over {target.fqdn}: the pool does not have the capacity to absorb its "
                        f"workload ({reason}).",
                        error_id="InsufficientPoolCapacity",
                    )
        if pool.failover_seconds and out.wait_cancelled(pool.failover_seconds):
            return
        with pool.lock:
            pool.startup_before[target.fqdn] = {s.name: s.startup for s in target.services.values()}
            for svc in list(target.services.values()):
                target.stop(svc.name, force=True)
                svc.startup = "Disabled"  # failover disables them, so that a reboot does not start them
            pool.failed_over.add(target.fqdn)
            pool.operations.append(f"failover {target.fqdn}")
        out.write({"ComputerName": target.fqdn, "Operation": "FailOver", "Invoked": True})

    def _failback(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        self._needs(
            sim,
            "Invoke-CsComputerFailBack",
            "has no computer failback: Invoke-CsComputerFailBack arrived with "
            "Skype for Business Server 2015.",
        )
        target, pool = self._target(params)
        with pool.lock:
            before = pool.startup_before.pop(target.fqdn, {})
            for svc in list(target.services.values()):
                svc.startup = before.get(svc.name, svc.startup)
            for svc in list(target.services.values()):
                target.start(svc.name)
            pool.failed_over.discard(target.fqdn)
            pool.operations.append(f"failback {target.fqdn}")
        pool.came_back()
        out.write({"ComputerName": target.fqdn, "Operation": "FailBack", "Invoked": True})

    def _step(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        """Record the step: ``throw '...'`` fails it, ``Write-Output '...'`` is echoed, nothing else runs."""
        raw = params.get("StepScript")
        lines = [str(x) for x in (raw if isinstance(raw, list | tuple) else [raw] if raw else [])]
        name = str(params.get("StepName") or "")
        pool = self._pool_of(sim)
        pool.steps.append((sim.fqdn, name, pool.is_up(sim)))
        echoed: list[str] = []
        for line in lines:
            thrown = re.match(r"\s*throw\s+['\"](.*)['\"]\s*$", line, re.IGNORECASE)
            if thrown:
                raise LabError(thrown.group(1), error_id="RuntimeException")
            said = re.match(r"\s*Write-Output\s+['\"](.*)['\"]\s*$", line, re.IGNORECASE)
            if said:
                echoed.append(said.group(1))
        out.write(
            {"ComputerName": sim.reported_name, "StepName": name, "Ran": True, "Output": "\n".join(echoed)}
        )


def _is_ready(state: str) -> bool:
    return state == load_lab_facts().ready


def pool_handlers(pools: Mapping[str, SimPool], servers: Sequence[SimServer]) -> dict[str, Handler]:
    """The handlers the lab engine adds for the pool templates."""
    return PoolSim(pools, servers).handlers()
