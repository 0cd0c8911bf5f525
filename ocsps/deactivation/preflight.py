"""What a deactivation confirms on the server before anything changes, with read-only queries only.

A sealed plan names one computer, and LcsCmd's arguments carry that name: run anywhere else, step 1
would stop the wrong server's services and LcsCmd would act on the named one from afar. So the computer
that answers (every script returns its own FQDN) must be the plan's computer, or nothing goes further.
Then every fact the steps rely on is read before step 1 stops anything:

* where LCSCmd.exe is: looked for among the known locations (catalog data; the OCS 2007 folder is
  documented, the R2 one is not) or the one the config file names, and recorded;
* which roles LcsCmd's state check shows activated (the runner compares them with the plan);
* which services are installed (the runner compares them with the plan's roles and what the plan saw).

``plan`` uses the same reads, so a plan says "read from ocs01" only when ocs01 answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ocsps.deactivation.facts import LcsCmdFacts
from ocsps.deactivation.state import StateReading, read_state_outcome
from ocsps.errors import RemoteError, UsageError
from ocsps.results import ParseError, ServiceStatus, parse_lcscmd_outcome
from ocsps.results.base import PropertyReader, host_name

if TYPE_CHECKING:
    from ocsps.catalog import Catalog, Product
    from ocsps.deactivation.plan import DeactivationPlan
    from ocsps.remote.server import Server

__all__ = [
    "LcsCmdLocation",
    "LivePlan",
    "LiveRead",
    "components_present",
    "confirm_computer",
    "locate_lcscmd",
    "plan_deactivation_live",
    "read_server",
    "read_state",
    "same_computer",
]

PROBE = "check-deactivation-ready"


@dataclass(frozen=True)
class LcsCmdLocation:
    """Where LCSCmd.exe was found (None: at none of ``tried``), and the computer that answered."""

    path: str | None
    tried: tuple[str, ...]
    computer: str | None


def same_computer(answered: str | None, named: str) -> bool:
    """The answering computer is the named one: the whole FQDN, or the first label when only that is named.

    Case and a trailing dot do not count. A name without a dot names a computer without its domain, so
    it is compared with the first label of the answer; a name with a domain must match whole.
    """
    if not answered:
        return False
    got = answered.strip().rstrip(".").casefold()
    want = named.strip().rstrip(".").casefold()
    return got == want if "." in want else got.split(".", 1)[0] == want


def confirm_computer(answered: str | None, named: str, *, what: str) -> None:
    """Refuse (exit 2) unless ``named`` answered; only read-only queries were sent to find out."""
    if same_computer(answered, named):
        return
    if not answered:
        raise UsageError(
            f"the server did not say which computer it is, so it cannot be confirmed as {named}; "
            f"nothing was changed ({what})",
            host=named,
        )
    raise UsageError(
        f"the computer that answered is {answered}, not {named}; {what}: nothing was changed, and only "
        "read-only queries were sent",
        host=named,
        hint=f"connect to {named} itself (check --host, --profile and the connect address)",
    )


def locate_lcscmd(
    server: Server, locations: tuple[str, ...], *, timeout: float | None = None
) -> LcsCmdLocation:
    """Look for LCSCmd.exe at each known location in order (read-only ``Test-Path``), stop at the first."""
    computer: str | None = None
    tried: list[str] = []
    for path in locations:
        result = server.session.run(server.render(PROBE, LcsCmdPath=path), timeout=timeout).raise_for_errors()
        if not result.output:
            raise ParseError("LcsCmdPresence", "LcsCmdPresent", "the LCSCmd.exe read returned nothing")
        reader = PropertyReader(result.output[0], "LcsCmdPresence")
        computer = computer or host_name(reader.text("ComputerName"))
        tried.append(path)
        if reader.boolean("LcsCmdPresent", required=True):
            return LcsCmdLocation(path, tuple(tried), computer)
    return LcsCmdLocation(None, tuple(tried), computer)


def read_state(
    server: Server,
    computer: str,
    facts: LcsCmdFacts,
    *,
    lcscmd_path: str,
    check_role: str = "SE",
    when: datetime | None = None,
    timeout: float | None = None,
) -> StateReading:
    """Ask LcsCmd which roles are activated; a failure is a reading that cannot tell, never a guess."""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S-%fZ")
    rendered = server.render(
        "lcscmd-state",
        LcsCmdPath=lcscmd_path,
        Arguments=facts.state_arguments(computer, check_role),
        LogPath=f"{facts.log_directory.rstrip(chr(92))}\\{facts.log_prefix}-state-{stamp}.log",
    )
    try:
        result = server.session.run(rendered, timeout=timeout).raise_for_errors()
        if not result.output:
            return StateReading(None, reason="LcsCmd's state check returned nothing")
        outcome = parse_lcscmd_outcome(result.output[0])
    except (RemoteError, ParseError) as exc:
        return StateReading(None, reason=f"LcsCmd's state check failed: {exc}")
    return read_state_outcome(outcome, server.product.id, server.catalog, facts)


def components_present(
    catalog: Catalog, product: Product, statuses: tuple[ServiceStatus, ...], facts: LcsCmdFacts
) -> tuple[str, ...]:
    """Edge components whose services are installed (seed 001: an Edge server goes with all of them)."""
    from ocsps.checks.common import present_services

    found = present_services(catalog, product, statuses)
    return tuple(c for c, keys in facts.component_services.items() if any(k in found for k in keys))


@dataclass(frozen=True)
class LiveRead:
    """Everything read from the server before a plan is written or run; nothing was changed."""

    computer: str
    lcscmd: LcsCmdLocation
    reading: StateReading
    statuses: tuple[ServiceStatus, ...]
    components: tuple[str, ...]

    @property
    def service_names(self) -> list[str]:
        return [s.display_name or s.name for s in self.statuses]


def read_server(
    server: Server,
    computer: str,
    facts: LcsCmdFacts,
    *,
    check_role: str = "SE",
    locations: tuple[str, ...] | None = None,
    what: str = "the roles were not read",
    when: datetime | None = None,
    timeout: float | None = None,
) -> LiveRead:
    """Confirm the computer, find LCSCmd.exe, read the activated roles and the installed services."""
    location = locate_lcscmd(server, locations or facts.locations, timeout=timeout)
    confirm_computer(location.computer, computer, what=what)
    if location.path is None:
        reading = StateReading(None, reason=f"LCSCmd.exe was not found at {' or '.join(location.tried)}")
    else:
        reading = read_state(
            server,
            computer,
            facts,
            lcscmd_path=location.path,
            check_role=check_role,
            when=when,
            timeout=timeout,
        )
    statuses = tuple(server.services(timeout=timeout))
    return LiveRead(
        computer=str(location.computer),
        lcscmd=location,
        reading=reading,
        statuses=statuses,
        components=components_present(server.catalog, server.product, statuses, facts),
    )


@dataclass(frozen=True)
class LivePlan:
    """A plan written from what the server showed, with that reading (for a report of what was seen)."""

    plan: DeactivationPlan
    live: LiveRead


def plan_deactivation_live(
    server: Server,
    computer: str,
    facts: LcsCmdFacts,
    *,
    roles: Sequence[str] = (),
    all_roles: bool = False,
    components: Sequence[str] = (),
    last_in_pool: bool | None = None,
    change_id: str = "",
    reason: str = "",
    check_role: str = "SE",
    timeout: float | None = None,
) -> LivePlan:
    """Read ``computer`` through ``server`` (read-only), then plan its deactivation from what it showed.

    What ``ocsps deactivate plan --host`` does: the plan is for the server's product, its roles checked
    against LcsCmd's state check, its Edge components against the services found, and it records where
    LCSCmd.exe was found. Refusals are :func:`ocsps.deactivation.plan.plan_deactivation`'s.
    """
    from ocsps.deactivation.plan import plan_deactivation

    live = read_server(server, computer, facts, check_role=check_role, timeout=timeout)
    plan = plan_deactivation(
        computer,
        product=server.product.id,
        roles=roles,
        all_roles=all_roles,
        reading=live.reading,
        services_found=live.service_names,
        components=components,
        components_found=live.components,
        last_in_pool=last_in_pool,
        change_id=change_id,
        reason=reason,
        lcscmd_path=live.lcscmd.path,
        facts=facts,
    )
    return LivePlan(plan, live)
