"""The catalog: every product fact ocsps relies on, loaded from TOML data files and validated once.

Service names, event ids, cmdlet signatures, restart rules and deactivation order live here and nowhere
else, so that a correction is a data change an administrator can review, not a code hunt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ocsps.errors import OcspsError, UsageError

__all__ = [
    "Action",
    "ActionParam",
    "Catalog",
    "CatalogError",
    "Cmdlet",
    "EventDef",
    "KeepRunning",
    "Precondition",
    "Product",
    "RestartRule",
    "Role",
    "RoleGroup",
    "Service",
    "SnapinSetting",
    "Task",
    "load_catalog",
]


class CatalogError(OcspsError):
    """The packaged data contradicts itself: a bug in ocsps, reported before anything runs."""


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    order: int
    powershell: str
    psrp_protocol: str
    windows: str
    family: str
    module: str
    service_prefix: str
    event_log: str
    service_control: str  # "cs": *-CsWindowsService; "windows": Get-/Stop-/Start-Service
    graceful_drain: bool
    deactivation: str
    module_path: str = ""
    wmi_major_version: int | None = None

    @property
    def powershell_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.powershell.split("."))


@dataclass(frozen=True)
class Service:
    key: str
    display: str
    roles: tuple[str, ...]
    products: tuple[str, ...]
    stop_order: int
    name: str | None = None
    display_pattern: str | None = None
    display_full: str | None = None
    requires: tuple[str, ...] = ()
    start_after: tuple[str, ...] = ()
    drain_events: tuple[int, ...] = ()
    leave_running_switch: str | None = None
    external: bool = False
    note: str = ""

    def display_name(self, product: Product) -> str:
        if self.display_full:
            return self.display_full
        return f"{product.service_prefix} {self.display}"


@dataclass(frozen=True)
class Cmdlet:
    name: str
    parameters: tuple[str, ...]
    products: tuple[str, ...] = ()
    powershell: str | None = None
    added: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class EventDef:
    id: int
    log: str
    meaning: str
    text: str
    service: str | None = None


@dataclass(frozen=True)
class SnapinSetting:
    id: str
    label: str
    where: str
    certificate: bool = False
    no_restart_reason: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    label: str


@dataclass(frozen=True)
class RestartRule:
    id: str
    service: str
    action: str
    section: str
    why: str
    snapin: tuple[str, ...] = ()
    task: str | None = None
    wmi_class: str | None = None
    properties: tuple[str, ...] = ()
    except_properties: tuple[str, ...] = ()
    except_prefixes: tuple[str, ...] = ()
    certificate_exception: bool = False
    start_after: tuple[str, ...] = ()

    def covers_property(self, prop: str | None) -> bool:
        """True when a change to ``prop`` of this rule's class (None: some property) triggers the rule."""
        if prop is None:
            return True
        folded = prop.casefold()
        if self.properties:
            return folded in {p.casefold() for p in self.properties}
        if folded in {p.casefold() for p in self.except_properties}:
            return False
        return not any(folded.startswith(x.casefold()) for x in self.except_prefixes)


@dataclass(frozen=True)
class Precondition:
    id: str
    text: str
    live_check: str | None = None


@dataclass(frozen=True)
class RoleGroup:
    key: str
    label: str
    preconditions: tuple[str, ...]


@dataclass(frozen=True)
class Role:
    key: str
    label: str
    group: str
    order: int
    products: tuple[str, ...]
    lcscmd: tuple[str, ...]
    documented: bool
    services: tuple[str, ...]
    after: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    last_of_pool_precondition: str | None = None


@dataclass(frozen=True)
class ActionParam:
    name: str
    type: str
    help: str
    required: bool = False
    since: str | None = None
    family: str | None = None

    @property
    def ps_type(self) -> str:
        return {"string": "[string]", "strings": "[string[]]", "switch": "[switch]", "int": "[int]"}[
            self.type
        ]


