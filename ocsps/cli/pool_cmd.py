"""``ocsps pool status | maintain``: rolling maintenance of a Front End pool, quorum kept, resumable."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocsps.cli.app import app
from ocsps.cli.common import ChangeIdOpt
from ocsps.cli.output import console, emit_json, err_console, is_quiet
from ocsps.cli.targets import (
    TargetOptions,
    open_targets,
    with_target_options,
)
from ocsps.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ocsps.catalog import Product
    from ocsps.pool import (
        PoolDriver,
        PoolSurvey,
        RollEvent,
        RollOptions,
        RollPlan,
        RollState,
        RollStep,
        StepResume,
        StepSpec,
        UpgradeDomain,
    )

pool_app = typer.Typer(
    name="pool",
    help="Rolling maintenance of Front End pools: status, and a roll that keeps quorum and can resume.",
    no_args_is_help=True,
)
app.add_typer(pool_app, name="pool")

PoolOpt = Annotated[str, typer.Option("--pool", help="Pool FQDN, e.g. pool01.contoso.com")]
ServersOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--servers",
        help="Pool members (repeatable or comma-separated). With --lab or --hosts-file they narrow the roll; "
        "otherwise they are the pool's members, in topology order",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout; progress on stderr")]
TimeoutOpt = Annotated[str, typer.Option("--timeout", help="Deadline of each read, e.g. 60s")]


def _split(values: Sequence[str] | None) -> list[str]:
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


# ---------------------------------------------------------------------------------------- membership
def _lab_pool_members(
    topology_file: Path | None, pool: str
) -> tuple[Product, list[str], list[UpgradeDomain]]:
    """Members and upgrade domains as the lab topology states them (read offline, nothing served)."""
    from ocsps.lab.topology import load_topology
    from ocsps.pool import UpgradeDomain

    topology = load_topology(topology_file)
    found = topology.pools.get(pool.casefold())
    if found is None:
        known = ", ".join(p.fqdn for p in topology.pools.values()) or "none"
        raise UsageError(f"the lab topology has no pool {pool!r}; pools: {known}")
    domains = [UpgradeDomain(name, tuple(servers)) for name, servers in found.upgrade_domains]
    return found.product, [m.fqdn for m in found.members], domains


def _real_members(opts: TargetOptions, servers: list[str]) -> tuple[list[str], list[str] | None]:
    """(members, servers to roll or None for all): members from --host/--hosts-file, else --servers."""
    from ocsps.cli.targets import host_entries

    listed = [host for host, _port in host_entries(opts)]  # host:port accepted, as everywhere
    if listed:
        return listed, servers or None
    if not servers:
        raise UsageError(
            "which servers are in the pool? there is no DNS lookup of pool members here",
            hint="list them with --servers (in topology order) or --hosts-file, or use --lab",
        )
    return servers, None


def _check_lab_flags(opts: TargetOptions) -> None:
    if opts.lab and opts.hosts:
        raise UsageError(
            "with --lab the pool's members come from the topology; narrow the roll with --servers"
        )


@contextmanager
def _pool_driver(
    opts: TargetOptions, pool: str, servers: list[str], timeout: float
) -> Iterator[tuple[PoolDriver, Product, list[str], list[str] | None]]:
    """A driver over the pool's members: (driver, product, members, servers to roll or None); members are
    resolved, checked and audited by the library, as the Ansible pool modules' are."""
    from ocsps.pool import RemoteDriver
    from ocsps.remote.targets import pool_servers

    _check_lab_flags(opts)
    only: list[str] | None
    if opts.lab:
        _, members, _ = _lab_pool_members(opts.lab_topology, pool)
        only = servers or None
    else:
        members, only = _real_members(opts, servers)
        if not opts.hosts and opts.hosts_file is None:
            opts.hosts = list(members)
    with open_targets(opts) as (targets, _lab):
        factory, product, names = pool_servers(targets, members, pool, timeout)
        driver = RemoteDriver(factory, call_timeout=timeout)
        try:
            yield driver, product, names, only
        finally:
            driver.close()


