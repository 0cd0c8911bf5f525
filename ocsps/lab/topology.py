"""Topology files: the simulated estate a lab serves, as TOML an administrator can read and edit.

Schema (every table optional except ``servers``)::

    [lab]            username, password, auth ("ntlm" | "negotiate" | "basic")
    [[sites]]        name
    [[pools]]        fqdn, site, product, upgrade_domains, busy_polls, missing_replicas,
                     failover_seconds (see ocsps.lab.pool_sim)
    [[servers]]      fqdn, product, roles, pool, site, services (short names; default: by role),
                     stopped (short names initially stopped), drain_seconds, in_perfmon_group,
                     activated_roles (OCS role keys), lcscmd_fail_roles, msmq_installed,
                     msmq_ad_integrated, fails_to_stop, stuck_drain, module_loads, powershell,
                     lcscmd_installed (see ocsps.lab.check_sim)
      [[servers.certificates]]      thumbprint, serial, subject, issuer, valid_from_days, valid_to_days,
                                    has_private_key, archived, key_readers (see ocsps.lab.check_sim)
      [servers.certificate_assignments]  Use = thumbprint (Lync / SfB)
      [[servers.events]]            id, minutes_ago, log, level, source, message
      [servers.activity.<SERVICE>]  "Counter Name" = number
      [servers.queues]              "<queue path>" = "None" | "Optional" | "Body"
      [servers.wmi.<Class>]         Property = value
      [servers.faults]              latency_ms, stuck (bool)

Errors name the file, the server and the key, and list what is valid.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ocsps.catalog import Catalog, load_catalog
from ocsps.errors import UsageError
from ocsps.lab.check_sim import CHECK_SERVER_KEYS, apply_check_fields
from ocsps.lab.estate import STOPPED, SimServer, build_service, default_services
from ocsps.lab.pool_sim import SimPool, parse_pools

_SERVER_KEYS = {
    "fqdn",
    "product",
    "roles",
    "pool",
    "site",
    "services",
    "stopped",
    "drain_seconds",
    "in_perfmon_group",
    "activated_roles",
    "lcscmd_fail_roles",
    "msmq_installed",
    "msmq_ad_integrated",
    "fails_to_stop",
    "stuck_drain",
    "activity",
    "queues",
    "wmi",
    "faults",
} | CHECK_SERVER_KEYS  # certificates, events, module_loads, powershell...: see ocsps.lab.check_sim
_TOP_KEYS = {"lab", "sites", "pools", "servers"}
_PRIVACY = {"None", "Optional", "Body"}


@dataclass(frozen=True)
class LabFaults:
    latency_ms: int = 0
    stuck: bool = False


@dataclass
class Topology:
    servers: list[SimServer]
    username: str = "LAB\\admin"
    password: str | None = None
    auth: str = "ntlm"
    faults: Mapping[str, LabFaults] | None = None
    source: str = "default"
    pools: dict[str, SimPool] = field(default_factory=dict)  # by casefolded pool FQDN

    def server(self, fqdn: str) -> SimServer:
        for s in self.servers:
            if s.fqdn.casefold() == fqdn.casefold():
                return s
        raise UsageError(f"the lab topology has no server {fqdn!r}")

    def running(self, service: str | None) -> list[SimServer]:
        """Servers that run ``service`` (by short name), or all servers when None."""
        if service is None:
            return list(self.servers)
        folded = service.casefold()
        return [
            s
            for s in self.servers
            if any(folded in (v.name.casefold(), v.key.casefold()) for v in s.services.values())
        ]


def default_topology_text() -> str:
    return resources.files("ocsps.lab").joinpath("topologies", "default.toml").read_text(encoding="utf-8")


def load_topology(path: Path | None = None, *, clock: Callable[[], float] | None = None) -> Topology:
    if path is None:
        return parse_topology(default_topology_text(), source="default topology", clock=clock)
    from ocsps.localfiles import read_text_bounded

    text = read_text_bounded(path, what="topology", encoding="utf-8")
    return parse_topology(text, source=str(path), clock=clock)


def parse_topology(
    text: str, *, source: str, clock: Callable[[], float] | None = None, catalog: Catalog | None = None
) -> Topology:
    cat = catalog or load_catalog()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML ({exc})") from None
    _known(raw, _TOP_KEYS, source)
    if not isinstance(raw.get("servers"), list) or not raw["servers"]:
        raise UsageError(f"{source}: needs at least one [[servers]] entry")
    lab = _table(raw.get("lab", {}), f"{source} [lab]")
    _known(lab, {"username", "password", "auth"}, f"{source} [lab]")
    auth = str(lab.get("auth", "ntlm"))
    if auth not in ("ntlm", "negotiate", "basic"):
        raise UsageError(f"{source} [lab]: auth must be ntlm, negotiate or basic")
    servers: list[SimServer] = []
    faults: dict[str, LabFaults] = {}
    seen: set[str] = set()
    for index, entry in enumerate(raw["servers"], 1):
        where = f"{source} server #{index}"
        entry = _table(entry, where)
        _known(entry, _SERVER_KEYS, where)
        server = _server(cat, entry, where, clock)
        apply_check_fields(cat, server, entry, f"{where} ({server.fqdn})")
        if server.fqdn.casefold() in seen:
            raise UsageError(f"{where}: duplicate server {server.fqdn}")
        seen.add(server.fqdn.casefold())
        servers.append(server)
        f = _table(entry.get("faults", {}), f"{where} faults")
        _known(f, {"latency_ms", "stuck"}, f"{where} faults")
        latency = int(_number(f.get("latency_ms", 0), f"{where} faults.latency_ms"))
        faults[server.fqdn] = LabFaults(latency, _flag(f.get("stuck", False), f"{where} faults.stuck"))
    return Topology(
        servers=servers,
        username=str(lab.get("username", "LAB\\admin")),
        password=str(lab["password"]) if "password" in lab else None,
        auth=auth,
        faults=faults,
        source=source,
        pools=parse_pools(raw.get("pools", []), servers, source),
    )


def _server(cat: Catalog, entry: dict[str, Any], where: str, clock: Callable[[], float] | None) -> SimServer:
    from ocsps.hostname import check_host

    fqdn = check_host(entry.get("fqdn"), f"{where} fqdn")
    where = f"{where} ({fqdn})"
    product = cat.product(str(entry.get("product", "")))
    roles = tuple(str(r) for r in _list(entry.get("roles", []), f"{where} roles"))
    names = _list(entry.get("services"), f"{where} services") if "services" in entry else None
    chosen = (
        [cat.find_service(product, str(n)) for n in names]
        if names is not None
        else default_services(cat, product, roles)
    )
    activity = _table(entry.get("activity", {}), f"{where} activity")
    stopped = {str(s).casefold() for s in _list(entry.get("stopped", []), f"{where} stopped")}
    services = {}
    for svc in chosen:
        counters = _table(activity.get(svc.name or svc.key, {}), f"{where} activity.{svc.name}")
        values = {str(k): _number(v, f"{where} activity.{svc.name}.{k}") for k, v in counters.items()}
        sim = build_service(cat, product, svc, activity=values)
        if sim.name.casefold() in stopped or svc.key.casefold() in stopped:
            sim.status = STOPPED
        sim.fails_to_stop = sim.name in _list(entry.get("fails_to_stop", []), f"{where} fails_to_stop")
        sim.stuck_drain = sim.name in _list(entry.get("stuck_drain", []), f"{where} stuck_drain")
        services[sim.name] = sim
    unknown_activity = (
        set(activity) - {s.name for s in services.values()} - {s.key for s in services.values()}
    )
    if unknown_activity:
        raise UsageError(
            f"{where}: activity for services it does not run: {', '.join(sorted(unknown_activity))}"
        )
    queues = {str(k): str(v) for k, v in _table(entry.get("queues", {}), f"{where} queues").items()}
    bad = [v for v in queues.values() if v not in _PRIVACY]
    if bad:
        raise UsageError(f"{where}: queue privacy must be None, Optional or Body, not {bad[0]!r}")
    wmi = {
        str(cls): [dict(_table(props, f"{where} wmi.{cls}"))]
        for cls, props in _table(entry.get("wmi", {}), f"{where} wmi").items()
    }
    activated = [str(r) for r in _list(entry.get("activated_roles", []), f"{where} activated_roles")]
    unknown_roles = [r for r in activated if r not in cat.roles]
    if unknown_roles:
        raise UsageError(f"{where}: unknown roles {', '.join(unknown_roles)}; valid: {', '.join(cat.roles)}")
    server = SimServer(
        fqdn=fqdn,
        product=product,
        roles=roles,
        services=services,
        pool=str(entry.get("pool", "")),
        site=str(entry.get("site", "")),
        drain_seconds=_number(entry.get("drain_seconds", 5), f"{where} drain_seconds"),
        in_perfmon_group=_flag(entry.get("in_perfmon_group", True), f"{where} in_perfmon_group"),
        msmq_installed=_flag(entry.get("msmq_installed", False), f"{where} msmq_installed"),
        msmq_ad_integrated=entry.get("msmq_ad_integrated"),
        queues=queues,
        wmi=wmi,
        activated_roles=activated,
        lcscmd_fail_roles={
            str(r) for r in _list(entry.get("lcscmd_fail_roles", []), f"{where} lcscmd_fail_roles")
        },
        catalog=cat,
    )
    if clock is not None:
        server.clock = clock
    return server


def synthetic_topology(count: int, *, product: str = "sfb2015", drain_seconds: float = 2.0) -> Topology:
    """``count`` Mediation servers, for fan-out tests and benchmarks."""
    lines = ["[lab]", 'username = "LAB\\\\admin"']
    for i in range(1, count + 1):
        lines += [
            "[[servers]]",
            f'fqdn = "med{i:03d}.fleet.contoso.com"',
            f'product = "{product}"',
            'roles = ["MediationServer"]',
            f"drain_seconds = {drain_seconds}",
            "[servers.activity.RTCMEDSRV]",
            f'"Inbound Calls" = {i % 5}',
        ]
    return parse_topology("\n".join(lines) + "\n", source=f"synthetic topology ({count} servers)")


def _known(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(keys))}")


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a table")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a list")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e15:
        raise UsageError(f"{where}: expected a non-negative number")
    return float(value)


def _flag(value: object, where: str) -> bool:
    """true or false, nothing else: ``bool("no")`` would silently read as true."""
    if not isinstance(value, bool):
        raise UsageError(f"{where}: expected true or false")
    return value
