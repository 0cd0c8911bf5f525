"""Role deactivation plans (seed 001, OCS 2007 / R2): which roles go, in which order, with which LcsCmd
arguments and which precautions, as a document a change board approves.

The administration guide describes a wizard the administrator walks through by hand, reading a log after
every role. Its rules become checks here, so that no plan can break them:

* every role activated on a computer is deactivated together (a partial set is refused, naming what is
  missing); the order is the documented one (A/V Conferencing, Web Conferencing, Web Components, Front
  End; R2 adds UC applications, Application Host and Application Sharing before them), and a role listed
  in another's ``after`` goes first (Web Components only after Web Conferencing);
* services are stopped first, so that no user stays connected;
* the precautions (backups, notice, off-peak hours, drained sessions, exported certificates, compliance
  records, conference directories) are checklist items the operator acknowledges before anything runs.

What the guide does not document (the LcsCmd context names for most roles, the layout of its logs, the
order between role groups sharing a computer) is catalog data in ``roles.toml`` with the best-known
values, and the administrator can override it in the config file's ``[lcscmd]`` table; a plan says which
of its arguments are such best-known values (``ocsps.deactivation.facts``).

Nothing here talks to a server (the only reads are the packaged data and templates): plans are built
from a request plus facts, and checked again when they are run, so an edited (even re-approved) plan
that breaks a rule is refused before anything is sent. ``ocsps.deactivation.run`` does the running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from ocsps.catalog import Catalog, CatalogError, Precondition, Role, load_catalog
from ocsps.deactivation.facts import LcsCmdFacts, RoleCommand, check_lcscmd_overrides, load_lcscmd_facts
from ocsps.deactivation.state import StateReading, read_state_outcome
from ocsps.errors import UsageError
from ocsps.jsonout import to_builtins
from ocsps.shapes import convert

__all__ = [
    "DEACTIVATE",
    "PLAN_KIND",
    "STOP_SERVICES",
    "ChecklistItem",
    "DeactivationPlan",
    "DeactivationStep",
    "LcsCmdFacts",
    "PlanChangeDocument",
    "PlanDocument",
    "PlanStepDocument",
    "RoleCommand",
    "RoleInfo",
    "StateReading",
    "check_acknowledgements",
    "check_lcscmd_overrides",
    "check_plan",
    "choose_log_path",
    "list_roles",
    "load_lcscmd_facts",
    "order_roles",
    "plan_deactivation",
    "plan_document",
    "read_state_outcome",
]

PLAN_KIND = "deactivate"
STOP_SERVICES = "stop-services"
DEACTIVATE = "deactivate"

ALL_ROLES_LISTED = "all-roles-listed"


# ---------------------------------------------------------------------------------------------- plan model


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str
    live_check: str | None = None


@dataclass(frozen=True)
class DeactivationStep:
    """One step: stop every product service, or deactivate one role with exactly these arguments."""

    number: int
    do: str
    label: str
    role: str | None = None
    arguments: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    documented: bool = True
    arguments_source: str = "catalog"


class PlanStepDocument(msgspec.Struct, omit_defaults=True):
    """A step as the plan file writes it: the stop step has no role, arguments or sources at all."""

    step: int
    do: str
    label: str
    role: str | msgspec.UnsetType | None = msgspec.UNSET
    arguments: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    documented: bool | msgspec.UnsetType = msgspec.UNSET
    arguments_source: str | msgspec.UnsetType = msgspec.UNSET
    components: tuple[str, ...] = ()

    @classmethod
    def of(cls, step: DeactivationStep) -> PlanStepDocument:
        if step.do != DEACTIVATE:
            return cls(step.number, step.do, step.label)
        return cls(
            step.number,
            step.do,
            step.label,
            step.role,
            step.arguments,
            step.documented,
            step.arguments_source,
            step.components,
        )


class PlanChangeDocument(msgspec.Struct):
    id: str
    reason: str


class PlanDocument(msgspec.Struct):
    """The plan as ``--output`` saves it (sealed) and ``--json`` prints it; read back by ``from_json``."""

    computer: str
    product: str
    roles: tuple[str, ...]
    roles_source: str
    last_in_pool: bool | None
    lcscmd_path: str
    steps: tuple[PlanStepDocument, ...]
    checklist: tuple[ChecklistItem, ...]
    services_found: tuple[str, ...]
    notes: tuple[str, ...]
    change: PlanChangeDocument

    @classmethod
    def of(cls, plan: DeactivationPlan) -> PlanDocument:
        return cls(
            computer=plan.computer,
            product=plan.product,
            roles=plan.roles,
            roles_source=plan.roles_source,
            last_in_pool=plan.last_in_pool,
            lcscmd_path=plan.lcscmd_path,
            steps=tuple(PlanStepDocument.of(s) for s in plan.steps),
            checklist=plan.checklist,
            services_found=plan.services_found,
            notes=plan.notes,
            change=PlanChangeDocument(plan.change_id, plan.reason),
        )


@dataclass(frozen=True)
class DeactivationPlan:
    computer: str
    product: str
    roles: tuple[str, ...]
    roles_source: str  # "live": read from the server; "operator": named by the operator
    lcscmd_path: str
    steps: tuple[DeactivationStep, ...]
    checklist: tuple[ChecklistItem, ...]
    last_in_pool: bool | None = None
    notes: tuple[str, ...] = ()
    services_found: tuple[str, ...] = ()
    change_id: str = ""
    reason: str = ""

    @property
    def deactivations(self) -> tuple[DeactivationStep, ...]:
        return tuple(s for s in self.steps if s.do == DEACTIVATE)

    def step(self, number: int) -> DeactivationStep:
        for s in self.steps:
            if s.number == number:
                return s
        raise UsageError(f"the plan has no step {number}; it has steps 1 to {len(self.steps)}")

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DeactivationPlan:
        """Read a plan document; the shape is checked here, the rules by :func:`check_plan`."""
        shape = convert(doc, _PlanDoc, path="plan: ")
        steps = tuple(
            DeactivationStep(
                s.step, s.do, s.label, s.role, s.arguments, s.components, s.documented, s.arguments_source
            )
            for s in shape.steps
        )
        return cls(
            computer=shape.computer,
            product=shape.product,
            roles=shape.roles,
            roles_source=shape.roles_source,
            lcscmd_path=shape.lcscmd_path,
            steps=steps,
            checklist=tuple(ChecklistItem(c.id, c.text, c.live_check) for c in shape.checklist),
            last_in_pool=shape.last_in_pool,
            notes=shape.notes,
            services_found=shape.services_found,
            change_id=shape.change.id if shape.change else "",
            reason=shape.change.reason if shape.change else "",
        )


# Saved plan documents as read back. Unknown fields are ignored rather than refused: a plan written by a
# newer ocsps may carry more, and the seal, not the shape, is what proves a plan unchanged.
class _StepDoc(msgspec.Struct):
    step: int
    do: str
    label: str
    role: str | None = None
    arguments: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    documented: bool = True
    arguments_source: str = "catalog"


class _ChecklistDoc(msgspec.Struct):
    id: str
    text: str
    live_check: str | None = None


class _ChangeDoc(msgspec.Struct):
    id: str = ""
    reason: str = ""


class _PlanDoc(msgspec.Struct):
    computer: str
    product: str
    roles: tuple[str, ...]
    roles_source: str
    lcscmd_path: str
    steps: tuple[_StepDoc, ...]
    checklist: tuple[_ChecklistDoc, ...]
    last_in_pool: bool | None = None
    notes: tuple[str, ...] = ()
    services_found: tuple[str, ...] = ()
    change: _ChangeDoc | None = None


def plan_document(plan: DeactivationPlan) -> dict[str, Any]:
    """The plan as plain JSON values (the content :func:`ocsps.plans.sealed.save_plan` seals)."""
    document: dict[str, Any] = to_builtins(PlanDocument.of(plan))
    return document


# ---------------------------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class RoleInfo:
    """One role LcsCmd deactivates on a product, with the arguments a plan would use."""

    role: str
    label: str
    group: str
    lcscmd: tuple[str, ...]
    documented: bool
    source: str
    after: tuple[str, ...]
    preconditions: tuple[str, ...]


def list_roles(
    product: str, catalog: Catalog | None = None, facts: LcsCmdFacts | None = None
) -> list[RoleInfo]:
    """The product's roles in deactivation order, with their LcsCmd arguments (config overrides applied)."""
    cat = catalog or load_catalog()
    fx = facts or load_lcscmd_facts(cat)
    prod = cat.product(product)
    keys = order_roles([r.key for r in cat.roles.values() if prod.id in r.products], cat, fx)
    return [
        RoleInfo(
            role=key,
            label=cat.roles[key].label,
            group=cat.roles[key].group,
            lcscmd=fx.commands[key].args,
            documented=fx.commands[key].documented,
            source=fx.commands[key].source,
            after=cat.roles[key].after,
            preconditions=cat.role_groups[cat.roles[key].group].preconditions,
        )
        for key in keys
    ]