# ------------------------------------------------------------------------------------------ status
@pool_app.command("status")
@with_target_options
def status(
    pool: PoolOpt,
    servers: ServersOpt = None,
    timeout: TimeoutOpt = "60s",
    json_out: JsonOpt = False,
    *,
    opts: TargetOptions,
) -> None:
    """Members with their services, upgrade domains, readiness, fabric state (missing replicas called
    out) and how many servers the pool can lose now."""
    from ocsps.durations import parse_duration
    from ocsps.jsonout import to_builtins
    from ocsps.pool import survey_pool
    from ocsps.pool.survey import PoolSurveyDocument

    deadline = parse_duration(timeout)
    with _pool_driver(opts, pool, _split(servers), deadline) as (driver, prod, members, _):
        survey = survey_pool(driver, pool, prod.id, members)
    code = survey.exit_code
    if json_out:
        emit_json({"command": "pool status", **to_builtins(PoolSurveyDocument.of(survey)), "exit_code": code})
    else:
        _print_survey(survey)
    raise typer.Exit(code)


def _print_survey(survey: PoolSurvey) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"Pool {survey.pool} ({survey.product})")
    for col in ("server", "upgrade domain", "front end", "condition", "services"):
        table.add_column(col)
    for m in survey.members:
        domain = survey.readiness.domain_of(m.host) if survey.readiness else None
        running = sum(1 for s in m.services if s.is_running)
        services = m.error or f"{running}/{len(m.services)} running" + (
            "; stopped: " + ", ".join(s.name for s in m.services if s.is_stopped)
            if 0 < running < len(m.services)
            else ""
        )
        colour = {"up": "green", "down": "red"}.get(m.condition.value, "yellow")
        table.add_row(
            m.host,
            domain.name if domain else "-",
            m.front_end.value if m.front_end else "-",
            f"[{colour}]{m.condition.value}[/{colour}]",
            services,
        )
    out.print(table)
    if survey.readiness is not None:
        r = survey.readiness
        active = f"{r.active_front_ends}/{r.total_front_ends} front ends active" if r.total_front_ends else ""
        out.print(
            f"Readiness (read on {r.computer or survey.via}): {r.state}. {active}".rstrip(), markup=False
        )
        for d in r.domains:
            ready = {True: "ready", False: "NOT ready", None: "readiness not reported"}[d.ready]
            out.print(f"  {d.name}: {', '.join(d.servers) or '-'} ({ready})", markup=False)
    if survey.fabric is not None:
        f = survey.fabric
        if f.missing:
            out.print("Fabric: MISSING REPLICAS", markup=False)
            for line in f.missing:
                out.print(f"  {line}", markup=False)
        else:
            out.print(f"Fabric: no missing replicas ({len(f.lines)} line(s), {len(f.warnings)} warning(s))")
    if survey.rule is not None:
        out.print(
            f"Quorum: {survey.rule.describe()}; down now: {', '.join(survey.down) or 'none'}; "
            f"can lose {max(0, survey.spare or 0)} more",
            markup=False,
        )
    for note in survey.notes:
        out.print(f"note: {note}", markup=False)
    for problem in survey.problems:
        out.print(f"problem: {problem}", markup=False)


# ---------------------------------------------------------------------------------------- maintain
_TIMING_FLAGS = {
    "stable_for": "--stable-for",
    "max_busy": "--max-busy",
    "busy_interval": "--busy-interval",
    "ready_poll": "--ready-poll",
    "wait_time": "--wait-time",
    "drain_timeout": "--drain-timeout",
    "service_poll": "--poll",
    "draining_timeout": "--draining-timeout",
}
"""A roll's timing options by the flag that sets them, for the library's refusals."""


def _duration(value: str | None) -> float | None:
    from ocsps.durations import parse_duration

    return None if value is None else parse_duration(value)


