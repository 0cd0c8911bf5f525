"""``ocsps status | drain | stop | start | restart``: service operations on one server or many.

Each command parses its arguments, calls one library operation per host (``ocsps.operations``) through
the fleet runner, and renders what came back; live displays live in ``ocsps.cli.live``.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocsps import audit
from ocsps.cli.app import app
from ocsps.cli.common import FORCE_HELP, ChangeIdOpt
from ocsps.cli.fanout import ReadParallelOpt, read_parallel
from ocsps.cli.output import console, emit_json, err_console
from ocsps.cli.targets import Target, TargetOptions, audited_server, open_targets, with_target_options
from ocsps.errors import OcspsError, UsageError

if TYPE_CHECKING:
    from ocsps.operations.change import ServiceChange
    from ocsps.operations.drain import DrainReport, Then
    from ocsps.operations.fleet import FleetRun
    from ocsps.powershell.script import RenderedScript
    from ocsps.remote.server import Server
    from ocsps.results import ServiceStatus

ServiceOpt = Annotated[str, typer.Option("--service", "-s", help="Service short name, e.g. RTCMEDSRV")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON document on stdout; people-facing text on stderr")
]
ParallelOpt = Annotated[int, typer.Option("--parallel", min=1, max=256, help="Hosts worked on at once")]
ChangeParallelOpt = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        min=1,
        max=256,
        help="Hosts changed at once. Default: one at a time, stopping at the first failure",
    ),
]
WhatIfOpt = Annotated[
    bool, typer.Option("--what-if", help="Show the scripts and parameters per host; send nothing")
]
EmitOpt = Annotated[
    Path | None, typer.Option("--emit-script", help="Write the operation as a change-board .ps1")
]
TimeoutOpt = Annotated[str, typer.Option("--timeout", help="Deadline per host, e.g. 90s, 15m")]


@contextlib.contextmanager
def _server(target: Target, timeout: float) -> Iterator[Server]:
    """A ``Server`` for one host, closed at the end; not opened up front.

    Its first call opens the session, so a connection that fails while opening (a dropped Create, an
    HTTP 503) is retried inside that call's deadline like any other read, instead of failing the host.
    """
    server = audited_server(target, timeout)
    try:
        yield server
    finally:
        server.close()


def _what_if(
    targets: list[Target],
    steps: Callable[[Target], list[RenderedScript]],
    *,
    json_out: bool = False,
    command: str = "",
) -> None:
    """Show, per host, exactly what would be sent (``ocsps.operations.preview``): script text and bound
    parameters.

    With ``json_out`` the same goes out as one JSON document on stdout (``what_if`` true), as every
    ``--json`` command promises.
    """
    out = console(json_mode=json_out)
    hosts: list[dict[str, object]] = []
    for target in targets:
        shown: list[dict[str, object]] = []
        if not json_out:
            out.rule(f"{target.host} ({target.product.id}) - nothing is sent", style="dim")
        for rendered in steps(target):
            action = rendered.action
            shown.append(
                {
                    "action": action,
                    "parameters": dict(rendered.bound_parameters),
                    "body_sha256": rendered.body_sha256,
                    "script": rendered.script,
                }
            )
            if json_out:
                continue
            out.print(
                f"# {action}: parameters {rendered.bound_parameters}; body sha256 {rendered.body_sha256}",
                markup=False,
            )
            out.print(rendered.script, markup=False, highlight=False)
        hosts.append({"host": target.host, "product": target.product.id, "steps": shown})
    if json_out:
        emit_json({"command": command, "what_if": True, "hosts": hosts, "exit_code": 0})


def _emit(
    action: str,
    targets: list[Target],
    service: str,
    path: Path,
    *,
    leave_running: dict[str, object] | None = None,
    force: bool = False,
) -> None:
    from ocsps.cli.output import write_output
    from ocsps.plans.action_board import action_board
    from ocsps.powershell.changeboard import ChangeInfo

    products = {t.product.id for t in targets}
    if len(products) != 1:
        raise UsageError(
            "--emit-script writes one script for one product; these hosts run " + ", ".join(sorted(products))
        )
    computer = targets[0].host if len(targets) == 1 else ""
    info = ChangeInfo(computer, audit.current_change_id(), "")
    text = action_board(
        action, targets[0].product, service=service, leave_running=leave_running, force=force, info=info
    )
    write_output(text, path)


def _service_values(target: Target, service: str) -> dict[str, object]:
    from ocsps.catalog import load_catalog

    cat = load_catalog()
    return dict(cat.service_parameters(target.product, cat.find_service(target.product, service)))


def _check_service(targets: list[Target], service: str | None, action: str) -> None:
    """Refuse bad input for every host before anything is sent."""
    from ocsps.catalog import load_catalog

    cat = load_catalog()
    for target in targets:
        cat.template_for(action, target.product)
        if service is not None:
            cat.find_service(target.product, service)


def _finish(run: FleetRun[Any], document: dict[str, object], json_out: bool) -> None:
    document["exit_code"] = run.exit_code
    if json_out:
        emit_json(document)
    if run.interrupted:
        err_console().print("interrupted: the states above are the last known ones", markup=False)
    raise typer.Exit(run.exit_code)


def _unprefixed(error: str, host: str) -> str:
    """An error shown in a host's row: the host column names the host once."""
    return error.removeprefix(f"{host}: ")


