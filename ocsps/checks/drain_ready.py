"""drain-ready: what a graceful drain needs before ``Stop-CsWindowsService -Graceful`` is sent.

A drain that cannot be watched is a blind stop: without Performance Monitor Users membership the
ActivityLevel comes back empty, and ocsps would have to wait out the deadline. The product module must
load (a remote session is plain PowerShell), the service must exist and run, and the server's PowerShell
must be at least the level the product's scripts are written for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ocsps.checks.common import objects
from ocsps.checks.model import ActionOutput, Check, CheckContext, CheckNotRun, Finding, Request
from ocsps.results import ServiceState, parse_activity_level
from ocsps.results.base import PropertyReader, enum_token

__all__ = ["CHECK", "DrainFacts", "DrainReadyCheck", "parse_drain_readiness"]

KIND = "DrainReadiness"


@dataclass(frozen=True)
class DrainFacts:
    user: str
    in_perfmon_group: bool | None
    is_administrator: bool | None
    powershell: str | None
    module_loaded: bool
    module_error: str = ""
    service: str | None = None
    service_exists: bool | None = None
    service_state: ServiceState | None = None
    activity: str | None = None
    """The ActivityLevel text as the server sent it."""


def parse_drain_readiness(obj: object) -> DrainFacts:
    """The one object the check-drain-ready template emits."""
    reader = PropertyReader(obj, KIND)
    found = reader.lookup("ServiceStatus")
    state: ServiceState | None = None
    if found is not None and found[1] not in (None, ""):
        token = reader.convert(found[0], found[1], enum_token)
        state = ServiceState.from_token(token)
    return DrainFacts(
        user=reader.text("UserName") or "the session's user",
        in_perfmon_group=reader.boolean("InPerfmonGroup"),
        is_administrator=reader.boolean("IsAdministrator"),
        powershell=reader.text("PSVersion") or None,
        module_loaded=bool(reader.boolean("ModuleLoaded", required=True)),
        service=reader.text("ServiceName") or None,
        service_exists=reader.boolean("ServiceExists"),
        service_state=state,
        activity=reader.text("ActivityLevel"),
    )


def _version(text: str) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


class DrainReadyCheck(Check[DrainFacts]):
    name = "drain-ready"

    def validate(self, ctx: CheckContext) -> None:
        if ctx.options.service:
            ctx.catalog.find_service(ctx.product, ctx.options.service)

    def _service_name(self, ctx: CheckContext) -> str | None:
        if not ctx.options.service:
            return None
        service = ctx.catalog.find_service(ctx.product, ctx.options.service)
        return service.name or service.key

    def requests(self, ctx: CheckContext) -> Sequence[Request]:
        name = self._service_name(ctx)
        return [Request("readiness", "check-drain-ready", {"Name": name} if name else {})]

    def facts(self, outputs: Mapping[str, ActionOutput], ctx: CheckContext) -> DrainFacts:
        found = objects(outputs, "readiness", "check-drain-ready")
        if not found:
            raise CheckNotRun("unreadable", error="the readiness read returned nothing")
        return parse_drain_readiness(found[0])

    def session_failed(self, error: str, ctx: CheckContext) -> list[Finding] | None:
        """A session opens by importing the product module: failing there is this check's own finding."""
        return [ctx.finding("module-loads", "missing", module=ctx.product.module, error=error)]

    def evaluate(self, facts: DrainFacts, ctx: CheckContext) -> list[Finding]:
        module = ctx.product.module
        found = [self._activity(facts, ctx)]
        if facts.module_loaded:
            found.append(ctx.finding("module-loads", "ok", module=module))
        else:
            error = facts.module_error or "Get-CsWindowsService is not available in the session"
            found.append(ctx.finding("module-loads", "missing", module=module, error=error))
        found.append(self._service(facts, ctx))
        found.append(self._powershell(facts, ctx))
        return found

    def _activity(self, facts: DrainFacts, ctx: CheckContext) -> Finding:
        user = facts.user
        if facts.in_perfmon_group is None:
            return ctx.finding("activity-readable", "unknown", user=user)
        if not facts.in_perfmon_group:
            return ctx.finding(
                "activity-readable", "admin-only" if facts.is_administrator else "missing", user=user
            )
        running = facts.service_state is ServiceState.RUNNING
        if running and parse_activity_level(facts.activity).is_empty:
            return ctx.finding("activity-readable", "empty", user=user, service=facts.service)
        return ctx.finding("activity-readable", "ok", user=user)

    def _service(self, facts: DrainFacts, ctx: CheckContext) -> Finding:
        name = facts.service or self._service_name(ctx)
        if name is None:
            return ctx.finding("service-running", "not-named")
        if facts.service_exists is None:
            return ctx.finding("service-running", "unknown", service=name)
        if not facts.service_exists:
            return ctx.finding("service-running", "missing", service=name)
        state = facts.service_state or ServiceState.UNKNOWN
        if state is ServiceState.RUNNING:
            return ctx.finding("service-running", "ok", service=name)
        if state is ServiceState.PAUSED:
            return ctx.finding("service-running", "paused", service=name)
        return ctx.finding("service-running", "stopped", service=name, state=state.value)

    def _powershell(self, facts: DrainFacts, ctx: CheckContext) -> Finding:
        expected = ctx.product.powershell
        actual = None if facts.powershell is None else _version(facts.powershell)
        if actual is None:
            return ctx.finding("powershell-version", "unknown", expected=expected)
        shown = f"{actual[0]}.{actual[1]}"
        wanted = ctx.product.powershell_tuple
        outcome = "older" if actual < (wanted[0], wanted[1] if len(wanted) > 1 else 0) else "ok"
        return ctx.finding("powershell-version", outcome, expected=expected, actual=shown)


CHECK = DrainReadyCheck()
