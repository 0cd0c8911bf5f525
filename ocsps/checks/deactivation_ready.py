"""deactivation-ready (seed 001): the preconditions of an LcsCmd role deactivation that a server can show.

The preconditions come straight from the catalog's roles.toml (the same list a deactivation plan asks the
operator to acknowledge). Few of them are visible on the server: the roles present (from the services
that run), LCSCmd.exe being installed, and idle services where the product reports activity. Everything
else is listed with the reason it cannot be checked live, so that "no failure" is never read as "all
preconditions met".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ocsps.catalog import Role
from ocsps.checks.common import objects, parse_each, present_services
from ocsps.checks.model import ActionOutput, Check, CheckContext, CheckNotRun, Finding, Request
from ocsps.errors import UsageError
from ocsps.results import ServiceStatus, parse_service_status
from ocsps.results.base import PropertyReader

__all__ = ["CHECK", "DeactivationFacts", "DeactivationReadyCheck"]

KIND = "LcsCmdPresence"


@dataclass(frozen=True)
class DeactivationFacts:
    services: Mapping[str, ServiceStatus]  # catalog key -> status, for services found on the computer
    lcscmd_path: str
    lcscmd_present: bool


def _roles_for(ctx: CheckContext) -> list[Role]:
    return [r for r in ctx.catalog.roles.values() if ctx.product.id in r.products]


def _locations(ctx: CheckContext) -> tuple[str, ...]:
    """Where LCSCmd.exe is looked for, in order: the locations a deactivation run tries (the config
    file's ``[lcscmd] path`` when it names one, as the CLI passes it)."""
    from ocsps.deactivation.facts import load_lcscmd_facts

    return ctx.options.lcscmd_locations or load_lcscmd_facts(ctx.catalog).locations


def _lcscmd_key(index: int) -> str:
    return "lcscmd" if index == 0 else f"lcscmd:{index}"


class DeactivationReadyCheck(Check[DeactivationFacts]):
    name = "deactivation-ready"

    def validate(self, ctx: CheckContext) -> None:
        valid = {r.key for r in _roles_for(ctx)}
        for key in ctx.options.roles:
            if key not in valid:
                raise UsageError(
                    f"unknown role {key!r} for {ctx.product.id}; valid: {', '.join(sorted(valid))}"
                )

    def requests(self, ctx: CheckContext) -> Sequence[Request]:
        return [
            Request("services", "status"),
            *(
                Request(_lcscmd_key(i), "check-deactivation-ready", {"LcsCmdPath": path})
                for i, path in enumerate(_locations(ctx))
            ),
        ]

    def facts(self, outputs: Mapping[str, ActionOutput], ctx: CheckContext) -> DeactivationFacts:
        """LCSCmd.exe is present when one known location has it (the run looks at each, in this order)."""
        statuses = parse_each(objects(outputs, "services", "status"), parse_service_status)
        looked: list[str] = []
        unanswered: list[str] = []
        for i, path in enumerate(_locations(ctx)):
            answer = outputs.get(_lcscmd_key(i))
            if answer is None or answer.error or not answer.objects:
                unanswered.append(path)
                continue
            reader = PropertyReader(answer.objects[0], KIND)
            looked.append(reader.required_text("LcsCmdPath"))
            if reader.boolean("LcsCmdPresent", required=True):
                return DeactivationFacts(
                    present_services(ctx.catalog, ctx.product, statuses), looked[-1], lcscmd_present=True
                )
        if unanswered:
            raise CheckNotRun("unreadable", error=f"the LCSCmd.exe read returned nothing for {unanswered[0]}")
        return DeactivationFacts(
            present_services(ctx.catalog, ctx.product, statuses), " or ".join(looked), lcscmd_present=False
        )

    def evaluate(self, facts: DeactivationFacts, ctx: CheckContext) -> list[Finding]:
        roles, found = self._roles(facts, ctx)
        found.append(
            ctx.finding("lcscmd", "ok" if facts.lcscmd_present else "missing", path=facts.lcscmd_path)
        )
        found += self._preconditions(roles, facts, ctx)
        return found

    # ------------------------------------------------------------------ roles
    def _roles(self, facts: DeactivationFacts, ctx: CheckContext) -> tuple[list[Role], list[Finding]]:
        candidates = _roles_for(ctx)
        valid = ", ".join(r.key for r in candidates)
        found: list[Finding] = []
        if ctx.options.roles:
            chosen = [ctx.catalog.roles[k] for k in ctx.options.roles]
            for role in chosen:
                if not role.services:
                    found.append(ctx.finding("roles", "undetectable", role=role.label, valid=valid))
                elif not any(s in facts.services for s in role.services):
                    found.append(
                        ctx.finding(
                            "roles", "missing", role=role.label, services=list(role.services), valid=valid
                        )
                    )
        else:
            chosen = [r for r in candidates if r.services and any(s in facts.services for s in r.services)]
            groups = {r.group for r in chosen}
            for role in candidates:
                if not role.services and role.group in groups:
                    found.append(ctx.finding("roles", "undetectable", role=role.label, valid=valid))
        if not chosen:
            return [], [ctx.finding("roles", "none", valid=valid), *found]
        if not ctx.options.roles:
            found += [
                ctx.finding("roles", "ambiguous", roles=" and ".join(r.label for r in members), valid=valid)
                for members in self._ambiguous(chosen)
            ]
        found.insert(0, ctx.finding("roles", "found", roles=self._order_text(chosen, ctx), valid=valid))
        return chosen, found

    def _order_text(self, roles: Sequence[Role], ctx: CheckContext) -> str:
        """Roles per group (each in deactivation order), groups by their first role's order.

        Roles found by the very same services (Standard Edition or Enterprise Front End) are shown once, as
        alternatives, under the group that has more of this computer's roles.
        """
        size: dict[str, int] = {}
        for role in roles:
            size[role.group] = size.get(role.group, 0) + 1
        alternatives: dict[str, list[Role]] = {}
        dropped: set[str] = set()
        for members in self._ambiguous(roles):
            keep = max(members, key=lambda r: size[r.group])
            alternatives[keep.key] = [m for m in members if m is not keep]
            dropped |= {m.key for m in members if m is not keep}
        groups: dict[str, list[str]] = {}
        for role in sorted(roles, key=lambda r: (r.order, r.key)):
            if role.key in dropped:
                continue
            label = " or ".join([role.label] + [a.label for a in alternatives.get(role.key, [])])
            groups.setdefault(role.group, []).append(label)
        return "; ".join(
            f"{ctx.catalog.role_groups[g].label}: {', '.join(labels)}" for g, labels in groups.items()
        )

    def _ambiguous(self, roles: Sequence[Role]) -> list[list[Role]]:
        """Roles found by the very same services (Standard Edition and Enterprise Front End)."""
        same: dict[frozenset[str], list[Role]] = {}
        for role in roles:
            same.setdefault(frozenset(role.services), []).append(role)
        return [members for members in same.values() if len(members) > 1]

    # ------------------------------------------------------------------ preconditions
    def _preconditions(
        self, roles: Sequence[Role], facts: DeactivationFacts, ctx: CheckContext
    ) -> list[Finding]:
        wanted: list[str] = []
        for role in roles:
            wanted += ctx.catalog.role_groups[role.group].preconditions
            if role.last_of_pool_precondition:
                wanted.append(role.last_of_pool_precondition)
        not_live: Mapping[str, str] = ctx.spec.setting("not_live")
        found = []
        for pid in dict.fromkeys(wanted):
            pre = ctx.catalog.preconditions[pid]
            why = not_live.get(pid, "no live check is known for it")
            if pre.live_check == "activity":
                found.append(self._activity(pre.id, pre.text, why, roles, facts, ctx))
            else:
                found.append(ctx.finding("manual", "acknowledge", precondition=pid, text=pre.text, why=why))
        return found

    def _activity(
        self,
        pid: str,
        text: str,
        why: str,
        roles: Sequence[Role],
        facts: DeactivationFacts,
        ctx: CheckContext,
    ) -> Finding:
        keys = list(dict.fromkeys(s for r in roles for s in r.services if s in facts.services))
        statuses = [facts.services[k] for k in keys]
        readable = [s for s in statuses if s.activity is not None and not s.activity.is_empty]
        values: dict[str, object] = {"precondition": pid, "text": text}
        if not statuses or len(readable) != len(statuses):
            return ctx.finding("activity", "unknown", why=why, **values)
        busy = [
            f"{s.name} ({s.activity.raw})"
            for s in readable
            if s.activity is not None and not s.activity.is_idle
        ]
        if busy:
            return ctx.finding("activity", "busy", busy=busy, **values)
        return ctx.finding("activity", "idle", services=[s.name for s in statuses], **values)


CHECK = DeactivationReadyCheck()