def _step_spec(step: str | None, step_script: Path | None, product: Product | None) -> StepSpec:
    from ocsps.pool import StepSpec
    from ocsps.pool.plan import step_from_text

    if step is not None and step_script is not None:
        raise UsageError("give either --step pause or --step-script FILE, not both")
    if step_script is None:
        if step not in (None, "pause"):
            raise UsageError(f"--step takes 'pause' (or use --step-script FILE), not {step!r}")
        return StepSpec("pause")
    try:
        text = step_script.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read step script {step_script}: {exc.__class__.__name__}") from None
    return step_from_text(step_script.name, text, product)


def _operator(server: str, prompt: str) -> bool:
    """At a pause: ask on the terminal; without one, leave the roll paused for ``--resume``."""
    if not sys.stdin.isatty():
        return False
    err = err_console()
    err.print(f"\n{prompt}", markup=False)
    while True:
        err.print("Type 'continue' when the work is done, or 'stop' to leave the roll paused: ", end="")
        try:
            answer = input().strip().casefold()
        except EOFError:
            return False
        if answer in ("continue", "c"):
            return True
        if answer in ("stop", "s"):
            return False


def _progress() -> Callable[[RollEvent], None]:
    def show(event: RollEvent) -> None:
        if is_quiet():
            return
        where = event.server or "pool"
        err_console().print(f"{event.time[11:19]} {where}: {event.message}", markup=False)

    return show


