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

Each table is a typed shape (``ocsps.shapes``): an unknown key or a wrong type is refused with one line that
names the file, the server and the key (``lab.toml: servers."fe01.contoso.com".ack_delay: expected float``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec

from ocsps.catalog import Catalog, load_catalog
from ocsps.errors import UsageError
from ocsps.hostname import check_host
from ocsps.lab.check_sim import CheckFields, apply_check_fields
from ocsps.lab.credentials import credential_problem
from ocsps.lab.estate import STOPPED, SimServer, SimService, build_service, default_services
from ocsps.lab.patch_sim import SimPatch, parse_patch_fields
from ocsps.lab.pool_sim import SimPool, parse_pools
from ocsps.shapes import FieldError, convert, join_path

Amount = Annotated[float, msgspec.Meta(ge=0, lt=1e15)]
"""A non-negative number (seconds, milliseconds, a counter value)."""
_PRIVACY = ("None", "Optional", "Body")


class _LabTable(msgspec.Struct, forbid_unknown_fields=True):
    username: str = "LAB\\admin"
    password: str | None = None
    auth: str = "ntlm"

    def __post_init__(self) -> None:
        if self.auth not in ("ntlm", "negotiate", "basic"):
            raise FieldError("auth", "must be ntlm, negotiate or basic")


class _FaultsTable(msgspec.Struct, forbid_unknown_fields=True):
    latency_ms: Amount = 0
    stuck: bool = False


class _ServerEntry(CheckFields, forbid_unknown_fields=True):
    """One ``[[servers]]`` entry as written (the check keys come from ``CheckFields``)."""

    fqdn: str
    product: str = ""
    roles: tuple[str, ...] = ()
    pool: str = ""
    site: str = ""
    services: tuple[str, ...] | None = None
    stopped: tuple[str, ...] = ()
    drain_seconds: Amount = 5
    in_perfmon_group: bool = True
    activated_roles: tuple[str, ...] = ()
    lcscmd_fail_roles: tuple[str, ...] = ()
    msmq_installed: bool = False
    msmq_ad_integrated: bool | None = None
    fails_to_stop: tuple[str, ...] = ()
    stuck_drain: tuple[str, ...] = ()
    activity: dict[str, dict[str, Amount]] = msgspec.field(default_factory=dict)
    queues: dict[str, str] = msgspec.field(default_factory=dict)
    wmi: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    faults: _FaultsTable = msgspec.field(default_factory=_FaultsTable)
    ack_delay: Amount = 0
    computer_name: str = ""
    answer_as: dict[str, str] = msgspec.field(default_factory=dict)
    dependencies: dict[str, list[str]] = msgspec.field(default_factory=dict)
    disabled: tuple[str, ...] = ()
    patch: dict[str, Any] = msgspec.field(default_factory=dict)  # read by ocsps.lab.patch_sim

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("fqdn", *(("computer_name",) if self.computer_name else ())):
            try:
                setattr(self, name, check_host(getattr(self, name), name))
            except UsageError as exc:
                raise FieldError(name, str(exc).removeprefix(f"{name}: ")) from None
        bad = [v for v in self.queues.values() if v not in _PRIVACY]
        if bad:
            raise FieldError("queues", f"privacy must be None, Optional or Body, not {bad[0]!r}")


class _TopologyFile(msgspec.Struct, forbid_unknown_fields=True):
    servers: list[dict[str, Any]]
    lab: _LabTable = msgspec.field(default_factory=_LabTable)
    sites: list[dict[str, Any]] = []
    pools: list[dict[str, Any]] = []


_SERVER_KEYS = frozenset(_ServerEntry.__struct_fields__)


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
    top = convert(raw, _TopologyFile, path=f"{source}: ")
    if not top.servers:
        raise UsageError(f"{source}: needs at least one [[servers]] entry")
    servers: list[SimServer] = []
    faults: dict[str, LabFaults] = {}
    patches: dict[str, SimPatch] = {}
    for index, item in enumerate(top.servers):
        name = item.get("fqdn")
        where = join_path(f"{source}: ", "servers", name if isinstance(name, str) else index)
        entry = convert(item, _ServerEntry, path=where)
        server = _server(cat, entry, where, clock)
        apply_check_fields(cat, server, entry)
        patches[server.fqdn.casefold()] = parse_patch_fields(server, item, where)
        if server.fqdn.casefold() in (s.fqdn.casefold() for s in servers):
            raise UsageError(f"{where}: duplicate server {server.fqdn}")
        servers.append(server)
        faults[server.fqdn] = LabFaults(int(entry.faults.latency_ms), entry.faults.stuck)
    lab = top.lab
    problem = credential_problem(lab.username, lab.password or "")
    if problem is not None:
        raise UsageError(f"{source}: lab: {problem}")
    return Topology(
        servers=servers,
        username=lab.username,
        password=lab.password,
        auth=lab.auth,
        faults=faults,
        source=source,
        pools=parse_pools(top.pools, servers, source),
        patches=patches,
    )


def _server(cat: Catalog, entry: _ServerEntry, where: str, clock: Callable[[], float] | None) -> SimServer:
    product = cat.product(entry.product)
    roles = tuple(entry.roles)
    chosen = (
        [cat.find_service(product, n) for n in entry.services]
        if entry.services is not None
        else default_services(cat, product, roles)
    )
    stopped = {s.casefold() for s in entry.stopped}
    services = {}
    for svc in chosen:
        values = dict(entry.activity.get(svc.name or svc.key, {}))
        sim = build_service(cat, product, svc, activity=values, server_roles=roles)
        if sim.name.casefold() in stopped or svc.key.casefold() in stopped:
            sim.status = STOPPED
        sim.fails_to_stop = sim.name in entry.fails_to_stop
        sim.stuck_drain = sim.name in entry.stuck_drain
        services[sim.name] = sim
    unknown_activity = (
        set(entry.activity) - {s.name for s in services.values()} - {s.key for s in services.values()}
    )
    if unknown_activity:
        raise UsageError(
            f"{where}: activity for services it does not run: {', '.join(sorted(unknown_activity))}"
        )
    _apply_dependencies(services, entry.dependencies, where)
    for name in entry.disabled:
        _on_server(services, name, f"{where}.disabled").startup = "Disabled"
    answer_as = {
        asked.casefold(): _on_server(services, answering, join_path(where, "answer_as", asked)).name
        for asked, answering in entry.answer_as.items()
    }
    unknown_roles = [r for r in entry.activated_roles if r not in cat.roles]
    if unknown_roles:
        raise UsageError(f"{where}: unknown roles {', '.join(unknown_roles)}; valid: {', '.join(cat.roles)}")
    server = SimServer(
        fqdn=entry.fqdn,
        product=product,
        roles=roles,
        services=services,
        pool=entry.pool,
        site=entry.site,
        drain_seconds=entry.drain_seconds,
        in_perfmon_group=entry.in_perfmon_group,
        msmq_installed=entry.msmq_installed,
        msmq_ad_integrated=entry.msmq_ad_integrated,
        queues=dict(entry.queues),
        wmi={cls: [dict(props)] for cls, props in entry.wmi.items()},
        activated_roles=list(entry.activated_roles),
        lcscmd_fail_roles=set(entry.lcscmd_fail_roles),
        ack_delay=entry.ack_delay,
        computer_name=entry.computer_name,
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


def _apply_dependencies(
    services: Mapping[str, SimService], table: Mapping[str, list[str]], where: str
) -> None:
    """Per-server prerequisites replace the lab's documented ones; a cycle is refused, as Windows does."""
    for name, listed in table.items():
        svc = _on_server(services, name, f"{where}.dependencies")
        at = join_path(where, "dependencies", name)
        svc.requires = tuple(_on_server(services, n, at).key for n in listed)
    by_key = {s.key: s for s in services.values()}

    def visit(svc: SimService, path: tuple[str, ...]) -> None:
        if svc.key in path:
            raise UsageError(f"{where}.dependencies: a cycle ({' -> '.join((*path, svc.key))})")
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
