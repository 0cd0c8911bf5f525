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
                     lcscmd_installed, lcscmd_path (see ocsps.lab.check_sim),
                     ack_delay, computer_name, answer_as, dependencies, disabled (below)
      [[servers.certificates]]      thumbprint, serial, subject, issuer, valid_from_days, valid_to_days,
                                    has_private_key, archived, key_readers (see ocsps.lab.check_sim)
      [servers.certificate_assignments]  Use = thumbprint (Lync / SfB)
      [[servers.events]]            id, minutes_ago, log, level, source, message
      [servers.activity.<SERVICE>]  "Counter Name" = number
      [servers.queues]              "<queue path>" = "None" | "Optional" | "Body"
      [servers.wmi.<Class>]         Property = value
      [servers.faults]              latency_ms, stuck (bool)
      [servers.patch]               components, installer_paths, installs_version, exit_code,
                                    mismatch_components, install_seconds, reboot_seconds, free_gb,
                                    pending_reboot, fabric_starts_services (see ocsps.lab.patch_sim)

Knobs for behaviour a real server may show (each defaults to the plain behaviour)::

    roles = ["FrontEnd"]        # an expanded OCS 2007 R2 topology: no Web Conferencing service here
    ack_delay = 0               # seconds: a graceful stop is acknowledged this long after the request;
                                # until then the service stays Running, then Paused, and 25049 is
                                # logged at acknowledgement time
    computer_name = "fe01..."   # the FQDN the server reports about itself (default: its own fqdn)
    answer_as = { RTCMEDSRV = "RTCSRV" }   # asked about one service, the server answers (and acts) on
                                # another: for testing that the answer is compared with the question
    dependencies = { RTCMRAUTH = ["RTCMEDIARELAY"] }   # prerequisites per service on this server,
                                # replacing the lab's documented ones (ocsps/lab/facts/services.toml)
    disabled = ["RTCMEDSRV"]    # services whose start-up type is Disabled: Start-Service refuses them

Service dependencies and events, pool quorum, the role deactivation order and LCSCmd.exe's default place
come from ``ocsps/lab/facts``, never from the catalog the product decides with.

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
from ocsps.hostname import check_host
from ocsps.lab.check_sim import CHECK_SERVER_KEYS, apply_check_fields
from ocsps.lab.credentials import credential_problem
from ocsps.lab.estate import STOPPED, SimServer, SimService, build_service, default_services
from ocsps.lab.patch_sim import PATCH_SERVER_KEYS, SimPatch, parse_patch_fields
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
    "ack_delay",
    "computer_name",
    "answer_as",
    "dependencies",
    "disabled",
} | CHECK_SERVER_KEYS  # certificates, events, module_loads, powershell...: see ocsps.lab.check_sim
_SERVER_KEYS |= PATCH_SERVER_KEYS  # [servers.patch]: see ocsps.lab.patch_sim
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
    patches: dict[str, SimPatch] = field(default_factory=dict)  # by casefolded FQDN (ocsps.lab.patch_sim)

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
    patches: dict[str, SimPatch] = {}
    seen: set[str] = set()
    for index, entry in enumerate(raw["servers"], 1):
        where = f"{source} server #{index}"
        entry = _table(entry, where)
        _known(entry, _SERVER_KEYS, where)
        server = _server(cat, entry, where, clock)
        apply_check_fields(cat, server, entry, f"{where} ({server.fqdn})")
        patches[server.fqdn.casefold()] = parse_patch_fields(server, entry, f"{where} ({server.fqdn})")
        if server.fqdn.casefold() in seen:
            raise UsageError(f"{where}: duplicate server {server.fqdn}")
        seen.add(server.fqdn.casefold())
        servers.append(server)
        f = _table(entry.get("faults", {}), f"{where} faults")
        _known(f, {"latency_ms", "stuck"}, f"{where} faults")
        latency = int(_number(f.get("latency_ms", 0), f"{where} faults.latency_ms"))
        faults[server.fqdn] = LabFaults(latency, _flag(f.get("stuck", False), f"{where} faults.stuck"))
    problem = credential_problem(str(lab.get("username", "LAB\\admin")), str(lab.get("password", "")))
    if problem is not None:
        raise UsageError(f"{source} [lab]: {problem}")
    return Topology(
        servers=servers,
        username=str(lab.get("username", "LAB\\admin")),
        password=str(lab["password"]) if "password" in lab else None,
        auth=auth,
        faults=faults,
        source=source,
        pools=parse_pools(raw.get("pools", []), servers, source),
        patches=patches,
    )


def _server(cat: Catalog, entry: dict[str, Any], where: str, clock: Callable[[], float] | None) -> SimServer:
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
        sim = build_service(cat, product, svc, activity=values, server_roles=roles)
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
    _apply_dependencies(services, _table(entry.get("dependencies", {}), f"{where} dependencies"), where)
    for name in _list(entry.get("disabled", []), f"{where} disabled"):
        _on_server(services, name, f"{where} disabled").startup = "Disabled"
    answer_as: dict[str, str] = {}
    for asked, answering in _table(entry.get("answer_as", {}), f"{where} answer_as").items():
        if not isinstance(answering, str):
            raise UsageError(f"{where} answer_as.{asked}: expected a service name")
        answer_as[str(asked).casefold()] = _on_server(services, answering, f"{where} answer_as.{asked}").name
    computer_name = entry.get("computer_name", "")
    if computer_name:
        computer_name = check_host(computer_name, f"{where} computer_name")
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
        ack_delay=_number(entry.get("ack_delay", 0), f"{where} ack_delay"),
        computer_name=computer_name,
        answer_as=answer_as,
        catalog=cat,
    )
    if clock is not None:
        server.clock = clock
    return server


def _on_server(services: Mapping[str, SimService], name: object, where: str) -> SimService:
    """The service ``name`` (short name or catalog key) among this server's services."""
    folded = str(name).casefold()
    found = next((s for s in services.values() if folded in (s.name.casefold(), s.key.casefold())), None)
    if found is None:
        raise UsageError(
            f"{where}: {name!r} is not a service of this server; valid: {', '.join(sorted(services))}"
        )
    return found


def _apply_dependencies(services: Mapping[str, SimService], table: Mapping[str, Any], where: str) -> None:
    """Per-server prerequisites replace the lab's documented ones; a cycle is refused, as Windows does."""
    for name, listed in table.items():
        svc = _on_server(services, name, f"{where} dependencies")
        at = f"{where} dependencies.{name}"
        needs = [_on_server(services, n, at) for n in _list(listed, at)]
        svc.requires = tuple(n.key for n in needs)
    by_key = {s.key: s for s in services.values()}

    def visit(svc: SimService, path: tuple[str, ...]) -> None:
        if svc.key in path:
            raise UsageError(f"{where} dependencies: a cycle ({' -> '.join((*path, svc.key))})")
        for key in svc.requires:
            if key in by_key:
                visit(by_key[key], (*path, svc.key))

    for svc in services.values():
        visit(svc, ())


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