# ---------------------------------------------------------------------------------------------- status
@app.command()
@with_target_options
def status(
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service")] = None,
    parallel: ReadParallelOpt = None,
    timeout: TimeoutOpt = "60s",
    json_out: JsonOpt = False,
    *,
    options: TargetOptions,
) -> None:
    """Services per host with their status and parsed activity (read in parallel)."""
    from ocsps.cli.live import say_once
    from ocsps.durations import parse_duration
    from ocsps.jsonout import to_builtins
    from ocsps.operations.fleet import HostDocument, run_parallel

    deadline = parse_duration(timeout)
    with open_targets(options, service=service) as (targets, _), say_once():
        _check_service(targets, service, "status")
        by_host = {t.host: t for t in targets}

        def work(host: str, cancel: threading.Event) -> list[ServiceStatus]:
            with _server(by_host[host], deadline) as server:
                return server.services(service)

        # What exists now (modules, the catalog, compiled templates) outlives the fan-out: exempt it from
        # the full collections the hosts' garbage triggers, each of which would otherwise walk every object
        # of the process (about 30 ms, once or more per 50 hosts). Unfrozen after, so nothing is kept.
        gc.freeze()
        try:
            run = run_parallel(list(by_host), work, parallel=read_parallel(parallel, targets))
        finally:
            gc.unfreeze()
    document: dict[str, object] = {
        "command": "status",
        "hosts": to_builtins([HostDocument.of(o) for o in run.outcomes]),
    }
    if not json_out:
        _print_status(run)
    _finish(run, document, json_out)


def _print_status(run: FleetRun[list[ServiceStatus]]) -> None:
    from rich.table import Table

    from ocsps.cli.live import activity_text

    table = Table(title="Service status")
    for col in ("host", "service", "status", "activity"):
        table.add_column(col)
    for outcome in run.outcomes:
        if outcome.state != "ok" or outcome.result is None:
            error = _unprefixed(outcome.error, outcome.host)
            table.add_row(outcome.host, "-", f"[red]{outcome.state}[/red]", error or "-")
            continue
        for s in outcome.result:
            colour = {"Running": "green", "Stopped": "red", "Paused": "yellow"}.get(s.status.value, "white")
            table.add_row(outcome.host, s.name, f"[{colour}]{s.status.value}[/{colour}]", activity_text(s))
    console().print(table)