@pool_app.command("maintain")
@with_target_options
def maintain(
    pool: PoolOpt,
    servers: ServersOpt = None,
    step: Annotated[
        str | None, typer.Option("--step", help="'pause': wait for the operator on each drained server")
    ] = None,
    step_script: Annotated[
        Path | None, typer.Option("--step-script", help="PowerShell file run on each drained server")
    ] = None,
    stable_for: Annotated[
        str | None,
        typer.Option(
            "--stable-for",
            help=(
                "Ready must hold this long between units; 0 passes on the first Ready "
                "(default 20m: pools.toml stable_for)"
            ),
        ),
    ] = None,
    max_busy: Annotated[
        int | None,
        typer.Option(
            "--max-busy",
            help="Busy answers in one wait that stop the roll, at least 1 (default 3: pools.toml max_busy)",
        ),
    ] = None,
    busy_interval: Annotated[
        str | None,
        typer.Option(
            "--busy-interval", help="Wait after a Busy answer (default 10m: pools.toml busy_interval)"
        ),
    ] = None,
    ready_poll: Annotated[
        str | None,
        typer.Option(
            "--ready-poll",
            help="How often readiness is read while Ready is timed (default 1m: pools.toml ready_poll)",
        ),
    ] = None,
    wait_time: Annotated[
        str | None,
        typer.Option(
            "--wait-time", help="Failover/failback -WaitTime (default 1h: pools.toml failover_wait_time)"
        ),
    ] = None,
    draining_timeout: Annotated[
        str | None, typer.Option("--draining-timeout", help="Failover -DrainingTimeout (cmdlet default)")
    ] = None,
    drain_timeout: Annotated[
        str | None,
        typer.Option(
            "--drain-timeout",
            help=(
                "Deadline for a server to leave or return, and the step's "
                "(default 1h: pools.toml drain_timeout)"
            ),
        ),
    ] = None,
    poll: Annotated[
        str | None,
        typer.Option(
            "--poll",
            help="How often services are read while a server changes (default 10s: pools.toml service_poll)",
        ),
    ] = None,
    force_failover: Annotated[
        bool,
        typer.Option(
            "--force-failover", help="Fail over without the pool capacity check (never with --what-if)"
        ),
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the saved roll of this pool from where it stopped")
    ] = False,
    rerun_step: Annotated[
        bool, typer.Option("--rerun-step", help="On --resume: run an interrupted step script again")
    ] = False,
    step_done: Annotated[
        bool, typer.Option("--step-done", help="On --resume: count an interrupted step script as done")
    ] = False,
    what_if: Annotated[
        bool, typer.Option("--what-if", help="Print the whole roll with its scripts; send nothing")
    ] = False,
    emit_script: Annotated[
        Path | None,
        typer.Option("--emit-script", help="Write the whole roll as a change-board .ps1 (a roll by hand)"),
    ] = None,
    change_id: ChangeIdOpt = "",
    reason: Annotated[str, typer.Option("--reason", help="Why, for --emit-script")] = "",
    timeout: TimeoutOpt = "120s",
    json_out: JsonOpt = False,
    *,
    opts: TargetOptions,
) -> None:
    """Roll through the pool: one upgrade domain (Lync 2013, graceful drain) or one server (SfB,
    failover/failback) at a time, waiting for a stable Ready in between, never breaking quorum.

    Exit codes: 0 done, or paused for the operator (--step pause without a terminal: continue with
    --resume); 1 stopped by a safety rule or failed; 2 bad usage; 3 could not connect; 4 timed out;
    130 interrupted. The state file keeps the position either way.
    """
    from ocsps.catalog import load_catalog
    from ocsps.pool import RollOptions, StepResume, state_path

    _check_lab_flags(opts)
    if force_failover and what_if:
        raise UsageError(
            "never combine --force-failover with --what-if: Invoke-CsComputerFailOver ignores -WhatIf "
            "when -Force is given"
        )
    if what_if and emit_script is not None:
        raise UsageError("give either --what-if or --emit-script")
    if rerun_step and step_done:
        raise UsageError("give either --rerun-step or --step-done")
    if (rerun_step or step_done) and not resume:
        raise UsageError("--rerun-step and --step-done only apply with --resume")
    shaping = {
        "--step": step,
        "--step-script": step_script,
        "--stable-for": stable_for,
        "--max-busy": max_busy,
        "--busy-interval": busy_interval,
        "--ready-poll": ready_poll,
        "--wait-time": wait_time,
        "--draining-timeout": draining_timeout,
        "--drain-timeout": drain_timeout,
        "--poll": poll,
    }
    given = [name for name, value in shaping.items() if value is not None] + (
        ["--force-failover"] if force_failover else []
    )
    if resume and given:
        raise UsageError(f"a resumed roll keeps its saved plan and options; drop {', '.join(given)}")
    if resume and (what_if or emit_script is not None):
        raise UsageError("--what-if and --emit-script plan a new roll; they do not combine with --resume")
    wanted = _split(servers)
    timings: dict[str, Any] = RollOptions.parse_timings(  # the library's rules, as the Ansible modules'
        _TIMING_FLAGS,
        stable_for=stable_for,
        max_busy=max_busy,
        busy_interval=busy_interval,
        ready_poll=ready_poll,
        wait_time=wait_time,
        drain_timeout=drain_timeout,
        service_poll=poll,
        draining_timeout=draining_timeout,
    )
    timings["force_failover"] = force_failover or None
    if what_if or emit_script is not None:
        if opts.lab:
            prod, members, domains = _lab_pool_members(opts.lab_topology, pool)
        else:
            if not opts.product:
                raise UsageError("which product does the pool run? pass --product")
            prod = load_catalog().product(opts.product)
            members, narrowed = _real_members(opts, wanted)
            wanted, domains = narrowed or [], []
        options = RollOptions.defaults(step=_step_spec(step, step_script, prod), **timings)
        _offline(
            pool, prod, members, domains, wanted, options, what_if, emit_script, change_id, reason, json_out
        )
        return
    if not resume:
        _step_spec(step, step_script, None)  # a script that does not parse is refused before connecting
    path = state_path(pool, simulation=opts.lab)
    deadline = _duration(timeout) or 120.0
    step_resume = StepResume.RERUN if rerun_step else StepResume.DONE if step_done else None
    from ocsps import audit

    with audit.change(change_id):
        _live(opts, pool, wanted, path, resume, step, step_script, timings, step_resume, deadline, json_out)