# ---------------------------------------------------------------------------------------------- planning


def order_roles(keys: Iterable[str], catalog: Catalog, facts: LcsCmdFacts) -> list[str]:
    """The documented order: by group (data), then role order; ``after`` rules are checked, not assumed."""
    roles = sorted(
        (catalog.roles[k] for k in dict.fromkeys(keys)),
        key=lambda r: (facts.group_order[r.group], r.order, r.key),
    )
    position = {r.key: i for i, r in enumerate(roles)}
    for role in roles:
        for first in role.after:
            if first in position and position[first] > position[role.key]:
                raise CatalogError(f"roles.toml orders {role.key} before {first}, which must go first")
    return [r.key for r in roles]


def _check_roles(keys: Sequence[str], product: str, catalog: Catalog, facts: LcsCmdFacts) -> None:
    valid = [r.key for r in catalog.roles.values() if product in r.products]
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise UsageError(f"unknown role {unknown[0]!r} for {product}; valid: {', '.join(valid)}")
    groups = {catalog.roles[k].group for k in keys}
    for group in sorted(groups):
        clash = sorted(g for g in facts.group_conflicts.get(group, ()) if g in groups)
        if clash:
            raise UsageError(
                f"{catalog.role_groups[group].label} and {catalog.role_groups[clash[0]].label} roles "
                "cannot share one computer; check the roles named"
            )