# ---------------------------------------------------------------------------------------------- drain
@app.command()
@with_target_options
def drain(
    service: ServiceOpt,
    timeout: TimeoutOpt = "30m",
    poll: Annotated[
        str, typer.Option("--poll", help="How often to read status and activity (at most --timeout)")
    ] = "5s",
    then: Annotated[str, typer.Option("--then", help="At the deadline: force-stop, fail or leave")] = "fail",
    leave_running: Annotated[
        list[str] | None,
        typer.Option("--leave-running", help="Keep a service running (2013+: RTCCLSAGT, W3SVC)"),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Request the drain and return at once (exit 0 once accepted)")
    ] = False,
    rolling: Annotated[
        bool, typer.Option("--rolling", help="One host at a time: drain, start again, next")
    ] = False,
    parallel: ChangeParallelOpt = None,
    what_if: WhatIfOpt = False,
    emit_script: EmitOpt = None,
    json_out: JsonOpt = False,
    change_id: ChangeIdOpt = "",
    *,
    options: TargetOptions,
) -> None:
    """Drain a service gracefully (Stop-CsWindowsService -Graceful) and watch it to Stopped.

    New sessions are refused and the service stops once the existing ones end. Several hosts drain one
    at a time unless --parallel N is given.
    """
    from ocsps.durations import parse_duration
    from ocsps.jsonout import to_builtins
    from ocsps.operations.drain import DrainReportDocument, Phase, Then, check_start_again, check_timing
    from ocsps.operations.fleet import HostDocument, change_width

    deadline, interval = parse_duration(timeout), parse_duration(poll)
    try:
        policy = Then(then)
    except ValueError:
        raise UsageError(f"--then must be one of: {', '.join(t.value for t in Then)}") from None
    try:
        check_timing(deadline, interval)
    except UsageError:
        raise UsageError(
            f"--poll {poll} is longer than --timeout {timeout}: the drain would be judged after its "
            "deadline; poll more often or give it more time"
        ) from None
    try:
        check_start_again(rolling, wait=not no_wait, then=policy)
    except UsageError as exc:
        raise UsageError(f"--rolling: {exc.message}") from None
    width = change_width(parallel, rolling=rolling)
    with open_targets(options, service=service) as (targets, _), audit.change(change_id):
        _check_service(targets, service, "drain")
        if no_wait and width is None and len(targets) > 1 and not (what_if or emit_script):
            raise UsageError(
                f"--no-wait on {len(targets)} hosts would take them all out of service at once, since "
                "nothing waits for one to end before the next: name one host, or say --parallel "
                f"{len(targets)}"
            )
        leave = tuple(leave_running or ())
        leave_values = {t.host: _leave_values(t, leave) for t in targets}

        def drain_values(target: Target) -> dict[str, object]:
            return {**_service_values(target, service), "NoWait": True, **leave_values[target.host]}

        if emit_script is not None:
            _emit("drain", targets, service, emit_script, leave_running=leave_values[targets[0].host])
        if what_if:
            from ocsps.catalog import load_catalog
            from ocsps.operations.preview import preview_drain

            cat = load_catalog()
            _what_if(
                targets,
                lambda t: preview_drain(
                    cat, t.product, service, poll=interval, until=deadline, wait=not no_wait,
                    leave_running=leave,
                ),
                json_out=json_out,
                command="drain",
            )
            return
        if emit_script is not None:
            return
        audit.require_writable(f"drain {service}", [t.host for t in targets])
        run = _run_drains(
            targets, service, deadline, interval, policy, leave, not no_wait, rolling, width, json_out
        )
    document: dict[str, object] = {
        "command": "drain",
        "service": service,
        "hosts": to_builtins([HostDocument.of(o, DrainReportDocument.of) for o in run.outcomes]),
    }
    if not json_out:
        from ocsps.cli.live import print_drain_summary

        print_drain_summary([o.result for o in run.outcomes if o.result is not None])
    for outcome in run.outcomes:
        report = outcome.result
        if report is not None and not report.ok:
            outcome.exit_code = report.exit_code
            run.interrupted = run.interrupted or report.phase is Phase.INTERRUPTED
    _finish(run, document, json_out)


