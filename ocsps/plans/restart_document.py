"""The restart plan as a document: what ``plan restart --json`` prints and ``--output`` seals.

The planner's types hold catalog objects (a service knows its names per product); the document holds the
names an administrator and ``restart --plan`` read. The shape is declared here as structs, written by
:func:`ocsps.jsonout.to_builtins`. A module of its own so that ``plan restart`` without ``--json`` or
``--output`` never loads msgspec.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ocsps.jsonout import to_builtins
from ocsps.plans.restart import DependentService, RestartPlan, RestartStep, RuleMatch, ServiceAction

__all__ = [
    "DependentDocument",
    "NotNeededDocument",
    "RestartPlanDocument",
    "RestartStepDocument",
    "RuleDocument",
    "ServiceDocument",
    "plan_document",
]


class RuleDocument(msgspec.Struct):
    """The Appendix C rule that put a service in the plan, cited so the answer can be checked."""

    id: str
    action: str
    setting: str
    source: str
    why: str

    @classmethod
    def of(cls, match: RuleMatch) -> RuleDocument:
        rule = match.rule
        return cls(rule.id, rule.action, match.setting.label, f"Appendix C, {rule.section}", rule.why)


class ServiceDocument(msgspec.Struct):
    key: str
    name: str | None
    display_name: str
    action: str
    start_after: tuple[str, ...]
    rules: tuple[RuleDocument, ...]

    @classmethod
    def of(cls, entry: ServiceAction) -> ServiceDocument:
        service = entry.service
        return cls(
            service.key,
            service.name,
            service.display_name(entry.product),
            entry.action,
            entry.start_after,
            tuple(RuleDocument.of(m) for m in entry.rules),
        )


class DependentDocument(msgspec.Struct):
    key: str
    name: str | None
    display_name: str
    requires: tuple[str, ...]

    @classmethod
    def of(cls, entry: DependentService) -> DependentDocument:
        service = entry.service
        return cls(service.key, service.name, service.display_name(entry.product), entry.requires)


class RestartStepDocument(msgspec.Struct, omit_defaults=True):
    """One stop or start; ``why`` only for a service stopped because it requires a planned one."""

    step: int
    do: str
    key: str
    name: str | None
    display_name: str
    why: str = ""

    @classmethod
    def of(cls, step: RestartStep) -> RestartStepDocument:
        service = step.service
        return cls(
            step.number, step.verb, service.key, service.name, service.display_name(step.product), step.why
        )


class NotNeededDocument(msgspec.Struct):
    setting: str
    why: str


class RestartPlanDocument(msgspec.Struct):
    product: str
    changed: tuple[str, ...]
    certificate_renewed_same_subject: bool
    services: tuple[ServiceDocument, ...]
    dependents: tuple[DependentDocument, ...]
    steps: tuple[RestartStepDocument, ...]
    not_needed: tuple[NotNeededDocument, ...]

    @classmethod
    def of(cls, plan: RestartPlan) -> RestartPlanDocument:
        return cls(
            product=plan.product.id,
            changed=tuple(c.label for c in plan.changed),
            certificate_renewed_same_subject=plan.certificate_renewed_same_subject,
            services=tuple(ServiceDocument.of(s) for s in plan.services),
            dependents=tuple(DependentDocument.of(d) for d in plan.dependents),
            steps=tuple(RestartStepDocument.of(s) for s in plan.steps),
            not_needed=tuple(NotNeededDocument(s, why) for s, why in plan.not_needed),
        )


def plan_document(plan: RestartPlan) -> dict[str, Any]:
    """The plan as plain JSON values: the content :func:`ocsps.plans.sealed.save_plan` seals."""
    document: dict[str, Any] = to_builtins(RestartPlanDocument.of(plan))
    return document