def _role_list(text: Iterable[str]) -> list[str]:
    return [part.strip() for item in text for part in item.split(",") if part.strip()]


def _checklist(
    keys: Sequence[str], source: str, last_in_pool: bool | None, catalog: Catalog, facts: LcsCmdFacts
) -> tuple[ChecklistItem, ...]:
    ids: list[str] = [ALL_ROLES_LISTED] if source == "operator" else []
    for key in keys:
        ids += catalog.role_groups[catalog.roles[key].group].preconditions
    for key in keys:
        role = catalog.roles[key]
        last = key in facts.pool_of_one or last_in_pool is not False
        if role.last_of_pool_precondition and last:
            ids.append(role.last_of_pool_precondition)
    items = []
    for pid in dict.fromkeys(ids):
        pre: Precondition | None = catalog.preconditions.get(pid)
        if pre is None:
            raise CatalogError(f"roles.toml names an unknown precondition {pid!r}")
        items.append(ChecklistItem(pre.id, pre.text, pre.live_check))
    return tuple(items)


def _deactivate_step(
    number: int, role: Role, computer: str, components: Sequence[str], facts: LcsCmdFacts
) -> DeactivationStep:
    command = facts.commands[role.key]
    chosen = tuple(components) if role.components else ()
    return DeactivationStep(
        number=number,
        do=DEACTIVATE,
        label=f"Deactivate {role.label}",
        role=role.key,
        arguments=facts.role_arguments(role, computer, chosen),
        components=chosen or role.components,
        documented=command.documented,
        arguments_source=command.source,
    )


def stop_services_label(product_name: str) -> str:
    return f"Stop every {product_name} service"