def _leave_values(target: Target, names: tuple[str, ...]) -> dict[str, object]:
    from ocsps.catalog import load_catalog
    from ocsps.cli.common import leave_running_values

    return leave_running_values(load_catalog(), target.product, names, where=target.host)


def _run_drains(
    targets: list[Target],
    service: str,
    deadline: float,
    interval: float,
    policy: Then,
    leave: tuple[str, ...],
    wait: bool,
    rolling: bool,
    width: int | None,
    json_out: bool,
) -> FleetRun[DrainReport]:
    from ocsps.cli.live import DrainBoard, say_once
    from ocsps.operations.drain import DrainReport, Phase
    from ocsps.operations.fleet import run_changes

    by_host = {t.host: t for t in targets}
    board = DrainBoard(service, json_out=json_out)

    def work(host: str, cancel: threading.Event) -> DrainReport:
        with _server(by_host[host], deadline) as server:
            try:  # could not connect: nothing was sent (exit 3), as for every command; the host keeps a row
                server.open()
            except OcspsError as exc:
                failed = DrainReport(host, service, phase=Phase.FAILED, error=exc.message)
                failed.error_code = exc.exit_code
                board.update(failed)
                raise
            return server.drain(
                service,
                timeout=deadline,
                poll=interval,
                then=policy,
                leave_running=leave,
                wait=wait,
                on_update=board.update,
                cancel=cancel,
                on_decision=audit.decision_recorder(host, "drain", {"Name": service}),
                start_again=rolling,
            )

    with board, say_once():
        run = run_changes(list(by_host), work, parallel=width, judge=lambda report: report.ok)
    for outcome in run.outcomes:
        if outcome.result is None and outcome.host in board.board:
            outcome.result = board.board[outcome.host]
    return run


# ------------------------------------------------------------------------------- stop / start / restart
def _confirm_stop(service: str, yes: bool) -> Callable[[ServiceStatus], bool]:
    """Whether to stop a service that still carries sessions: --yes, else ask on a terminal, else no."""
    lock = threading.Lock()

    def confirm(before: ServiceStatus) -> bool:
        from ocsps.operations.change import active_sessions

        where = before.computer or "the server"
        count = active_sessions(before)
        if yes:
            err_console().print(
                f"{where}: stopping {service} cuts {count:g} active sessions (--yes)", markup=False
            )
            return True
        if not sys.stdin.isatty():
            return False
        with lock:
            return typer.confirm(
                f"{where}: {service} carries {count:g} active sessions; a stop cuts them "
                "('ocsps drain' lets them end). Stop anyway?",
                default=False,
                err=True,
            )

    return confirm


def _service_operation(
    action: str,
    service: str,
    options: TargetOptions,
    *,
    force: bool,
    timeout: str,
    rolling: bool,
    parallel: int | None,
    what_if: bool,
    emit_script: Path | None,
    json_out: bool,
    yes: bool = False,
    change_id: str = "",
) -> None:
    from ocsps.durations import parse_duration
    from ocsps.jsonout import to_builtins
    from ocsps.operations.change import ServiceChange, ServiceChangeDocument, change_service
    from ocsps.operations.fleet import HostDocument, change_width, run_changes

    deadline = parse_duration(timeout)
    width = change_width(parallel, rolling=rolling)
    with open_targets(options, service=service) as (targets, _), audit.change(change_id):
        _check_service(targets, service, action)

        def values(target: Target) -> dict[str, object]:
            extra: dict[str, object] = {"Force": True} if force and action != "start" else {}
            return {**_service_values(target, service), **extra}

        if emit_script is not None:
            _emit(action, targets, service, emit_script, force=force and action != "start")
        if what_if:
            from ocsps.catalog import load_catalog
            from ocsps.operations.preview import preview_change

            cat = load_catalog()
            _what_if(
                targets,
                lambda t: preview_change(cat, t.product, service, action, force=force),
                json_out=json_out,
                command=action,
            )
            return
        if emit_script is not None:
            return
        audit.require_writable(f"{action} {service}", [t.host for t in targets])
        by_host = {t.host: t for t in targets}
        reports = {host: ServiceChange(host, service, action) for host in by_host}
        confirm = _confirm_stop(service, yes)

        def work(host: str, cancel: threading.Event) -> ServiceChange:
            with _server(by_host[host], deadline) as server:
                return change_service(
                    server,
                    service,
                    action,  # type: ignore[arg-type]
                    force=force,
                    confirm=confirm,
                    on_decision=audit.decision_recorder(host, action, {"Name": service}),
                    report=reports[host],
                    cancel=cancel,
                )

        from ocsps.cli.live import say_once

        with say_once():
            run = run_changes(list(by_host), work, parallel=width, judge=lambda r: r.ok)
        for outcome in run.outcomes:
            if outcome.state in ("failed", "interrupted"):
                outcome.step = reports[outcome.host].last_known
    document: dict[str, object] = {
        "command": action,
        "service": service,
        "hosts": to_builtins([HostDocument.of(o, ServiceChangeDocument.of) for o in run.outcomes]),
    }
    if not json_out:
        _print_operation(action, run)
    _finish(run, document, json_out)