@dataclass(frozen=True)
class Action:
    name: str
    summary: str
    changes_state: bool
    result: str
    templates: Mapping[str, str]
    params: tuple[ActionParam, ...]
    fixed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    since: str | None = None
    """The first product (by order) that has what the action needs; older products are refused at render."""
    unavailable: str = ""
    """Why an older product cannot run the action, in the operator's words."""


_PARAM_TYPES = {"string", "strings", "switch", "int"}
_RULE_ACTIONS = {"restart", "stop", "stop-then-start", "stop-then-start-in-order"}


@dataclass(frozen=True)
class KeepRunning:
    """The services a drain is asked to leave running, as the product's drain cmdlet takes them."""

    values: Mapping[str, bool]
    """The drain's keep-running switches (``LeaveClsAgentRunning``...), each True."""
    ignored: tuple[str, ...] = ()
    """Names of services that have no such switch: a drain stops only the service named, so they keep
    running without one; callers say so rather than pass something the cmdlet does not take."""

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{name} keeps running: drain stops only the service named" for name in self.ignored)


@dataclass(frozen=True)
class Catalog:
    products: Mapping[str, Product]
    services: tuple[Service, ...]
    cmdlets: Mapping[str, Cmdlet]
    common_parameters: tuple[str, ...]
    events: tuple[EventDef, ...]
    rules: tuple[RestartRule, ...]
    rule_products: tuple[str, ...]
    snapin_settings: Mapping[str, SnapinSetting]
    tasks: Mapping[str, Task]
    no_requirements: Mapping[str, str]
    roles: Mapping[str, Role]
    role_groups: Mapping[str, RoleGroup]
    preconditions: Mapping[str, Precondition]
    lcscmd_path: str
    actions: Mapping[str, Action]

    # ---- products ----
    def product(self, product_id: str) -> Product:
        try:
            return self.products[product_id]
        except KeyError:
            raise UsageError(
                f"unknown product {product_id!r}; choose one of: {', '.join(self.products)}"
            ) from None

    def product_at_least(self, product: Product, since: str) -> bool:
        return product.order >= self.products[since].order

    # ---- services ----
    def services_for(self, product: Product, *, include_external: bool = False) -> list[Service]:
        """The product's services in stop order (see ``stop_sequence``)."""
        found = [
            s for s in self.services if product.id in s.products and (include_external or not s.external)
        ]
        return self.stop_sequence(found)

    def stop_sequence(self, services: Iterable[Service]) -> list[Service]:
        """``services`` in an order that stops dependents before the services they require.

        Windows refuses to stop a service whose dependents run (unless forced), so the order comes from
        the ``requires`` graph: a topological sort, with ``stop_order`` (the OCS 2007 R2 console's
        sequence) deciding only between services that do not depend on each other. Starting goes in the
        reverse order. Cycles cannot occur: the loader refuses them.
        """
        chosen = list(dict.fromkeys(services))
        keys = {s.key for s in chosen}
        # a dependent must stop before each prerequisite it requires, directly or through others
        after: dict[str, set[str]] = {s.key: set() for s in chosen}  # key -> dependents still running
        for s in chosen:
            for prereq in self.prerequisites_of(s):
                if prereq in keys:
                    after[prereq].add(s.key)
        ordered: list[Service] = []
        pending = sorted(chosen, key=lambda s: (s.stop_order, s.key))
        while pending:
            ready = next(s for s in pending if not after[s.key])
            ordered.append(ready)
            pending.remove(ready)
            for waiting in after.values():
                waiting.discard(ready.key)
        return ordered

    def prerequisites_of(self, service: Service) -> list[str]:
        """Keys of every service ``service`` requires, directly or through another prerequisite."""
        seen: list[str] = []
        todo = list(service.requires)
        while todo:
            key = todo.pop(0)
            if key not in seen:
                seen.append(key)
                todo.extend(self.service_by_key(key).requires)
        return seen

    def dependents_of(self, product: Product, service: Service) -> list[Service]:
        """The product's services that require ``service`` (directly or not), in stop order.

        These are the services Windows stops with a forced stop of ``service``, and the ones that must
        be started again after it.
        """
        found = [
            s for s in self.services if product.id in s.products and service.key in self.prerequisites_of(s)
        ]
        return self.stop_sequence(found)

    def service_by_key(self, key: str) -> Service:
        for s in self.services:
            if s.key == key:
                return s
        raise CatalogError(f"catalog has no service {key!r}")

    def find_service(self, product: Product, text: str) -> Service:
        """Resolve what a user typed (short name, catalog key or display name) for one product."""
        folded = text.strip().casefold()
        for s in self.services_for(product, include_external=True):
            names = {s.key.casefold(), s.display.casefold(), s.display_name(product).casefold()}
            if s.name:
                names.add(s.name.casefold())
            if folded in names:
                return s
        valid = ", ".join(s.name or s.key for s in self.services_for(product))
        raise UsageError(f"unknown service {text!r} for {product.id}; valid: {valid}")

    def leave_running(self, product: Product, names: Iterable[str]) -> KeepRunning:
        """What "leave these running during a drain" means on ``product``; a usage error if it cannot.

        A service with a keep-running switch becomes that switch, where the product's drain takes it (Lync
        Server 2013 on); one without a switch is listed in ``ignored`` (a drain leaves it running anyway);
        a name the product does not know, or a switch its drain lacks, is refused before anything is sent.
        """
        switches = {
            s.leave_running_switch: s
            for s in self.services_for(product, include_external=True)
            if s.leave_running_switch
        }
        allowed = {p.name for p in self.action_params(self.action("drain"), product)}
        usable = [s.name or s.key for switch, s in switches.items() if switch in allowed]
        since = " (the switches exist from Lync Server 2013 on)"
        values: dict[str, bool] = {}
        ignored: list[str] = []
        for name in names:
            try:
                service = self.find_service(product, name)
            except UsageError:
                raise UsageError(
                    f"{product.id} cannot leave {name} running during a drain: it has no such service"
                    + ("" if usable else since)
                ) from None
            switch = service.leave_running_switch
            if switch is None:
                ignored.append(name)
            elif switch in allowed:
                values[switch] = True
            else:
                raise UsageError(
                    f"{product.id} cannot leave {service.name or service.key} running during a drain"
                    + (f"; it can for: {', '.join(usable)}" if usable else since)
                )
        return KeepRunning(values, tuple(dict.fromkeys(ignored)))

    def service_parameters(self, product: Product, service: Service) -> dict[str, str]:
        """How a template names ``service`` on ``product``: by short name, or by display-name wildcard
        where the short name is not documented (OCS 2007 / R2)."""
        if service.name or product.service_control == "cs":
            return {"Name": service.name or service.key}
        return {"DisplayPattern": service.display_pattern or service.display_name(product)}

    # ---- cmdlets ----
    def cmdlet_parameters(self, product: Product, cmdlet: str) -> set[str] | None:
        """Parameters ``cmdlet`` accepts on ``product`` (casefolded), or None if it does not exist there."""
        entry = next((c for n, c in self.cmdlets.items() if n.casefold() == cmdlet.casefold()), None)
        if entry is None:
            return None
        if entry.products and product.id not in entry.products:
            return None
        if entry.powershell and _version(entry.powershell) > product.powershell_tuple:
            return None
        params = set(entry.parameters) | set(self.common_parameters)
        for since, extra in entry.added:
            if self.product_at_least(product, since):
                params |= set(extra)
        return {p.casefold() for p in params}

    # ---- events ----
    def events_for_service(self, key: str) -> list[EventDef]:
        return [e for e in self.events if e.service == key]

    def event_log_name(self, product: Product, event: EventDef) -> str:
        return product.event_log if event.log == "product" else event.log

    # ---- actions ----
    def action(self, name: str) -> Action:
        try:
            return self.actions[name]
        except KeyError:
            raise UsageError(f"unknown action {name!r}; choose one of: {', '.join(self.actions)}") from None

    def supports(self, action: Action, product: Product) -> bool:
        """Whether ``product`` can run ``action`` (a template for its service control, and new enough)."""
        return product.service_control in action.templates and (
            action.since is None or self.product_at_least(product, action.since)
        )

    def template_for(self, action_name: str, product: Product) -> str:
        """The template that implements ``action_name`` on ``product``, or a usage error saying why not."""
        action = self.action(action_name)
        template = action.templates.get(product.service_control)
        if template is not None and self.supports(action, product):
            return template
        supported = [p.id for p in self.products.values() if self.supports(action, p)]
        reason = f"{product.name}: {action.unavailable} " if action.unavailable else ""
        if action.name == "drain" and not product.graceful_drain:
            reason = f"{product.name} has no graceful drain (it arrived with Lync Server 2010); use 'stop'. "
        choices = ", ".join(supported)
        raise UsageError(
            f"{reason}action {action.name!r} is not available for {product.id}; it is for: {choices}"
        )

    def readiness_cmdlet(self, product: Product) -> str:
        """The cmdlet that reports a pool's upgrade readiness on ``product`` (``pools.toml``).

        Templates write it into script text, so it must be a plain cmdlet name, never anything else.
        """
        entry = read_data("pools").get("products", {}).get(product.id, {})
        name = entry.get("readiness_cmdlet")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z]+-[A-Za-z]+", name):
            raise CatalogError(f"pools.toml: no valid readiness_cmdlet for {product.id}")
        return name

    def action_params(self, action: Action, product: Product) -> list[ActionParam]:
        return [
            p
            for p in action.params
            if (p.family is None or p.family == product.service_control)
            and (p.since is None or self.product_at_least(product, p.since))
        ]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _data_bytes(name: str) -> bytes:
    packaged = Path(__file__).parent / "data" / name
    if packaged.is_file():
        return packaged.read_bytes()
    from importlib import resources  # a zipped install: slower, and rare

    return resources.files("ocsps.catalog").joinpath("data", name).read_bytes()


