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
    from ocsps.patch import PatchEvent, PatchPlan, PatchRecord

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


def _scripts(plan: PatchPlan, product: Product) -> list[dict[str, object]]:
    """Each remote script of the plan, rendered as it would be sent (values shown beside, never inside)."""
    from ocsps.patch import load_patch_facts
    from ocsps.powershell.script import render_action

    flags = load_patch_facts().reboot_flags
    services = ["<each service Get-CsWindowsService lists on the server>"]
    values: dict[str, dict[str, object]] = {
        "status": {"ExcludeActivityLevel": True},
        "patch-state": {
            "Name": services,
            "InstallerPath": plan.installer_path,
            "RebootFlagName": [f.name for f in flags],
            "RebootFlagPath": [f.path for f in flags],
            "RebootFlagValue": [f.value for f in flags],
        },
        "drain": {"Name": services[0], "NoWait": True},
        "stop": {"Name": services[0], "Force": True},
        "patch-set-startup": {"Name": services, "StartupType": "Disabled"},
        "patch-install": {"InstallerPath": plan.installer_path, "Switches": list(plan.arguments)},
        "patch-restart": {},
        "start": {"Name": services[0]},
    }
    seen: list[str] = []
    for step in plan.steps:
        seen += [a for a in step.actions if a not in seen]
    out: list[dict[str, object]] = []
    for action in seen:
        rendered = render_action(action, product, values[action])
        out.append({"action": action, "parameters": rendered.bound_parameters, "script": rendered.script})
    return out


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
    expect_version: Annotated[
        str,
        typer.Option("--expect-version", help="Version every component must report afterwards (required)"),
    ] = "",
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
    install_timeout: Annotated[
        str | None, typer.Option("--install-timeout", help="The installer's deadline (default 2h)")
    ] = None,
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
    change_id: ChangeIdOpt = "",
    timeout: Annotated[str, typer.Option("--timeout", help="Deadline of each ordinary call")] = "120s",
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout; progress on stderr")
    ] = False,
    *,
    opts: TargetOptions,
) -> None:
    """Patch one server that is not in an Enterprise pool (Mediation, Edge, Standard Edition, Director):
    preflight, drain, hold start-up types Disabled, install silently, restart if asked, verify every
    component's version, restore start-up types and start the services.

    Exit codes: 0 patched and back in service; 1 stopped by a check, failed, or a restart pending with
    --reboot never; 2 bad usage (nothing sent); 3 could not connect; 4 timed out; 130 interrupted. Each
    ends with the server's state read again and stated, and a record next to the audit log.
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
    if emit_script is not None:
        from pathlib import Path

        from ocsps.cli.output import write_output
        from ocsps.patch.board import render_patch_board

        plan = plan_patch(host, _what_if_product(opts, host), installer, options)
        write_output(render_patch_board(plan, change_id=change_id), Path(emit_script))
        raise typer.Exit(0)
    if what_if:
        product = _what_if_product(opts, host)
        plan = plan_patch(host, product, installer, options)
        scripts = _scripts(plan, product)
        if json_out:
            emit_json(
                {"command": "patch server", "what_if": True, "plan": plan.to_json(), "scripts": scripts}
            )
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
        plan = plan_patch(target.host, target.product, installer, options)
        audit.require_writable(f"patch server {target.host}", [target.host])
        path = state_path(target.host, simulation=lab is not None)
        driver = RemotePatchDriver(lambda _h: audited_server(target, call_timeout), call_timeout=call_timeout)

        def save(record: PatchRecord) -> None:
            record.change_id = change_id
            save_record(path, record)

        try:
            record = PatchRunner(
                driver, plan, save=save, on_event=_progress, simulation=lab is not None
            ).run()
        finally:
            driver.close()
    code = record.status.exit_code
    if json_out:
        emit_json({"command": "patch server", **record.to_json(), "record": str(path), "exit_code": code})
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
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout; progress on stderr")
    ] = False,
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
        emit_json(
            {"command": "patch database", **report.to_json(), "change_id": change_id, "exit_code": code}
        )
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
            f"{product.name} has no Test-CsDatabase (it arrived with Lync Server 2013): patch.toml [database]"
        )
