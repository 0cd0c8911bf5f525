"""Which services a setting change requires stopping or restarting (OCS 2007 / R2 Appendix C).

Pure planning: the catalog's restart rules in, an ordered plan out. Every entry says which rule matched,
so an administrator can check the answer against the source instead of trusting it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ocsps.catalog import Catalog, Product, RestartRule, Service, load_catalog
from ocsps.errors import OcspsError, UsageError

# When several rules ask different things of one service, the most demanding wins.
_ACTION_RANK = {"restart": 0, "stop": 1, "stop-then-start": 2, "stop-then-start-in-order": 3}


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


@dataclass(frozen=True)
class ChangedSetting:
    """A setting as the administrator named it, resolved against the catalog."""

    text: str
    kind: str  # "wmi" | "snapin" | "task"
    key: str  # WMI class, snap-in setting id or task id
    prop: str | None = None  # WMI property; None = the whole class

    @property
    def label(self) -> str:
        return f"{self.key}.{self.prop}" if self.prop else self.key


@dataclass(frozen=True)
class RuleMatch:
    rule: RestartRule
    setting: ChangedSetting


@dataclass(frozen=True)
class ServiceAction:
    service: Service
    product: Product
    action: str
    rules: tuple[RuleMatch, ...]
    start_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class DependentService:
    """A service no rule names, stopped only because it requires a planned one (Windows will not stop a
    prerequisite while it runs), and started again afterwards."""

    service: Service
    product: Product
    requires: tuple[str, ...]


@dataclass(frozen=True)
class RestartStep:
    number: int
    verb: str  # "stop" | "start"
    service: Service
    product: Product
    why: str = ""


@dataclass(frozen=True)
class RestartPlan:
    product: Product
    changed: tuple[ChangedSetting, ...]
    services: tuple[ServiceAction, ...]
    not_needed: tuple[tuple[str, str], ...] = ()  # (setting, why no restart)
    certificate_renewed_same_subject: bool = False
    steps: tuple[RestartStep, ...] = field(default=())
    dependents: tuple[DependentService, ...] = ()


def resolve_setting(catalog: Catalog, text: str) -> ChangedSetting:
    """Accept ``Class.Property``, a bare WMI class, a snap-in setting (id or label) or a task id."""
    raw = text.strip()
    if not raw:
        raise UsageError("empty --changed value")
    classes = {r.wmi_class for r in catalog.rules if r.wmi_class}
    cls_text, _, prop_text = raw.partition(".")
    cls = next((c for c in classes if c.casefold() == cls_text.strip().casefold()), None)
    if cls is not None:
        if not prop_text.strip():
            return ChangedSetting(raw, "wmi", cls, None)
        return ChangedSetting(raw, "wmi", cls, _resolve_property(catalog, cls, prop_text.strip()))
    wanted = _norm(raw)
    for s in catalog.snapin_settings.values():
        if wanted in (_norm(s.id), _norm(s.label)):
            return ChangedSetting(raw, "snapin", s.id)
    for t in catalog.tasks.values():
        if wanted in (_norm(t.id), _norm(t.label)):
            return ChangedSetting(raw, "task", t.id)
    if raw.upper().startswith("MSFT_"):
        raise UsageError(f"unknown WMI class {cls_text!r}; Appendix C names: {', '.join(sorted(classes))}")
    choices = sorted(catalog.snapin_settings) + sorted(catalog.tasks)
    raise UsageError(
        f"unknown setting {raw!r}: give WMIClass.Property, a WMI class, or one of: {', '.join(choices)}"
    )


def _resolve_property(catalog: Catalog, cls: str, prop: str) -> str:
    rules = [r for r in catalog.rules if r.wmi_class == cls]
    named = {p for r in rules for p in (*r.properties, *r.except_properties)}
    for p in named:
        if _norm(p) == _norm(prop):
            return p
    if any(not r.properties for r in rules):
        return prop  # a rule covers the whole class: any property name is plausible
    raise UsageError(f"{cls} has no property {prop!r} in Appendix C; known: {', '.join(sorted(named))}")


def _matches(rule: RestartRule, setting: ChangedSetting) -> bool:
    if setting.kind == "snapin":
        return setting.key in rule.snapin
    if setting.kind == "task":
        return rule.task == setting.key
    return rule.wmi_class == setting.key and rule.covers_property(setting.prop)


def plan_restart(
    changed: Sequence[str],
    *,
    product: str = "ocs2007r2",
    certificate_renewed_same_subject: bool = False,
    catalog: Catalog | None = None,
) -> RestartPlan:
    cat = catalog or load_catalog()
    prod = cat.product(product)
    if prod.id not in cat.rule_products:
        raise UsageError(
            f"restart rules are documented for {', '.join(cat.rule_products)} only (Appendix C); "
            f"{prod.id} has none in the catalog"
        )
    if not changed:
        raise UsageError("name at least one changed setting with --changed")
    settings = tuple(resolve_setting(cat, text) for text in changed)
    matches: dict[str, list[RuleMatch]] = {}
    not_needed: list[tuple[str, str]] = []
    for setting in settings:
        hits = [
            r for r in cat.rules if _matches(r, setting) and prod.id in cat.service_by_key(r.service).products
        ]
        if setting.kind == "snapin" and certificate_renewed_same_subject:
            exempt = [r for r in hits if r.certificate_exception]
            hits = [r for r in hits if not r.certificate_exception]
            if exempt and not hits:
                not_needed.append((setting.label, _certificate_exception_text(exempt)))
                continue
        for rule in hits:
            matches.setdefault(rule.service, []).append(RuleMatch(rule, setting))
        if not hits:
            not_needed.append((setting.label, _why_not(cat, setting)))
    services = []
    for key, found in matches.items():
        action = max((m.rule.action for m in found), key=_ACTION_RANK.__getitem__)
        after = tuple(dict.fromkeys(a for m in found for a in m.rule.start_after))
        services.append(ServiceAction(cat.service_by_key(key), prod, action, tuple(found), after))
    order = {s.key: i for i, s in enumerate(cat.stop_sequence(a.service for a in services))}
    services.sort(key=lambda s: order[s.service.key])
    dependents = _dependents(cat, prod, services)
    return RestartPlan(
        product=prod,
        changed=settings,
        services=tuple(services),
        not_needed=tuple(not_needed),
        certificate_renewed_same_subject=certificate_renewed_same_subject,
        steps=tuple(_steps(cat, prod, services, dependents)),
        dependents=tuple(dependents),
    )


def _dependents(cat: Catalog, product: Product, planned: Sequence[ServiceAction]) -> list[DependentService]:
    """Services that require a planned one: they must stop first and start again after it."""
    keys = {a.service.key for a in planned}
    found: dict[str, list[str]] = {}
    for action in planned:
        for dependent in cat.dependents_of(product, action.service):
            if dependent.key not in keys:
                found.setdefault(dependent.key, []).append(action.service.key)
    return [
        DependentService(cat.service_by_key(key), product, tuple(requires)) for key, requires in found.items()
    ]


def _steps(
    cat: Catalog,
    product: Product,
    services: Iterable[ServiceAction],
    dependents: Sequence[DependentService] = (),
) -> list[RestartStep]:
    """Stop dependents before what they require (the ``requires`` graph; the console's sequence between
    independent services), then start in reverse, a rule's prerequisites (e.g. MSSQLServer) first."""
    actions = {a.service.key: a for a in services}
    why = {d.service.key: f"requires {', '.join(d.requires)}" for d in dependents}
    stops = cat.stop_sequence([*(a.service for a in actions.values()), *(d.service for d in dependents)])
    starts: list[Service] = []
    for service in reversed(stops):
        action = actions.get(service.key)
        for key in action.start_after if action is not None else ():
            prereq = cat.service_by_key(key)
            if prereq not in starts:
                starts.append(prereq)
        if service not in starts:
            starts.append(service)
    steps = [("stop", s) for s in stops] + [("start", s) for s in starts]
    return [
        RestartStep(i, verb, service, product, why.get(service.key, ""))
        for i, (verb, service) in enumerate(steps, 1)
    ]