def _offline(
    pool: str,
    product: Product,
    members: list[str],
    domains: Sequence[UpgradeDomain],
    only: list[str],
    options: RollOptions,
    what_if: bool,
    emit_script: Path | None,
    change_id: str,
    reason: str,
    json_out: bool,
) -> None:
    from ocsps.pool import plan_roll, roll_steps

    plan = plan_roll(pool, product, members, domains, only=only or None)
    steps = roll_steps(plan, options)
    if emit_script is not None:
        from ocsps.cli.output import write_output
        from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board
        from ocsps.powershell.script import render_action

        board = [Step(s.label, render_action(s.action, product, dict(s.values))) for s in steps]
        text = render_change_board(f"rolling maintenance of {pool}", board, ChangeInfo("", change_id, reason))
        write_output(text, emit_script)
        return
    if json_out:
        from ocsps.jsonout import to_builtins
        from ocsps.pool.plan import RollPlanDocument, RollStepDocument

        emit_json(
            {
                "command": "pool maintain",
                "what_if": True,
                "plan": to_builtins(RollPlanDocument.of(plan)),
                "options": to_builtins(options),
                "steps": to_builtins([RollStepDocument.of(s) for s in steps]),
                "exit_code": 0,
            }
        )
        return
    _print_what_if(plan, options, steps, product)


def _print_what_if(plan: RollPlan, options: RollOptions, steps: Sequence[RollStep], product: Product) -> None:
    from ocsps.powershell.script import render_action

    out = console()
    out.rule(f"Roll of {plan.pool} ({plan.product}, {plan.method.value}) - nothing is sent", style="dim")
    out.print(f"Quorum: {plan.rule.describe()}. Members: {', '.join(plan.members)}", markup=False)
    for note in plan.notes:
        out.print(f"note: {note}", markup=False)
    scripts: dict[str, str] = {}
    for number, item in enumerate(steps, 1):
        rendered = render_action(item.action, product, dict(item.values))
        scripts.setdefault(item.action, rendered.script)
        shown = {k: v for k, v in rendered.bound_parameters.items() if k != "StepScript"}
        if "StepScript" in rendered.bound_parameters:
            shown["StepScript"] = f"<{len(options.step.lines)} line(s), sha256 {options.step.sha256[:12]}>"
        out.print(f"{number:3}. {item.label}", markup=False)
        out.print(f"     {item.action} {shown}", markup=False)
    out.print(
        "Between steps the live roll re-reads every member (quorum), stops on Busy "
        f"{options.max_busy} times or on InsufficientActiveFrontEnds, and saves its state after each change.",
        markup=False,
    )
    for action, script in scripts.items():
        out.rule(f"script {action}", style="dim")
        out.print(script, markup=False, highlight=False)


def _live(
    opts: TargetOptions,
    pool: str,
    wanted: list[str],
    path: Path,
    resume: bool,
    step: str | None,
    step_script: Path | None,
    timings: dict[str, Any],
    step_resume: StepResume | None,
    timeout: float,
    json_out: bool,
) -> None:
    from ocsps.pool import RollOptions, RollStatus, open_saved_roll
    from ocsps.pool.maintain import maintain_pool

    if resume and wanted:
        raise UsageError("a resumed roll keeps its saved servers; drop --servers")
    saved = open_saved_roll(path, pool, resume=resume, simulation=opts.lab)
    if saved is not None:
        # Members come from the topology (lab), the hosts given, or else the saved plan itself.
        wanted = [] if opts.lab or opts.hosts or opts.hosts_file else list(saved.plan.members)
    if saved is not None and saved.finished:
        err_console().print(f"the roll of {pool} is already done ({path})", markup=False)
    with _pool_driver(opts, pool, wanted, timeout) as (driver, product, members, only):
        state = maintain_pool(
            driver,
            pool,
            product,
            members,
            RollOptions.defaults(step=_step_spec(step, step_script, product), **timings),
            path=path,
            saved=saved,
            only=only or (),
            simulation=opts.lab,
            operator=_operator,
            on_event=_progress(),
            step_resume=step_resume,
        )
    code = state.status.exit_code
    if json_out:
        from ocsps.jsonout import to_builtins
        from ocsps.pool.plan import RollPlanDocument

        emit_json(
            {
                "command": "pool maintain",
                "pool": state.plan.pool,
                "status": state.status.value,
                "reason": state.reason,
                "position": state.position(),
                "state_file": str(path),
                "plan": to_builtins(RollPlanDocument.of(state.plan)),
                "servers": {k: v.value for k, v in state.servers.items()},
                "history": state.history,
                "exit_code": code,
            }
        )
    else:
        _print_roll(state, path)
    if state.status not in (RollStatus.DONE,) and not is_quiet():
        err_console().print(
            f"the roll is {state.status.value}: {state.reason or state.position()}\n"
            f"state saved in {path}; continue with: {resume_command(opts, state.plan.pool)}",
            markup=False,
        )
    raise typer.Exit(code)