def _print_operation(action: str, run: FleetRun[ServiceChange]) -> None:
    from rich.table import Table

    table = Table(title=f"{action} summary")
    for col in ("host", "result", "before", "after", "note"):
        table.add_column(col)
    for o in run.outcomes:
        r = o.result
        colour = "green" if o.state == "ok" else "red"
        table.add_row(
            o.host,
            f"[{colour}]{o.state}[/{colour}]",
            r.before.status.value if r and r.before else "-",
            r.after.status.value if r and r.after else "-",
            (r.note if r else "") or "; ".join(x for x in (_unprefixed(o.error, o.host), o.step) if x) or "-",
        )
    console().print(table)


ForceOpt = Annotated[bool, typer.Option("--force", help=FORCE_HELP + "; also: do not ask about sessions")]
RollingOpt = Annotated[
    bool, typer.Option("--rolling", help="One host at a time; stop at the first failure (the default)")
]
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Stop even when the service carries active sessions (they are cut)"),
]


@app.command()
@with_target_options
def stop(
    service: ServiceOpt,
    force: ForceOpt = False,
    yes: YesOpt = False,
    timeout: TimeoutOpt = "10m",
    rolling: RollingOpt = False,
    parallel: ChangeParallelOpt = None,
    what_if: WhatIfOpt = False,
    emit_script: EmitOpt = None,
    json_out: JsonOpt = False,
    change_id: ChangeIdOpt = "",
    *,
    options: TargetOptions,
) -> None:
    """Stop a service now, and the services that depend on it; already stopped is success.

    A stop cuts the sessions the service carries: when its ActivityLevel shows any, ocsps asks first
    (--yes to go ahead without asking; without a terminal it refuses). 'ocsps drain' lets them end.
    """
    _service_operation(
        "stop",
        service,
        options,
        force=force,
        timeout=timeout,
        rolling=rolling,
        parallel=parallel,
        what_if=what_if,
        emit_script=emit_script,
        json_out=json_out,
        yes=yes,
        change_id=change_id,
    )


@app.command()
@with_target_options
def start(
    service: ServiceOpt,
    timeout: TimeoutOpt = "10m",
    rolling: RollingOpt = False,
    parallel: ChangeParallelOpt = None,
    what_if: WhatIfOpt = False,
    emit_script: EmitOpt = None,
    json_out: JsonOpt = False,
    change_id: ChangeIdOpt = "",
    *,
    options: TargetOptions,
) -> None:
    """Start a service and its prerequisites; already running is success."""
    _service_operation(
        "start",
        service,
        options,
        force=False,
        timeout=timeout,
        rolling=rolling,
        parallel=parallel,
        what_if=what_if,
        emit_script=emit_script,
        json_out=json_out,
        change_id=change_id,
    )
