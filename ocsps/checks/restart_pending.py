"""restart-pending (seed 000): settings that changed under running services, and the restarts they need.

What the running services started with cannot be read from an OCS server, so this check does not pretend
to: it compares the server's current WMI values with a baseline the administrator captured (for example
when the services last started), adds the settings named with ``--changed``, and runs the Appendix C
restart planner on the lot. A changed setting Appendix C does not mention is reported as such, never as
"no restart needed".
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ocsps.checks.common import parse_each, present_services
from ocsps.checks.model import ActionOutput, Check, CheckContext, Finding, Request
from ocsps.errors import UsageError
from ocsps.plans.restart import plan_restart, resolve_setting
from ocsps.results import parse_service_status, parse_wmi_setting
from ocsps.results.base import to_text

__all__ = ["CHECK", "RestartFacts", "RestartPendingCheck", "baseline_from_document"]


@dataclass(frozen=True)
class SettingValue:
    """A baseline value and what the server holds now; ``error`` says why it could not be read."""

    setting: str  # Class.Property
    baseline: object
    current: object = None
    error: str | None = None
    changed: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        changed = not self.error and _norm(self.baseline) != _norm(self.current)
        object.__setattr__(self, "changed", changed)


@dataclass(frozen=True)
class RestartFacts:
    settings: tuple[SettingValue, ...]
    services: tuple[str, ...] | None = None  # catalog keys running here; None: the list could not be read


def _norm(value: object) -> object:
    """Values compare as text (WMI sends numbers as numbers or text), lists item by item."""
    if isinstance(value, list | tuple):
        return tuple(_norm(v) for v in value)
    text = to_text(value)
    return None if text is None else text.strip()


def baseline_from_document(doc: object, source: str) -> dict[str, dict[str, object]]:
    """``{Class: {Property: value}}`` from a parsed TOML or JSON baseline; anything else is a usage error."""
    if not isinstance(doc, Mapping) or not doc:
        raise UsageError(f"{source}: a baseline is a table per WMI class of Property = value")
    baseline: dict[str, dict[str, object]] = {}
    for cls, props in doc.items():
        if not isinstance(props, Mapping) or not props:
            raise UsageError(f"{source}: [{cls}] must be a table of Property = value")
        for prop, value in props.items():
            if isinstance(value, Mapping):
                raise UsageError(f"{source}: {cls}.{prop} must be a value, not a table")
        baseline[str(cls)] = {str(k): v for k, v in props.items()}
    return baseline


def _label_list(settings: Sequence[str]) -> str:
    return " ".join(f"--changed {shlex.quote(s)}" for s in settings)


class RestartPendingCheck(Check[RestartFacts]):
    name = "restart-pending"

    def validate(self, ctx: CheckContext) -> None:
        for text in ctx.options.changed:
            resolve_setting(ctx.catalog, text)

    def requests(self, ctx: CheckContext) -> Sequence[Request]:
        if not ctx.options.changed and ctx.options.baseline is None:
            return []
        return [Request("services", "status")] + [
            Request(f"wmi:{cls}", "wmi-setting", {"Class": cls, "Property": tuple(props)})
            for cls, props in (ctx.options.baseline or {}).items()
        ]

    def facts(self, outputs: Mapping[str, ActionOutput], ctx: CheckContext) -> RestartFacts:
        settings: list[SettingValue] = []
        for cls, props in (ctx.options.baseline or {}).items():
            out = outputs.get(f"wmi:{cls}")
            error = "no answer" if out is None else out.error
            current: dict[str, object] = {}
            if out is not None and not error:
                for obj in out.objects:
                    setting = parse_wmi_setting(obj)
                    current.setdefault(setting.property.casefold(), setting.value)
            for prop, value in props.items():
                label = f"{cls}.{prop}"
                if error:
                    settings.append(SettingValue(label, value, error=error))
                elif prop.casefold() not in current:
                    settings.append(SettingValue(label, value, error="the server returned no such property"))
                else:
                    settings.append(SettingValue(label, value, current[prop.casefold()]))
        listed = outputs.get("services")
        services: tuple[str, ...] | None = None
        if listed is not None and not listed.error:
            statuses = parse_each(listed.objects, parse_service_status)
            services = tuple(present_services(ctx.catalog, ctx.product, statuses))
        return RestartFacts(tuple(settings), services)

    def evaluate(self, facts: RestartFacts, ctx: CheckContext) -> list[Finding]:
        options = ctx.options
        if not options.changed and options.baseline is None:
            return [ctx.finding("inputs", "none", note=ctx.spec.setting("live_note"))]
        diffs = [s.setting for s in facts.settings if s.changed]
        changed = list(dict.fromkeys([*options.changed, *diffs]))
        found: list[Finding] = []
        if changed:
            found.append(ctx.finding("inputs", "changed", list=changed))
        else:
            found.append(ctx.finding("inputs", "unchanged", count=len(facts.settings)))
        found += [
            ctx.finding("baseline-read", "unreadable", setting=s.setting, error=s.error)
            for s in facts.settings
            if s.error
        ]
        known: list[str] = []
        for text in changed:
            try:
                resolve_setting(ctx.catalog, text)
            except UsageError:
                found.append(ctx.finding("not-covered", "unknown", setting=text))
                continue
            known.append(text)
        if known:
            found += self._plan(known, facts.services, ctx)
        return found

    def _plan(self, changed: list[str], here: tuple[str, ...] | None, ctx: CheckContext) -> list[Finding]:
        """The planner's answer, limited to services that run here (all of them if that is unknown)."""
        plan = plan_restart(
            changed,
            product=ctx.product.id,
            certificate_renewed_same_subject=ctx.options.certificate_renewed_same_subject,
            catalog=ctx.catalog,
        )
        labels = ctx.spec.setting("action_labels")
        found = []
        absent = [a for a in plan.services if here is not None and a.service.key not in here]
        for action in plan.services:
            if action in absent:
                continue
            settings = list(dict.fromkeys(m.setting.label for m in action.rules))
            sections = list(dict.fromkeys(m.rule.section for m in action.rules))
            found.append(
                ctx.finding(
                    "restart",
                    "needed",
                    service=action.service.display_name(ctx.product),
                    action=labels.get(action.action, action.action),
                    settings=settings,
                    section="; ".join(sections),
                    changed_args=_label_list(changed),
                )
            )
        found += [
            ctx.finding("restart", "not-needed", setting=setting, why=why, section="no rule applies")
            for setting, why in plan.not_needed
        ]
        if absent:
            names = [a.service.display_name(ctx.product) for a in absent]
            where = "; ".join(dict.fromkeys(m.rule.section for a in absent for m in a.rules))
            found.append(
                ctx.finding(
                    "restart", "absent", services=names, section=where, changed_args=_label_list(changed)
                )
            )
        return found


CHECK = RestartPendingCheck()
