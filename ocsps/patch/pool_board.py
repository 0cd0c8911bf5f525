"""A pool's patch as change-board scripts run on each member: one two-part script per member, plus the order.

``ocsps patch pool`` rolls the pool over PowerShell Remoting; a change board that wants the operator at
each console gets the same roll as files instead. Each member's script is the two-part script of a server
outside a pool (``ocsps.patch.board``: preflight, hold, install, restart; Part 2 verifies and restores),
with the out-of-service step replaced by the pool's own method: Invoke-CsComputerFailOver in Part 1 and
Invoke-CsComputerFailBack at the end of Part 2 on Skype for Business Server; the drain of each service and
its start again on Lync Server 2013 and 2010. Before Part 1 changes anything, the script reads what the
roll reads before it takes a member out (the Windows Fabric, the pool's readiness, or on Lync Server 2010
every other member's Front End service) and refuses to start when the pool cannot spare the member.

A script cannot see the other members' progress, so the order (one member at a time, upgrade-domain order
on Lync Server 2013, Ready between members, the databases after the last) is stated in each script's
header and in ``ORDER.txt``: the operator keeps it, each Part 1 enforces the readiness part of it.

Pure: roll plan in, file texts out. Every value reaches a script through ``ocsps.powershell.quote``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ocsps.catalog import Catalog, load_catalog
from ocsps.errors import UsageError
from ocsps.patch.board import BoardBody, board_bodies, render_board_text
from ocsps.patch.facts import PatchFacts, load_patch_facts
from ocsps.patch.plan import PatchPlan
from ocsps.pool import Method, PoolFacts, Readiness, RollState, load_pool_facts
from ocsps.powershell.changeboard import Step, _safe_file_name
from ocsps.powershell.quote import comment_safe, quote_array, quote_literal
from ocsps.powershell.script import render_action

__all__ = ["ORDER_FILE", "member_file_name", "order_lines", "render_pool_boards"]

ORDER_FILE = "ORDER.txt"


def member_file_name(member: str) -> str:
    """``<member>.ps1``, with only safe characters (a member's FQDN already is)."""
    return _safe_file_name(member) + ".ps1"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def _database_step(state: RollState, facts: PatchFacts) -> str:
    request = state.request
    product = state.plan.product
    if not request.get("database_update", True):
        return "no database update was asked for (--no-database-update): the roll ends with the last member"
    if product not in facts.database_products:
        return (
            "this product has no Test-CsDatabase (it arrived with Lync Server 2013), so ocsps patch database "
            "does not apply: update the databases as the update's own instructions say"
        )
    sql = str(request.get("sql_server", "")) or "<Back End SQL Server FQDN>"
    return (
        f"ocsps patch database --host <a member> --sql-server {sql} (or on a member: Test-CsDatabase "
        f"-ConfiguredDatabases -SqlServerFqdn {sql}, then Install-CsDatabase -ConfiguredDatabases "
        f"-SqlServerFqdn {sql} -Update where a database is behind, then Test-CsDatabase again)"
    )


def order_lines(
    state: RollState,
    facts: PatchFacts | None = None,
    pool_facts: PoolFacts | None = None,
    catalog: Catalog | None = None,
) -> list[str]:
    """The roll by hand, in words: which member when, what to wait for in between, what comes last."""
    fx = facts or load_patch_facts()
    pf = pool_facts or load_pool_facts()
    cat = catalog or load_catalog()
    plan = state.plan
    opts = state.options
    lines = [
        f"Pool {plan.pool} ({plan.product}), method {plan.method.value}: "
        + (
            "Invoke-CsComputerFailOver in Part 1, Invoke-CsComputerFailBack at the end of Part 2."
            if plan.method is Method.FAILOVER
            else "each service drained in Part 1, started again at the end of Part 2."
        ),
        "Members one at a time, in this order (never two out at once): run -Part 1, let it restart the "
        "computer, run -Part 2 to its end, then wait before the next member.",
    ]
    number = 0
    for unit in plan.units:
        for server in unit.servers:
            number += 1
            where = f" (upgrade domain {unit.name})" if plan.unit.value == "upgrade-domain" else ""
            lines.append(f"  {number}. {server}{where}: {member_file_name(server)}")
    if plan.readiness is Readiness.MEMBERS:
        ready = (
            f"the Front End service ({pf.defaults.front_end_service}) runs on every member and has run for "
            f"{_duration(opts.stable_for)}"
        )
    else:
        cmdlet = pf.roll_for(cat.product(plan.product)).readiness_cmdlet
        ready = (
            f"{plan.pool} answers {pf.ready_state} ({cmdlet}) and keeps answering it for "
            f"{_duration(opts.stable_for)}"
        )
    lines.append(
        f"Between members, and after the last: wait until {ready}. Part 1 refuses to start otherwise."
    )
    lines.append(f"After the last member: {_database_step(state, fx)}.")
    lines.extend(f"Note: {note}" for note in plan.notes)
    return [comment_safe(line) for line in lines]


def _pool_bodies(plan: PatchPlan, state: RollState, fx: PatchFacts, cat: Catalog) -> list[BoardBody]:
    product = cat.product(plan.product)
    roll = state.plan
    base = board_bodies(plan, product, fx, cat)
    if roll.method is Method.FAILOVER:
        base = [b for b in base if b.name not in ("Drain", "Stop", "Start")]
    extra: list[BoardBody] = []

    def body(name: str, label: str, action: str, **values: object) -> BoardBody:
        return BoardBody(name, Step(label, render_action(action, product, values, catalog=cat)))

    if roll.readiness is Readiness.CMDLET:
        extra.append(
            body(
                "Fabric",
                "read the Windows Fabric state of the pool (before Part 1)",
                "pool-fabric",
                PoolFqdn=roll.pool,
            )
        )
        extra.append(body("Readiness", "read the pool's upgrade readiness (before Part 1)", "pool-readiness"))
    if roll.method is Method.FAILOVER:
        opts = state.options
        extra.append(
            body(
                "FailOver",
                "take this computer out of the pool (Part 1)",
                "pool-failover",
                ComputerName=plan.host,
                WaitTimeSeconds=round(opts.wait_time),
                DrainingTimeoutSeconds=round(opts.draining_timeout or 0),
            )
        )
        extra.append(
            body(
                "FailBack",
                "return this computer to the pool (end of Part 2)",
                "pool-failback",
                ComputerName=plan.host,
                WaitTimeSeconds=round(opts.wait_time),
            )
        )
    return base + extra


def render_pool_boards(
    state: RollState,
    plans: Sequence[PatchPlan],
    *,
    change_id: str = "",
    reason: str = "",
    facts: PatchFacts | None = None,
    pool_facts: PoolFacts | None = None,
    catalog: Catalog | None = None,
) -> dict[str, str]:
    """File name -> text: one two-part script per member of the roll, in roll order, and ``ORDER.txt``.

    ``state`` and ``plans`` are what ``ocsps.patch.pool.plan_pool_patch`` returns. A value that cannot be
    written faithfully into a script is refused with a ``UsageError`` before any text exists.
    """
    cat = catalog or load_catalog()
    fx = facts or load_patch_facts()
    pf = pool_facts or load_pool_facts()
    roll = state.plan
    by_host = {p.host.casefold(): p for p in plans}
    missing = [s for s in roll.servers if s.casefold() not in by_host]
    if missing:
        raise UsageError(f"no patch plan for {', '.join(missing)}")
    names = [member_file_name(s) for s in roll.servers]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise UsageError(f"two members would share the file name {clash[0]}: name each member by its FQDN")
    readme = order_lines(state, fx, pf, cat)
    database = comment_safe(_database_step(state, fx))
    opts = state.options
    total = len(roll.servers)
    out: dict[str, str] = {}
    for number, server in enumerate(roll.servers, 1):
        plan = by_host[server.casefold()]
        after = roll.servers[number] if number < total else ""
        next_step = (
            f"wait until the pool is ready again (see the header), then run {member_file_name(after)} "
            f"-Part 1 on {after}."
            if after
            else f"this was the last member: wait until the pool is ready again, then: {database}"
        )
        drains = sorted(opts.service_deadlines.items())
        pool = {
            "drain_of": "; ".join(f"{quote_literal(k)} = {max(1, round(v))}" for k, v in drains),
            "then_of": "; ".join(
                f"{quote_literal(k)} = {quote_literal(opts.service_then.get(k, 'stop'))}" for k, _ in drains
            ),
            "readme": [f"This is member {number} of {total}: {comment_safe(server)}.", *readme],
            "fqdn": quote_literal(roll.pool, what="pool"),
            "method": quote_literal(roll.method.value),
            "members": quote_array(roll.members, what="pool member"),
            "failover": roll.method is Method.FAILOVER,
            "wait_seconds": str(max(1, round(opts.wait_time))),
            "draining_seconds": str(max(0, round(opts.draining_timeout or 0))),
            "readiness": roll.readiness is Readiness.CMDLET,
            "fabric": roll.readiness is Readiness.CMDLET,
            "members_gate": roll.readiness is Readiness.MEMBERS,
            "ready_state": quote_literal(pf.ready_state),
            "missing_replica": quote_array([p.casefold() for p in pf.missing_replica_patterns]),
            "recovery": quote_literal(pf.recovery.format(pool=roll.pool), what="recovery command"),
            "front_end": quote_literal(pf.defaults.front_end_service),
            "next": quote_literal(next_step, what="next step"),
        }
        title = (
            f"patch {plan.host} in pool {roll.pool} to {plan.options.expect_version} "
            f"(member {number} of {total}; two parts: -Part 1, restart, -Part 2)"
        )
        # the roll's deadline to leave the pool, not a standalone server's; then: the roll's "stop"
        plan = replace(plan, options=replace(plan.options, drain_timeout=opts.drain_timeout, then="stop"))
        out[member_file_name(server)] = render_board_text(
            plan,
            _pool_bodies(plan, state, fx, cat),
            title,
            change_id=change_id,
            reason=reason,
            facts=fx,
            catalog=cat,
            pool=pool,
        )
    out[ORDER_FILE] = "\n".join(readme) + "\n"
    return out