def _tuple(value: Iterable[Any] | None) -> tuple[Any, ...]:
    return tuple(value or ())


def _build(raw: dict[str, dict[str, Any]]) -> Catalog:
    products = {pid: Product(id=pid, **spec) for pid, spec in raw["products"]["products"].items()}
    services = tuple(
        Service(
            key=s["key"],
            display=s["display"],
            roles=_tuple(s.get("roles")),
            products=_tuple(s.get("products")),
            stop_order=s["stop_order"],
            name=s.get("name"),
            display_pattern=s.get("display_pattern"),
            display_full=s.get("display_full"),
            requires=_tuple(s.get("requires")),
            start_after=_tuple(s.get("start_after")),
            drain_events=_tuple(s.get("drain_events")),
            leave_running_switch=s.get("leave_running_switch"),
            external=s.get("external", False),
            note=s.get("note", ""),
        )
        for s in raw["services"]["services"]
    )
    cm = raw["cmdlets"]
    cmdlets = {
        name: Cmdlet(
            name=name,
            parameters=_tuple(spec.get("parameters")),
            products=_tuple(spec.get("products")),
            powershell=spec.get("powershell"),
            added=tuple((a["since"], _tuple(a["parameters"])) for a in spec.get("added", [])),
        )
        for name, spec in cm["cmdlets"].items()
    }
    events = tuple(EventDef(**e) for e in raw["events"]["events"])
    rr = raw["restart_rules"]
    rules = tuple(
        RestartRule(
            id=r["id"],
            service=r["service"],
            action=r["action"],
            section=r["section"],
            why=r["why"],
            snapin=_tuple(r.get("snapin")),
            task=r.get("task"),
            wmi_class=r.get("wmi_class"),
            properties=_tuple(r.get("properties")),
            except_properties=_tuple(r.get("except_properties")),
            except_prefixes=_tuple(r.get("except_prefixes")),
            certificate_exception=r.get("certificate_exception", False),
            start_after=_tuple(r.get("start_after")),
        )
        for r in rr["rules"]
    )
    roles_raw = raw["roles"]
    roles = {
        r["key"]: Role(
            key=r["key"],
            label=r["label"],
            group=r["group"],
            order=r["order"],
            products=_tuple(r["products"]),
            lcscmd=_tuple(r["lcscmd"]),
            documented=r["documented"],
            services=_tuple(r.get("services")),
            after=_tuple(r.get("after")),
            components=_tuple(r.get("components")),
            last_of_pool_precondition=r.get("last_of_pool_precondition"),
        )
        for r in roles_raw["roles"]
    }
    actions = {
        name: Action(
            name=name,
            summary=spec["summary"],
            changes_state=spec["changes_state"],
            result=spec["result"],
            templates=dict(spec["templates"]),
            params=tuple(ActionParam(**p) for p in spec.get("params", [])),
            fixed={k: dict(v) for k, v in spec.get("fixed", {}).items()},
            since=spec.get("since"),
            unavailable=spec.get("unavailable", ""),
        )
        for name, spec in raw["actions"]["actions"].items()
    }
    catalog = Catalog(
        products=products,
        services=services,
        cmdlets=cmdlets,
        common_parameters=_tuple(cm["common_parameters"]),
        events=events,
        rules=rules,
        rule_products=_tuple(rr["applies_to"]),
        snapin_settings={s["id"]: SnapinSetting(**s) for s in rr["snapin_settings"]},
        tasks={t["id"]: Task(**t) for t in rr["tasks"]},
        no_requirements={n["service"]: n["why"] for n in rr.get("no_requirements", [])},
        roles=roles,
        role_groups={
            k: RoleGroup(key=k, label=v["label"], preconditions=_tuple(v["preconditions"]))
            for k, v in roles_raw["groups"].items()
        },
        preconditions={p["id"]: Precondition(**p) for p in roles_raw["preconditions"]},
        lcscmd_path=roles_raw["lcscmd_path"],
        actions=actions,
    )
    _validate(catalog)
    return catalog