def _certificate_exception_text(rules: Sequence[RestartRule]) -> str:
    ids = ", ".join(r.id for r in rules)
    return (
        "the new certificate keeps the subject name and every setting but the expiration date, so "
        f"Appendix C's certificate exception applies (rules {ids})"
    )


def _why_not(cat: Catalog, setting: ChangedSetting) -> str:
    if setting.kind == "snapin":
        reason = cat.snapin_settings[setting.key].no_restart_reason
        if reason:
            return reason
    if setting.kind == "wmi":
        exempting = [
            r.id for r in cat.rules if r.wmi_class == setting.key and not r.covers_property(setting.prop)
        ]
        if exempting and setting.prop:
            return f"{setting.label} is exempt from the rules that name its class ({', '.join(exempting)})"
    return f"no rule in Appendix C requires a stop or restart for {setting.label}"


# ------------------------------------------------------------------------ steps a run executes
@dataclass(frozen=True)
class ServiceStep:
    """One planned stop or start. ``only_if_stopped_here``: start it only if this run stopped it (a
    dependent found stopped is left as found)."""

    verb: str  # "stop" | "start"
    service: Service
    why: str = ""
    only_if_stopped_here: bool = False


def plan_steps(plan: Mapping[str, Any], catalog: Catalog) -> tuple[Product, list[ServiceStep]]:
    """A sealed restart plan's steps, checked against the catalog (a usage error names what is wrong)."""
    try:
        product = catalog.product(str(plan["product"]))
        steps = []
        for item in list(plan["steps"]):
            verb = str(item["do"])
            if verb not in ("stop", "start"):
                raise UsageError(f"plan step {item.get('step')}: unknown action {verb!r}")
            service = catalog.service_by_key(str(item["key"]))
            if product.id not in service.products:
                raise UsageError(f"plan step {item.get('step')}: {service.key} is not a {product.id} service")
            steps.append(ServiceStep(verb, service, str(item.get("why", ""))))
    except (KeyError, TypeError) as exc:
        raise UsageError(f"plan is missing a field: {exc}") from None
    except OcspsError as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"plan names something the catalog does not know: {exc.message}") from None
    return product, steps


def service_restart_steps(catalog: Catalog, product: Product, service: Service) -> list[ServiceStep]:
    """Restart ``service`` with its dependents: dependents stop first, come back last, in reverse."""
    dependents = catalog.dependents_of(product, service)
    why = f"requires {service.key}"
    stops = [ServiceStep("stop", d, why) for d in dependents] + [ServiceStep("stop", service)]
    starts = [ServiceStep("start", service)] + [
        ServiceStep("start", d, why, only_if_stopped_here=True) for d in reversed(dependents)
    ]
    return stops + starts


def service_stop_steps(catalog: Catalog, product: Product, service: Service) -> list[ServiceStep]:
    """Stop ``service`` and, first, the services that require it, one by one in dependency order.

    For a stop that must take the dependents down (Windows refuses otherwise) without the cmdlet's
    ``-Force``: each dependent is stopped and reported on its own.
    """
    why = f"requires {service.key}"
    return [ServiceStep("stop", d, why) for d in catalog.dependents_of(product, service)] + [
        ServiceStep("stop", service)
    ]