def resume_command(opts: TargetOptions, pool: str) -> str:
    """The command that continues this roll, with the target options it was started with.

    Printed for the operator to copy, so it must run as printed: the lab flag, topology, profile and
    connection options that chose the servers are repeated, each value shell-quoted.
    """
    import shlex

    words = ["ocsps", "pool", "maintain", "--pool", pool, "--resume"]
    flags: list[tuple[str, object]] = [
        ("--hosts-file", opts.hosts_file),
        ("--product", opts.product),
        ("--profile", opts.profile),
        ("--auth", opts.auth),
        ("--username", opts.username),
        ("--port", opts.port),
        ("--configuration-name", opts.configuration_name),
        ("--ca-bundle", opts.ca_bundle),
        ("--lab-topology", opts.lab_topology),
    ]
    words += [part for host in opts.hosts for part in ("--host", host)]
    words += [part for flag, value in flags if value is not None for part in (flag, str(value))]
    if opts.ssl is not None:
        words.append("--ssl" if opts.ssl else "--no-ssl")
    if opts.no_verify_tls:
        words.append("--no-verify-tls")
    if opts.lab:
        words.append("--lab")
    from ocsps.audit import current_change_id

    if current_change_id():  # the resumed roll's records carry the same ticket
        words += ["--change-id", current_change_id()]
    return " ".join(shlex.quote(word) for word in words)


def _print_roll(state: RollState, path: Path) -> None:
    from rich.table import Table

    table = Table(title=f"Roll of {state.plan.pool}: {state.status.value}")
    for col in ("unit", "server", "phase"):
        table.add_column(col)
    for unit in state.plan.units:
        for server in unit.servers:
            phase = state.phase(server).value
            colour = "green" if phase == "returned" else "white" if phase == "pending" else "yellow"
            table.add_row(unit.name, server, f"[{colour}]{phase}[/{colour}]")
    console().print(table)


# ------------------------------------------------------------------------------------ start / recover
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Send without asking; needed where there is no terminal to ask on")
]
WhatIfOpt = Annotated[
    bool,
    typer.Option("--what-if", help="Print the script and the values it would be sent with; send nothing"),
]
WaitOpt = Annotated[
    str | None,
    typer.Option(
        "--wait",
        help="How long to read the pool again until it is up (default 1h: pools.toml drain_timeout)",
    ),
]
CallTimeoutOpt = Annotated[
    str, typer.Option("--call-timeout", help="Deadline of the pool-wide cmdlet itself, e.g. 30m")
]


def _need_confirmation(command: str, yes: bool, what_if: bool) -> None:
    """Refuse before connecting when nobody can be asked: a pool-wide change is never sent unconfirmed."""
    if yes or what_if:
        return
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError(
            f"{command} changes the whole pool and asks for confirmation, but there is no terminal to ask on",
            hint="pass --yes to confirm on the command line (or --what-if to see what would be sent)",
        )


def _offline_pool(opts: TargetOptions, pool: str, servers: list[str]) -> tuple[Product, list[str]]:
    """Product and members without connecting: the lab topology, or --product with the members given."""
    from ocsps.catalog import load_catalog

    _check_lab_flags(opts)
    if opts.lab:
        product, members, _ = _lab_pool_members(opts.lab_topology, pool)
        return product, members
    if not opts.product:
        raise UsageError("which product does the pool run? pass --product (nothing is sent with --what-if)")
    members, _ = _real_members(opts, servers)
    return load_catalog().product(opts.product), members