def _validate(c: Catalog) -> None:
    """Cross-check references so that a typo in the data fails loudly at load, not mid-operation."""
    problems: list[str] = []
    keys = [s.key for s in c.services]
    if len(keys) != len(set(keys)):
        problems.append("duplicate service keys")
    known = set(keys)
    for s in c.services:
        problems += [f"service {s.key}: unknown product {p}" for p in s.products if p not in c.products]
        problems += [f"service {s.key}: unknown prerequisite {r}" for r in s.requires if r not in known]
        problems += [f"service {s.key}: unknown start_after {r}" for r in s.start_after if r not in known]
    problems += _dependency_problems(c.services)
    for cmd in c.cmdlets.values():
        problems += [f"cmdlet {cmd.name}: unknown product {p}" for p in cmd.products if p not in c.products]
        problems += [f"cmdlet {cmd.name}: unknown since {s}" for s, _ in cmd.added if s not in c.products]
    for r in c.rules:
        if r.service not in known:
            problems.append(f"rule {r.id}: unknown service {r.service}")
        if r.action not in _RULE_ACTIONS:
            problems.append(f"rule {r.id}: unknown action {r.action}")
        triggers = [bool(r.snapin), r.task is not None, r.wmi_class is not None]
        if sum(triggers) != 1:
            problems.append(f"rule {r.id}: needs exactly one of snapin, task, wmi_class")
        problems += [
            f"rule {r.id}: unknown snap-in setting {s}" for s in r.snapin if s not in c.snapin_settings
        ]
        if r.task is not None and r.task not in c.tasks:
            problems.append(f"rule {r.id}: unknown task {r.task}")
        problems += [f"rule {r.id}: unknown start_after {s}" for s in r.start_after if s not in known]
    problems += [f"no_requirements: unknown service {s}" for s in c.no_requirements if s not in known]
    for role in c.roles.values():
        if role.group not in c.role_groups:
            problems.append(f"role {role.key}: unknown group {role.group}")
        problems += [f"role {role.key}: unknown service {s}" for s in role.services if s not in known]
        problems += [f"role {role.key}: unknown 'after' role {a}" for a in role.after if a not in c.roles]
    for g in c.role_groups.values():
        problems += [
            f"group {g.key}: unknown precondition {p}" for p in g.preconditions if p not in c.preconditions
        ]
    for a in c.actions.values():
        problems += [
            f"action {a.name}: unknown family {f}" for f in a.templates if f not in ("cs", "windows")
        ]
        for p in a.params:
            if p.type not in _PARAM_TYPES:
                problems.append(f"action {a.name}: parameter {p.name} has unknown type {p.type}")
            if p.since is not None and p.since not in c.products:
                problems.append(f"action {a.name}: parameter {p.name} has unknown since {p.since}")
    if problems:
        raise CatalogError("catalog data is inconsistent: " + "; ".join(problems))


