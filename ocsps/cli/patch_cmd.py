"""``ocsps patch server``: install a cumulative update on one server, each step verified before the next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.common import ChangeIdOpt
from ocsps.cli.output import console, emit_json, err_console, is_quiet
from ocsps.cli.targets import TargetOptions, audited_server, open_targets, with_target_options
from ocsps.errors import OperationFailed, RemoteError, UsageError

if TYPE_CHECKING:
    from ocsps.catalog import Product
    from ocsps.patch import PatchEvent, PatchRecord
    from ocsps.patch.rollout import PoolPatchRequest
    from ocsps.pool import RollEvent, UpgradeDomain

ExpectVersionOpt = Annotated[
    str, typer.Option("--expect-version", help="Version every component must report afterwards (required)")
]

InstallTimeoutOpt = Annotated[
    str | None, typer.Option("--install-timeout", help="The installer's deadline (default 2h)")
]

RerunInstallOpt = Annotated[
    bool,
    typer.Option(
        "--rerun-install",
        help="On --resume: run again an install interrupted before its outcome was recorded and not at "
        "the expected version (only once sure the installer is no longer running)",
    ),
]

CallTimeoutOpt = Annotated[str, typer.Option("--timeout", help="Deadline of each ordinary call")]

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout; progress on stderr")]

patch_app = typer.Typer(
    name="patch",
    help=(
        "Install a cumulative update on a server end to end: out of service, install, restart, verify, back."
    ),
    no_args_is_help=True,
)
app.add_typer(patch_app, name="patch")


def _duration(value: str | None) -> float | None:
    from ocsps.durations import parse_duration

    return None if value is None else parse_duration(value)


def _lab_product(opts: TargetOptions, host: str) -> Product:
    """The product of a lab server, read from the topology offline (nothing served)."""
    from ocsps.lab.topology import load_topology

    return load_topology(opts.lab_topology).server(host).product


def _what_if_product(opts: TargetOptions, host: str) -> Product:
    from ocsps.catalog import load_catalog

    if opts.lab:
        return _lab_product(opts, host)
    if not opts.product:
        raise UsageError("--what-if sends nothing, so it cannot ask the server: pass --product")
    return load_catalog().product(opts.product)


def _progress(event: PatchEvent) -> None:
    if not is_quiet():
        err_console().print(f"{event.time[11:19]} {event.step}: {event.message}", markup=False)


@patch_app.command("server")
@with_target_options
def server(
    installer: Annotated[
        str,
        typer.Option(
            "--installer",
            help="Path of the update installer as the server sees it, e.g. "
            "C:\\Updates\\SkypeServerUpdateInstaller.exe (a local copy: a share needs delegation)",
        ),
    ],
    expect_version: ExpectVersionOpt = "",
    reboot: Annotated[
        str, typer.Option("--reboot", help="auto: restart when the update asks; never: stop and say so")
    ] = "auto",
    then: Annotated[
        str,
        typer.Option("--then", help="A service that never drains: stop (the run; default) or force-stop it"),
    ] = "stop",
    drain_timeout: Annotated[
        str | None, typer.Option("--drain-timeout", help="Each service's drain deadline (default 30m)")
    ] = None,
    install_timeout: InstallTimeoutOpt = None,
    reboot_timeout: Annotated[
        str | None,
        typer.Option("--reboot-timeout", help="From the restart until the services are back (default 30m)"),
    ] = None,
    what_if: Annotated[
        bool, typer.Option("--what-if", help="Print the steps and their scripts; send nothing")
    ] = False,
    emit_script: Annotated[
        str | None,
        typer.Option(
            "--emit-script",
            help="Write the patch as a two-part change-board .ps1 run on the server itself (-Part 1, "
            "restart, -Part 2); send nothing",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the saved run of this server at the step it reached (same options)"
        ),
    ] = False,
    rerun_install: RerunInstallOpt = False,
    reinstall: Annotated[
        bool,
        typer.Option(
            "--reinstall",
            help="Run the update even when every component already reports --expect-version (by default "
            "such a server is read and left alone: status current)",
        ),
    ] = False,
    change_id: ChangeIdOpt = "",
    timeout: CallTimeoutOpt = "120s",
    json_out: JsonOpt = False,
    *,
    opts: TargetOptions,
) -> None:
    """Patch one server that is not in an Enterprise pool (Mediation, Edge, Standard Edition, Director):
    preflight, drain, hold start-up types Disabled, install silently, restart if asked, verify every
    component's version, restore start-up types and start the services. A server whose every component
    already reports the version, with no restart pending, is read and left alone (status current;
    --reinstall runs the update anyway).

    Exit codes: 0 patched and back in service, or already current; 1 stopped by a check, failed, or a
    restart pending with --reboot never; 2 bad usage (nothing sent); 3 could not connect; 4 timed out;
    130 interrupted. Each ends with the server's state read again and stated, and a record next to the
    audit log, from which --resume continues at the step the run reached (a completed install is never
    run again).
    """
    from ocsps import audit
    from ocsps.patch import (
        PatchRunner,
        RemotePatchDriver,
        default_options,
        plan_patch,
        save_record,
        state_path,
    )
    from ocsps.patch.plan import check_options
    from ocsps.patch.state import open_saved_record

    if len(opts.hosts) != 1 or opts.hosts_file is not None:
        raise UsageError("ocsps patch server patches one server: give exactly one --host")
    host = opts.hosts[0]
    options = default_options(
        expect_version,
        reboot=reboot,
        then=then,
        drain_timeout=_duration(drain_timeout),
        install_timeout=_duration(install_timeout),
        reboot_timeout=_duration(reboot_timeout),
    )
    check_options(options)  # before any password prompt or connection
    if emit_script is not None and resume:
        raise UsageError(
            "--emit-script writes a new run for the change board; it does not combine with --resume"
        )
    if emit_script is not None:
        from pathlib import Path

        from ocsps.cli.output import write_output
        from ocsps.patch.board import render_patch_board

        plan = plan_patch(host, _what_if_product(opts, host), installer, options)
        write_output(render_patch_board(plan, change_id=change_id), Path(emit_script))
        raise typer.Exit(0)
    if rerun_install and not resume:
        raise UsageError("--rerun-install only applies with --resume")
    if resume and what_if:
        raise UsageError("--what-if plans a new run; it does not combine with --resume")
    path = state_path(host, simulation=opts.lab)
    saved = None
    if not what_if:
        saved = open_saved_record(
            path, host, installer, options.expect_version, resume=resume, simulation=opts.lab
        )
    if what_if:
        product = _what_if_product(opts, host)
        plan = plan_patch(host, product, installer, options)
        from ocsps.patch.driver import preview_scripts

        scripts = preview_scripts(plan, product)
        if json_out:
            from ocsps.jsonout import to_builtins
            from ocsps.patch.plan import PatchPlanDocument

            plan_doc = to_builtins(PatchPlanDocument.of(plan))
            emit_json({"command": "patch server", "what_if": True, "plan": plan_doc, "scripts": scripts})
        else:
            out = console()
            out.print(f"What if: patch {host} ({product.id}) to {plan.options.expect_version}", markup=False)
            for index, step in enumerate(plan.steps, 1):
                out.print(f"{index}. {step.name}: {step.summary}", markup=False)
            for script in scripts:
                out.print(f"\n# --- {script['action']} (values bound: {script['parameters']})", markup=False)
                out.print(str(script["script"]), markup=False)
            out.print("\nNothing was sent.", markup=False)
        raise typer.Exit(0)
    call_timeout = _duration(timeout) or 120.0
    with open_targets(opts) as (targets, lab), audit.change(change_id):
        target = targets[0]
        plan = (
            saved.plan if saved is not None else plan_patch(target.host, target.product, installer, options)
        )
        if saved is not None and saved.plan.product != target.product.id:
            raise UsageError(f"{path} was planned for {saved.plan.product}; {host} runs {target.product.id}")
        audit.require_writable(f"patch server {target.host}", [target.host])
        driver = RemotePatchDriver(lambda _h: audited_server(target, call_timeout), call_timeout=call_timeout)

        def save(record: PatchRecord) -> None:
            record.change_id = change_id or record.change_id
            save_record(path, record)

        try:
            record = PatchRunner(
                driver,
                plan,
                save=save,
                on_event=_progress,
                simulation=lab is not None,
                record=saved,
                rerun_install=rerun_install,
                skip_current=not reinstall,
            ).run()
        finally:
            driver.close()
    code = record.status.exit_code
    if json_out:
        from ocsps.patch.runner import record_document

        emit_json(
            {"command": "patch server", **record_document(record), "record": str(path), "exit_code": code}
        )
    else:
        out = console()
        out.print(f"{target.host}: {record.status.value}" + (f": {record.reason}" if record.reason else ""))
        out.print(record.statement(), markup=False)
        out.print(f"record: {path}", markup=False)
    raise typer.Exit(code)


@patch_app.command("database")
@with_target_options
def database(
    sql_server: Annotated[
        str, typer.Option("--sql-server", help="FQDN of the SQL Server (Back End) holding the databases")
    ],
    check_only: Annotated[
        bool, typer.Option("--check-only", help="Read the versions (Test-CsDatabase); change nothing")
    ] = False,
    what_if: Annotated[bool, typer.Option("--what-if", help="Print the script; send nothing")] = False,
    change_id: ChangeIdOpt = "",
    json_out: JsonOpt = False,
    *,
    opts: TargetOptions,
) -> None:
    """After a cumulative update, bring the configured databases to the version the product expects:
    Test-CsDatabase -ConfiguredDatabases -SqlServerFqdn on --host (a server of the pool), then, only where
    a database is behind, Install-CsDatabase -ConfiguredDatabases -SqlServerFqdn -Update, then read again.

    Exit codes: 0 every database at the expected version (read again after an update); 1 behind
    (--check-only), still behind after the update, none reported, or the update refused (SQL permissions);
    2 bad usage (nothing sent); 3 could not connect.
    """
    from ocsps import audit
    from ocsps.hostname import check_host
    from ocsps.patch import RemotePatchDriver, update_databases
    from ocsps.powershell.script import render_action

    if len(opts.hosts) != 1 or opts.hosts_file is not None:
        raise UsageError("give exactly one --host: a server of the pool, where the cmdlets run")
    sql = check_host(sql_server, "--sql-server")
    host = opts.hosts[0]
    if what_if:
        product = _what_if_product(opts, host)
        _database_product(product)
        rendered = render_action("patch-database", product, {"SqlServerFqdn": sql, "Update": not check_only})
        if json_out:
            emit_json(
                {
                    "command": "patch database",
                    "what_if": True,
                    "parameters": rendered.bound_parameters,
                    "script": rendered.script,
                }
            )
        else:
            out = console()
            out.print(f"# values bound: {rendered.bound_parameters}", markup=False)
            out.print(rendered.script, markup=False)
            out.print("Nothing was sent.", markup=False)
        raise typer.Exit(0)
    with open_targets(opts) as (targets, _lab), audit.change(change_id):
        target = targets[0]
        _database_product(target.product)
        # the script is one action that may change state: its intent is recorded even to only read
        audit.require_writable(
            f"patch database {sql}" + (" (check only)" if check_only else ""), [target.host]
        )
        driver = RemotePatchDriver(lambda _h: audited_server(target, 120.0))
        try:
            report = update_databases(driver, target.host, sql, update=not check_only)
        except RemoteError as exc:
            raise OperationFailed(
                f"the database update on {sql} failed: {exc.message}; nothing is verified: read the "
                "databases again with --check-only (an account without rights on the SQL Server is the "
                "usual cause)",
                host=target.host,
            ) from None
        finally:
            driver.close()
    code = 0 if report.ok else 1
    if json_out:
        from ocsps.jsonout import to_builtins
        from ocsps.patch.database import DatabaseReportDocument

        doc = to_builtins(DatabaseReportDocument.of(report))
        emit_json({"command": "patch database", **doc, "change_id": change_id, "exit_code": code})
    else:
        out = console()
        for db in report.after or report.before:
            mark = "ok" if db.current else "BEHIND"
            out.print(f"{db.name}: installed {db.installed}, expected {db.expected} ({mark})", markup=False)
        out.print(report.statement(), markup=False)
    raise typer.Exit(code)


def _database_product(product: Product) -> None:
    from ocsps.patch import load_patch_facts

    if product.id not in load_patch_facts().database_products:
        raise UsageError(
            f"{product.name} has no Test-CsDatabase (it arrived with Lync Server 2013): "
            "actions.toml patch-database"
        )


# ------------------------------------------------------------------------------------------- patch pool
def _pool_members(
    opts: TargetOptions, pool: str, servers: list[str]
) -> tuple[Product | None, list[str], list[str]]:
    """(product if known offline, members in topology order, servers to roll or all): from the lab
    topology, else from --host / --hosts-file, else --servers (there is no DNS lookup of pool members)."""
    if opts.lab:
        from ocsps.lab.topology import load_topology

        if opts.hosts:
            raise UsageError(
                "with --lab the pool's members come from the topology; narrow the roll with --servers"
            )
        found = load_topology(opts.lab_topology).pools.get(pool.casefold())
        if found is None:
            raise UsageError(f"the lab topology has no pool {pool!r}")
        return found.product, [m.fqdn for m in found.members], servers
    from ocsps.cli.targets import host_entries

    listed = [host for host, _port in host_entries(opts)]
    if listed:
        return None, listed, servers
    if not servers:
        raise UsageError(
            "which servers are in the pool? there is no DNS lookup of pool members here",
            hint="list them with --servers (in topology order) or --hosts-file, or use --lab",
        )
    return None, servers, []


def _lab_domains(opts: TargetOptions, pool: str) -> tuple[UpgradeDomain, ...]:
    from ocsps.lab.topology import load_topology
    from ocsps.pool import UpgradeDomain

    found = load_topology(opts.lab_topology).pools[pool.casefold()]
    return tuple(UpgradeDomain(name, tuple(servers)) for name, servers in found.upgrade_domains)


def _pool_progress(event: RollEvent) -> None:
    if not is_quiet():
        where = event.server or "pool"
        err_console().print(f"{event.time[11:19]} {where}: {event.message}", markup=False)


@patch_app.command("pool")
@with_target_options
def pool(
    pool_fqdn: Annotated[str, typer.Option("--pool", help="Pool FQDN, e.g. pool01.contoso.com")],
    installer: Annotated[
        str,
        typer.Option(
            "--installer",
            help="Path of the update installer as every member sees it (a local copy on each: a share "
            "needs delegation)",
        ),
    ],
    expect_version: ExpectVersionOpt = "",
    sql_server: Annotated[
        str,
        typer.Option("--sql-server", help="FQDN of the Back End SQL Server, for the database update"),
    ] = "",
    database_update: Annotated[
        bool,
        typer.Option(
            "--database-update/--no-database-update",
            help="After the last server: Test-CsDatabase, Install-CsDatabase -Update where behind, read "
            "again",
        ),
    ] = True,
    servers: Annotated[
        list[str] | None,
        typer.Option(
            "--servers",
            help="Pool members (repeatable or comma-separated). With --lab or --hosts-file they narrow the "
            "roll; otherwise they are the pool's members, in topology order",
        ),
    ] = None,
    install_timeout: InstallTimeoutOpt = None,
    reboot_timeout: Annotated[
        str | None,
        typer.Option("--reboot-timeout", help="From a restart until the server answers again (default 30m)"),
    ] = None,
    drain_timeout: Annotated[
        str | None,
        typer.Option(
            "--drain-timeout",
            help="Deadline for a server to leave or return to the pool (default 1h); services with their own "
            "drain deadline (pools.toml [service_drain]: Response Group) keep it",
        ),
    ] = None,
    stable_for: Annotated[
        str | None, typer.Option("--stable-for", help="Ready must hold this long between units (default 20m)")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the saved roll of this pool at the step each server reached"),
    ] = False,
    rerun_install: RerunInstallOpt = False,
    post_checks: Annotated[
        bool,
        typer.Option(
            "--post-checks",
            help="Once the pool and its databases are done: Test-CsRegistration and Test-CsIM from the first "
            "member (the pool's health-monitoring test users unless --test-user); a failure fails the roll",
        ),
    ] = False,
    test_users: Annotated[
        list[str] | None,
        typer.Option(
            "--test-user",
            help="SIP address the post-checks sign in as; twice: IM sender, then receiver (no password: the "
            "cmdlets run as the server's own test identity)",
        ),
    ] = None,
    what_if: Annotated[
        bool, typer.Option("--what-if", help="Print the roll, each server's steps and scripts; send nothing")
    ] = False,
    emit_script: Annotated[
        str | None,
        typer.Option(
            "--emit-script",
            help="Write into this folder one two-part change-board .ps1 per member (run on the member "
            "itself: -Part 1, restart, -Part 2) and ORDER.txt (the members' order, the database step); "
            "send nothing",
        ),
    ] = None,
    change_id: ChangeIdOpt = "",
    timeout: CallTimeoutOpt = "120s",
    json_out: JsonOpt = False,
    *,
    opts: TargetOptions,
) -> None:
    """Patch a Front End pool: roll it with its own method (failover / failback on Skype for Business
    Server, upgrade domains drained on Lync Server 2013, one server drained at a time on Lync Server
    2010), quorum kept and a stable Ready between units; on each server while it is out, hold start-up
    types Disabled, install, restart if asked, verify every component, restore the types. A version
    mismatch stops the roll with that server left out. Then update the databases, run the synthetic
    transactions with --post-checks, and read every member again. A pool whose members all report the
    version already, in service with no restart pending, is read and left alone (status current).

    Exit codes: 0 every member verified at the version and in service, databases current; 1 stopped by
    a check or failed (the state says where); 2 bad usage (nothing sent); 3 could not connect; 4 timed
    out; 130 interrupted. The roll's state file (one journal, each server's patch record inside) lets
    --resume continue at the step each server reached; a completed install is never run again.
    """
    from ocsps import audit
    from ocsps.patch import RemotePatchDriver, default_options
    from ocsps.patch.plan import check_options
    from ocsps.patch.postchecks import synthetic_post_checks
    from ocsps.patch.rollout import PoolPatchRequest, open_rollout
    from ocsps.pool import RemoteDriver, RollOptions, state_path
    from ocsps.remote.targets import pool_servers

    wanted = [v.strip() for item in servers or () for v in item.split(",") if v.strip()]
    options = default_options(
        expect_version,
        install_timeout=_duration(install_timeout),
        reboot_timeout=_duration(reboot_timeout),
    )
    check_options(options)  # before any password prompt or connection
    if rerun_install and not resume:
        raise UsageError("--rerun-install only applies with --resume")
    from ocsps.checks.synthetic import check_test_users

    test_users = check_test_users(
        test_users or (), post_checks=post_checks, label="--test-user", enable="add --post-checks"
    )
    if resume and (what_if or wanted or drain_timeout or stable_for or install_timeout or reboot_timeout):
        raise UsageError(
            "a resumed roll keeps its saved plan and options; drop --what-if, --servers and timings"
        )
    sql = ""
    if sql_server:
        from ocsps.hostname import check_host

        sql = check_host(sql_server, "--sql-server")
    known, members, only = _pool_members(opts, pool_fqdn, wanted)
    request = PoolPatchRequest(
        pool_fqdn,
        tuple(members),
        installer,
        options,
        RollOptions.from_text(
            labels={"drain_timeout": "--drain-timeout", "stable_for": "--stable-for"},
            drain_timeout=drain_timeout,
            stable_for=stable_for,
        ),
        sql,
        database_update,
        change_id,
        tuple(only),
        domains=_lab_domains(opts, pool_fqdn) if opts.lab else None,
        simulation=opts.lab,
    )
    if emit_script is not None:
        if resume or what_if:
            raise UsageError(
                "--emit-script writes a new roll for the change board; drop --resume and --what-if"
            )
        _pool_emit(request, known or _what_if_product(opts, members[0]), emit_script)
        raise typer.Exit(0)
    if what_if:
        _pool_what_if(request, known or _what_if_product(opts, members[0]), json_out)
        raise typer.Exit(0)
    path = state_path(pool_fqdn, simulation=opts.lab)
    rollout = open_rollout(request, path, resume=resume)
    call_timeout = _duration(timeout) or 120.0
    if opts.lab or (not opts.hosts and opts.hosts_file is None):
        opts.hosts = list(members)
    with open_targets(opts) as (targets, _lab), audit.change(change_id):
        factory, product, _members = pool_servers(targets, members, pool_fqdn, call_timeout)
        pool_driver = RemoteDriver(factory, call_timeout=call_timeout)
        patch_driver = RemotePatchDriver(factory, call_timeout=call_timeout)
        try:
            result = rollout.run(
                pool_driver,
                patch_driver,
                product,
                rerun_install=rerun_install,
                post_checks=synthetic_post_checks(factory, test_users, timeout=call_timeout)
                if post_checks
                else None,
                on_event=_pool_progress,
            )
        finally:
            pool_driver.close()
            patch_driver.close()
    code = result.exit_code
    if json_out:
        from ocsps.jsonout import to_builtins
        from ocsps.patch.pool import PoolPatchResultDocument

        doc = to_builtins(PoolPatchResultDocument.of(result))
        emit_json({"command": "patch pool", **doc, "state_file": str(path), "exit_code": code})
    else:
        out = console()
        out.print(
            f"{pool_fqdn}: {result.status.value}" + (f": {result.reason}" if result.reason else ""),
            markup=False,
        )
        for s in result.servers:
            versions = ", ".join(sorted(set(s.versions.values()))) or "-"
            where = "in service" if s.in_service else "OUT OF SERVICE"
            out.print(f"  {s.server}: {s.phase}, patch {s.patch_status}, {versions}, {where}", markup=False)
        out.print(result.statement(), markup=False)
        out.print(f"state: {path}", markup=False)
    raise typer.Exit(code)


def _pool_emit(request: PoolPatchRequest, product: Product, folder: str) -> None:
    """Every member's script and ORDER.txt, written offline: nothing is sent, nothing is audited."""
    from dataclasses import replace
    from pathlib import Path

    from ocsps.cli.output import write_output
    from ocsps.hostname import check_host
    from ocsps.patch.pool_board import render_pool_boards

    request = replace(
        request,
        pool=check_host(request.pool, "--pool"),
        members=tuple(check_host(m, "--servers") for m in request.members),
        only=tuple(check_host(m, "--servers") for m in request.only),
    )
    state, plans = request.plan(product)
    files = render_pool_boards(state, plans, change_id=request.change_id)
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise UsageError(f"--emit-script takes a folder; {folder} is a file")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    for name, text in files.items():
        write_output(text, target / name)
    if not is_quiet():
        err_console().print(
            f"wrote {len(files) - 1} member script(s) and ORDER.txt into {target}", markup=False
        )