def _print_call(label: str, script: str, values: dict[str, object], json_out: bool) -> None:
    out = console(json_mode=json_out)
    out.rule(f"{label} - nothing is sent", style="dim")
    out.print(f"bound values: {values}", markup=False, highlight=False)
    out.print(script, markup=False, highlight=False)


def _ask(survey: PoolSurvey, cmdlet: str, via: str, json_out: bool) -> bool:
    from ocsps.pool.model import Condition

    out = err_console() if json_out else console()
    for member in survey.members:
        state = member.error or member.condition.value
        out.print(f"  {member.host}: {state}", markup=False)
    if survey.fabric is not None:
        missing = survey.fabric.missing
        out.print(f"  fabric: {len(missing)} line(s) name missing replicas", markup=False)
    for problem in survey.problems:
        out.print(f"  problem: {problem}", markup=False)
    up = sum(1 for m in survey.members if m.condition is Condition.UP)
    err = err_console()
    err.print(f"{up}/{len(survey.members)} member(s) up. Send {cmdlet} on {via}?", markup=False)
    err.print(f"Type the pool FQDN ({survey.pool}) to confirm, anything else to stop: ", end="", markup=False)
    try:
        answer = input().strip()
    except EOFError:
        return False
    return answer.casefold() == survey.pool.casefold()


def _guarded(
    operation: str,
    opts: TargetOptions,
    pool: str,
    servers: list[str],
    skip: list[str],
    quorum_loss_recovery: bool,
    yes: bool,
    what_if: bool,
    wait: str | None,
    call_timeout: str,
    timeout: str,
    change_id: str,
    json_out: bool,
) -> None:
    """One flow for ``pool start`` and ``pool recover``: confirm, read, send, read again, report."""
    from ocsps import audit
    from ocsps.durations import parse_duration
    from ocsps.pool import RemoteDriver
    from ocsps.pool.recovery import (
        RemoteRecoveryDriver,
        recover_call,
        recover_pool,
        render_call,
        start_call,
        start_pool,
    )

    command = f"pool {operation}"
    cmdlet = (
        "Start-CsPool" if operation == "start" else "Reset-CsPoolRegistrarState -ResetType QuorumLossRecovery"
    )
    _need_confirmation(command, yes, what_if)
    read_deadline = parse_duration(timeout)
    call_deadline = parse_duration(call_timeout)
    settle = _duration(wait)
    call = start_call(pool, skip, quorum_loss_recovery) if operation == "start" else recover_call(pool)
    if what_if:
        product, members = _offline_pool(opts, pool, servers)
        rendered = render_call(call, product)  # a product without the cmdlet is refused here, in Python
        if json_out:
            emit_json(
                {
                    "command": command,
                    "what_if": True,
                    "pool": pool,
                    "product": product.id,
                    "members": members,
                    "action": rendered.action,
                    "values": rendered.bound_parameters,
                    "script": rendered.script,
                    "exit_code": 0,
                }
            )
        else:
            _print_call(
                f"{cmdlet} for {pool} ({product.id})", rendered.script, rendered.bound_parameters, False
            )
        return

    with (
        audit.change(change_id),
        _pool_driver(opts, pool, servers, read_deadline) as (remote, prod, members, _),
    ):
        render_call(call, prod)  # refused before any read for a product that lacks the cmdlet
        if not isinstance(remote, RemoteDriver):  # pragma: no cover - _pool_driver always builds one
            raise TypeError("pool start/recover need a RemoteDriver")
        driver = RemoteRecoveryDriver(remote)

        def approve(survey: PoolSurvey, sent: object, via: str) -> bool:
            if not yes and not _ask(survey, cmdlet, via, json_out):
                return False
            audit.require_writable(f"{command} {pool}", members)
            return True

        if operation == "start":
            result = start_pool(
                driver,
                pool,
                prod,
                members,
                skip_servers=skip,
                quorum_loss_recovery=quorum_loss_recovery,
                approve=approve,
                call_timeout=call_deadline,
                wait=settle,
            )
        else:
            result = recover_pool(
                driver, pool, prod, members, approve=approve, call_timeout=call_deadline, wait=settle
            )
    code = result.exit_code
    if json_out:
        from ocsps.jsonout import to_builtins
        from ocsps.pool.recovery import RecoveryResultDocument

        emit_json({"command": command, **to_builtins(RecoveryResultDocument.of(result)), "exit_code": code})
    else:
        out = console()
        colour = "green" if result.ok else "red"
        out.print(f"[{colour}]{result.outcome.value}[/{colour}]: ", end="")
        out.print(result.reason, markup=False, highlight=False)
        for note in result.notes:
            out.print(f"note: {note}", markup=False, highlight=False)
    raise typer.Exit(code)