def _dependency_problems(services: tuple[Service, ...]) -> list[str]:
    """Cycles in ``requires`` (no stop order exists then), and hand-written ``stop_order`` numbers that
    contradict the graph (a reader of the data file would trust the numbers)."""
    by_key = {s.key: s for s in services}
    problems: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2 or key not in by_key:
            return
        if state.get(key) == 1:
            cycle = [*path[path.index(key) :], key]
            problems.append("services require each other in a cycle: " + " -> ".join(cycle))
            return
        state[key] = 1
        for prereq in by_key[key].requires:
            visit(prereq, [*path, key])
        state[key] = 2

    for key in by_key:
        visit(key, [])
    for s in services:
        for prereq in s.requires:
            other = by_key.get(prereq)
            if other is not None and other.stop_order <= s.stop_order:
                problems.append(
                    f"service {s.key} requires {prereq} but has stop_order {s.stop_order} >= "
                    f"{other.stop_order}: a dependent stops first, so its number must be lower"
                )
    return problems
_CATALOG_FILES = (
    "products",
    "services",
    "cmdlets",
    "events",
    "restart_rules",
    "roles",
    "actions",
    "pools",
    "checks",
)


def _parsed_data() -> dict[str, dict[str, Any]]:
    """The TOML files parsed, from the user cache when it holds them for exactly these bytes.

    Parsing the TOML files costs more than the rest of an offline command's own work; the cache keeps
    the parsed (plain, marshal-able) data keyed by a digest of the files' contents, so any edit, upgrade
    or downgrade parses again. Building and validating the catalog from the data always runs.
    """
    import contextlib
    import hashlib
    import marshal

    from ocsps import cache

    texts = {name: _data_bytes(f"{name}.toml") for name in _CATALOG_FILES}
    digest = hashlib.sha256(b"marshal %d" % marshal.version)
    for name, text in texts.items():
        digest.update(b"\0%s\0%d\0" % (name.encode(), len(text)) + text)
    key = digest.digest()
    payload = cache.load("catalog", key)
    if payload is not None:
        try:
            raw = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            raw = None
        if isinstance(raw, dict) and list(raw) == list(_CATALOG_FILES):
            return raw
    import tomllib

    raw = {name: tomllib.loads(text.decode("utf-8")) for name, text in texts.items()}
    with contextlib.suppress(ValueError):  # a TOML value marshal cannot hold (a date): nothing cached
        cache.store("catalog", key, marshal.dumps(raw))
    return raw


@cache
def _data() -> dict[str, dict[str, Any]]:
    """The parsed data files, once per process (``_parsed_data`` consults the cache on disk)."""
    return _parsed_data()


@cache
def load_catalog() -> Catalog:
    """Load and validate the packaged catalog once per process."""
    return _build(_data())


def read_data(name: str) -> Mapping[str, Any]:
    """One packaged data file (``pools``, ``checks``, ``roles``...) as parsed TOML, for the modules that
    build their own typed facts from it (pool facts, checks, LcsCmd facts): every file has this one
    loader, and the parse is cached with the catalog's."""
    data = _data()
    if name not in data:
        raise CatalogError(f"no catalog data file {name}.toml")
    return data[name]


def lcscmd_data() -> Mapping[str, Any]:
    """roles.toml as written, for the LcsCmd facts the typed catalog leaves out ([lcscmd], per-role
    state names, group order and conflicts)."""
    return read_data("roles")