def plan_deactivation(
    computer: str,
    *,
    product: str,
    roles: Sequence[str] = (),
    all_roles: bool = False,
    reading: StateReading | None = None,
    services_found: Sequence[str] = (),
    components: Sequence[str] = (),
    components_found: Sequence[str] | None = None,
    last_in_pool: bool | None = None,
    change_id: str = "",
    reason: str = "",
    lcscmd_path: str | None = None,
    catalog: Catalog | None = None,
    facts: LcsCmdFacts | None = None,
) -> DeactivationPlan:
    """Build the ordered plan for every role on ``computer``, or refuse with a message naming why.

    ``reading`` is what a live state check told (None: there was no connection); with a reading that
    names the activated roles, ``roles`` must be exactly those (or empty with ``all_roles``); without
    one, the operator names them and the checklist asks them to confirm the list is complete.
    ``components_found`` are the Edge components whose services a live read found (None: not read);
    ``lcscmd_path`` is where a live read found LCSCmd.exe (None: the first known location).
    """
    from ocsps.hostname import check_host

    cat = catalog or load_catalog()
    fx = facts or load_lcscmd_facts(cat)
    prod = cat.product(product)
    if prod.deactivation != "lcscmd":
        lcscmd_products = ", ".join(p.id for p in cat.products.values() if p.deactivation == "lcscmd")
        raise UsageError(
            f"{prod.name} roles are not deactivated with LcsCmd (that is for {lcscmd_products}); "
            "Lync Server and later use Topology Builder"
        )
    computer = check_host(computer, "--computer")
    given = _role_list(roles)
    if given and all_roles:
        raise UsageError("give either --roles or --all, not both")
    notes: list[str] = []
    if reading is not None and reading.activated is not None:
        activated = list(reading.activated)
        if not activated:
            raise UsageError(f"no role is activated on {computer}: there is nothing to deactivate")
        if given:
            _check_roles(given, prod.id, cat, fx)
            extra = [k for k in given if k not in activated]
            if extra:
                raise UsageError(
                    f"not activated on {computer}: {', '.join(extra)}; activated: {', '.join(activated)}"
                )
            missing = [k for k in order_roles(activated, cat, fx) if k not in given]
            if missing:
                raise UsageError(
                    f"every role on a computer is deactivated together (seed 001); the plan leaves out "
                    f"{', '.join(missing)}: add them to --roles or use --all"
                )
        chosen, source = activated, "live"
        notes.append(f"Activated roles read from {computer} with LcsCmd's state check.")
    elif all_roles:
        why = reading.reason if reading is not None and reading.reason else "no connection to the server"
        raise UsageError(
            f"--all needs to know which roles are activated on {computer} ({why}); name them with --roles"
        )
    else:
        if not given:
            valid = ", ".join(r.key for r in cat.roles.values() if prod.id in r.products)
            raise UsageError(
                f"which roles are activated on {computer}? name them with --roles (valid: {valid}), "
                "or read them from the server with --host or --lab and --all"
            )
        chosen, source = given, "operator"
        _check_roles(chosen, prod.id, cat, fx)
        _check_dependencies(chosen, cat)
        if reading is not None and reading.reason:
            notes.append(f"The live state check could not tell the activated roles: {reading.reason}.")
        notes.append("The roles were named by the operator, not read from the server.")
    _check_roles(chosen, prod.id, cat, fx)
    ordered = order_roles(chosen, cat, fx)
    chosen_components = _components(components, ordered, cat, components_found)
    steps = [DeactivationStep(number=1, do=STOP_SERVICES, label=stop_services_label(prod.service_prefix))]
    for key in ordered:
        steps.append(_deactivate_step(len(steps) + 1, cat.roles[key], computer, chosen_components, fx))
    for step in steps[1:]:
        role = cat.roles[str(step.role)]
        if step.arguments_source == "config":
            notes.append(
                f"{role.label}: LcsCmd arguments come from the config file ([lcscmd.roles.{role.key}])."
            )
        elif not step.documented:
            notes.append(
                f"{role.label}: the LcsCmd arguments are best-known values no public source confirms; check "
                f"them before approval (override: [lcscmd.roles.{role.key}] args in the config file)."
            )
    if "path" in fx.overridden:
        notes.append("The LCSCmd.exe path comes from the config file.")
    if lcscmd_path is not None and lcscmd_path not in fx.locations:
        raise UsageError(f"LCSCmd.exe at {lcscmd_path!r} is not one of the known locations")
    return DeactivationPlan(
        computer=computer,
        product=prod.id,
        roles=tuple(ordered),
        roles_source=source,
        lcscmd_path=lcscmd_path or fx.path,
        steps=tuple(steps),
        checklist=_checklist(ordered, source, last_in_pool, cat, fx),
        last_in_pool=last_in_pool,
        notes=tuple(notes),
        services_found=tuple(services_found),
        change_id=change_id,
        reason=reason,
    )