def _pool_what_if(request: PoolPatchRequest, product: Product, json_out: bool) -> None:
    from ocsps.pool import roll_steps

    state, plans = request.plan(product)
    plan = state.plan
    steps = roll_steps(plan, state.options)
    from ocsps.patch.driver import preview_scripts

    scripts = preview_scripts(plans[0], product)
    if json_out:
        from ocsps.jsonout import to_builtins
        from ocsps.pool.plan import RollPlanDocument, RollStepDocument

        emit_json(
            {
                "command": "patch pool",
                "what_if": True,
                "plan": to_builtins(RollPlanDocument.of(plan)),
                "request": state.request,
                "steps": to_builtins([RollStepDocument.of(s) for s in steps]),
                "server_steps": [s.name for s in plans[0].steps],
                "scripts": scripts,
            }
        )
        return
    out = console()
    out.print(
        f"What if: patch pool {plan.pool} ({product.id}, {plan.method.value}) to "
        f"{request.options.expect_version}",
        markup=False,
    )
    out.print(f"Quorum: {plan.rule.describe()}. Members: {', '.join(plan.members)}", markup=False)
    for note in plan.notes:
        out.print(f"note: {note}", markup=False)
    for number, item in enumerate(steps, 1):
        out.print(f"{number:3}. {item.label}", markup=False)
    out.print("On each server (the preflight while it still serves, the rest while it is out):", markup=False)
    for step in plans[0].steps:
        out.print(f"  - {step.name}: {step.summary}", markup=False)
    db = (
        f"Test-CsDatabase, and Install-CsDatabase -Update where behind, on {request.sql_server}"
        if request.database_update and request.sql_server
        else "no database update"
    )
    out.print(f"After the last server: {db}; then every member is read again.", markup=False)
    for script in scripts:
        out.print(f"\n# --- {script['action']} (values bound: {script['parameters']})", markup=False)
        out.print(str(script["script"]), markup=False)
    out.print("\nNothing was sent.", markup=False)