@pool_app.command("start")
@with_target_options
def start_cmd(
    pool: PoolOpt,
    servers: ServersOpt = None,
    skip_server: Annotated[
        list[str] | None,
        typer.Option(
            "--skip-server", help="A member that cannot start (Start-CsPool -SkipServer); repeatable"
        ),
    ] = None,
    quorum_loss_recovery: Annotated[
        bool,
        typer.Option(
            "--quorum-loss-recovery",
            help="Reload routing groups in quorum loss from the backup store (unwritten data may be lost)",
        ),
    ] = False,
    yes: YesOpt = False,
    what_if: WhatIfOpt = False,
    wait: WaitOpt = None,
    call_timeout: CallTimeoutOpt = "30m",
    timeout: TimeoutOpt = "120s",
    change_id: ChangeIdOpt = "",
    json_out: JsonOpt = False,
    *,
    opts: TargetOptions,
) -> None:
    """Start a whole Front End pool with Start-CsPool after a cold start or a pool-level quorum loss
    (Skype for Business Server 2015 and 2019), instead of only printing the command.

    Reads every member first: a pool whose members are all up gets nothing. Asks for the pool FQDN as
    confirmation (--yes skips it; without a terminal --yes is required), sends Start-CsPool on one member,
    then reads the pool until it is up or --wait has passed. Exit codes: 0 started or already started;
    1 still down afterwards, or not confirmed; 2 bad usage or a product without Start-CsPool (nothing
    sent); 3 no member answers; 4 timed out.
    """
    _guarded(
        "start",
        opts,
        pool,
        _split(servers),
        _split(skip_server),
        quorum_loss_recovery,
        yes,
        what_if,
        wait,
        call_timeout,
        timeout,
        change_id,
        json_out,
    )


@pool_app.command("recover")
@with_target_options
def recover_cmd(
    pool: PoolOpt,
    servers: ServersOpt = None,
    yes: YesOpt = False,
    what_if: WhatIfOpt = False,
    wait: WaitOpt = None,
    call_timeout: CallTimeoutOpt = "30m",
    timeout: TimeoutOpt = "120s",
    change_id: ChangeIdOpt = "",
    json_out: JsonOpt = False,
    *,
    opts: TargetOptions,
) -> None:
    """Recover routing groups in quorum loss with Reset-CsPoolRegistrarState -ResetType
    QuorumLossRecovery (Lync Server 2013 and later), instead of only printing the command.

    Reads every member and the fabric state first: a pool with every member up and no missing replicas
    gets nothing. Asks for the pool FQDN as confirmation (--yes skips it; without a terminal --yes is
    required), then reads the pool until every member is up and no replica is missing, or --wait has
    passed. User data not yet written to the database can be lost. Exit codes as for pool start.
    """
    _guarded(
        "recover",
        opts,
        pool,
        _split(servers),
        [],
        False,
        yes,
        what_if,
        wait,
        call_timeout,
        timeout,
        change_id,
        json_out,
    )