def _check_dependencies(keys: Sequence[str], catalog: Catalog) -> None:
    """A role others depend on goes only with them, unless the server showed they are not activated.

    Seed 001: Web Conferencing depends on Web Components, so Web Components cannot be deactivated while
    Web Conferencing is still activated. A plan whose roles were named by the operator cannot tell, so it
    must name the dependent role too; a live read (which shows it is not activated) is the other way.
    """
    for key in keys:
        role = catalog.roles[key]
        left = [a for a in role.after if a not in keys and catalog.roles[a].group == role.group]
        if left:
            names = ", ".join(catalog.roles[a].label for a in left)
            raise UsageError(
                f"{names} depends on {role.label} and must be deactivated first (seed 001); the plan "
                f"leaves out {', '.join(left)}: add it to --roles, or read the activated roles from the "
                "server (--host or --lab with --all) so that ocsps can confirm it is not activated"
            )


def _components(
    given: Sequence[str], ordered: Sequence[str], catalog: Catalog, found: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The Edge components to deactivate: all of the server's, because an Edge server goes whole.

    Seed 001: deactivating an Edge server deactivates every edge role it runs. Without a live read the
    plan takes all three; a subset is accepted only when it is exactly what the server was seen to run.
    """
    chosen = _role_list(given)
    with_components = [catalog.roles[k] for k in ordered if catalog.roles[k].components]
    if not with_components:
        if chosen:
            raise UsageError("--components applies to the Edge Server role only")
        return ()
    valid = with_components[0].components
    folded = [c.upper() for c in chosen]
    unknown = [c for c in folded if c not in valid]
    if unknown:
        raise UsageError(f"unknown Edge component {unknown[0]!r}; valid: {', '.join(valid)}")
    present = [c for c in valid if c in {f.upper() for f in found or ()}]
    runs = tuple(present) if present else tuple(valid)
    if not chosen:
        return () if runs == tuple(valid) else runs
    picked = tuple(c for c in valid if c in folded)
    if picked != runs:
        left = [c for c in runs if c not in picked]
        where = (
            f"the server runs {', '.join(runs)}"
            if present
            else "without a live read every edge role counts as present"
        )
        detail = (
            f"--components {','.join(picked)} leaves out {', '.join(left)}"
            if left
            else f"--components {','.join(picked)} names edge roles the server does not run"
        )
        raise UsageError(
            f"deactivating an Edge server deactivates all its edge roles (seed 001); {detail} ({where}): "
            "omit --components, or read the server live (--host or --lab) to see which edge roles it runs"
        )
    return () if picked == tuple(valid) else picked


# ---------------------------------------------------------------------------------------------- checking


def check_plan(
    plan: DeactivationPlan, catalog: Catalog | None = None, facts: LcsCmdFacts | None = None
) -> DeactivationPlan:
    """Apply every planning rule again to a plan read from a file; refuse (UsageError) on the first break.

    A sealed plan was checked when it was written, but a plan accepted with ``--reapprove`` may have been
    edited, and the catalog or config file may have changed since: the runner sends nothing unless the
    plan still follows the rules and its arguments are what the current facts give.
    """
    from ocsps.hostname import check_host

    cat = catalog or load_catalog()
    fx = facts or load_lcscmd_facts(cat)
    prod = cat.product(plan.product)
    if prod.deactivation != "lcscmd":
        raise UsageError(f"the plan is for {prod.id}, whose roles are not deactivated with LcsCmd")
    check_host(plan.computer, "plan computer")
    numbers = [s.number for s in plan.steps]
    if numbers != list(range(1, len(plan.steps) + 1)):
        raise UsageError(f"the plan's steps must be numbered 1 to {len(plan.steps)} in order; got {numbers}")
    if not plan.steps or plan.steps[0].do != STOP_SERVICES:
        raise UsageError("step 1 must stop every service before any role is deactivated (seed 001)")
    for step in plan.steps[1:]:
        if step.do != DEACTIVATE:
            raise UsageError(f"step {step.number}: only step 1 stops services; got {step.do!r}")
    roles = [str(s.role) for s in plan.deactivations]
    if len(set(roles)) != len(roles):
        raise UsageError("the plan deactivates a role twice")
    if roles != list(plan.roles):
        raise UsageError("the plan's steps do not deactivate exactly the roles it lists, in that order")
    _check_roles(roles, prod.id, cat, fx)
    if plan.roles_source not in ("live", "operator"):
        raise UsageError(f"unknown roles_source {plan.roles_source!r}")
    if plan.roles_source == "operator":
        _check_dependencies(roles, cat)
    canonical = order_roles(roles, cat, fx)
    if roles != canonical:
        index = next(i for i, (a, b) in enumerate(zip(roles, canonical, strict=True)) if a != b)
        step = plan.deactivations[index]
        must = cat.roles[canonical[index]].label
        raise UsageError(
            f"out of order: step {step.number} deactivates {cat.roles[roles[index]].label} while "
            f"{must} must go first; the order is {', '.join(canonical)}"
        )
    if plan.lcscmd_path not in fx.locations:
        raise UsageError(
            f"the plan runs LCSCmd.exe from {plan.lcscmd_path!r}, the catalog and config give "
            f"{' or '.join(repr(p) for p in fx.locations)}; write the plan again"
        )
    for step in plan.deactivations:
        role = cat.roles[str(step.role)]
        components = step.components if role.components else ()
        if components and any(c not in role.components for c in components):
            raise UsageError(f"step {step.number}: unknown Edge components {', '.join(components)}")
        if plan.roles_source == "operator" and components and components != role.components:
            raise UsageError(
                f"step {step.number}: an Edge server goes whole (seed 001); a plan not read from the "
                f"server deactivates every edge role ({', '.join(role.components)}), not "
                f"{', '.join(components)}"
            )
        expected = fx.role_arguments(role, plan.computer, components)
        if step.arguments != expected:
            raise UsageError(
                f"step {step.number}: the LcsCmd arguments {' '.join(step.arguments)} are not what the "
                f"catalog and config file give for {role.key} ({' '.join(expected)}); write the plan again"
            )
    expected_items = _checklist(roles, plan.roles_source, plan.last_in_pool, cat, fx)
    have = {c.id for c in plan.checklist}
    lacking = [c.id for c in expected_items if c.id not in have]
    if lacking:
        raise UsageError(f"the plan's checklist lacks {', '.join(lacking)}; write the plan again")
    return plan


def check_acknowledgements(
    plan: DeactivationPlan, given: Iterable[str]
) -> tuple[tuple[ChecklistItem, ...], tuple[ChecklistItem, ...]]:
    """Split the checklist into (acknowledged, missing); an id that is not on the checklist is refused."""
    ids = _role_list(given)
    known = {c.id: c for c in plan.checklist}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UsageError(
            f"--ack {unknown[0]!r} is not on this plan's checklist; its items: {', '.join(known) or 'none'}"
        )
    acked = tuple(c for c in plan.checklist if c.id in ids)
    missing = tuple(c for c in plan.checklist if c.id not in ids)
    return acked, missing


def choose_log_path(facts: LcsCmdFacts, step: DeactivationStep, when: datetime) -> str:
    """A new log file per step and run, so that an old log can never be read as this run's result."""
    directory = facts.log_directory.rstrip("\\")
    stamp = when.strftime("%Y%m%d-%H%M%S-%f")
    return f"{directory}\\{facts.log_prefix}-{step.role}-s{step.number}-{stamp}Z.log"
