"""``ocsps status | drain | stop | start | restart``: service operations on one server or many."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocsps.cli.app import app
from ocsps.cli.output import console, emit_json, err_console, is_quiet
from ocsps.cli.targets import Target, TargetOptions, audited_server, open_targets, with_target_options
from ocsps.errors import OcspsError, UsageError

if TYPE_CHECKING:
    from ocsps.operations.drain import DrainReport
    from ocsps.operations.fleet import FleetRun
    from ocsps.powershell.script import RenderedScript
    from ocsps.remote.server import Server
    from ocsps.results import ServiceStatus

ServiceOpt = Annotated[str, typer.Option("--service", "-s", help="Service short name, e.g. RTCMEDSRV")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="One JSON document on stdout; people-facing text on stderr")
]
ParallelOpt = Annotated[int, typer.Option("--parallel", min=1, max=256, help="Hosts worked on at once")]
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


def _record_decision(target: Target, action: str, service: str, note: str) -> None:
    """Audit what was decided after a lost reply: the re-read state, and whether it was sent again."""
    from ocsps import audit

    audit.record(
        host=target.host,
        action=action,
        parameters={"Name": service},
        outcome=f"decided: {note}",
        duration=0.0,
        detail="re-read after an unknown outcome",
    )


def _what_if(targets: list[Target], steps: Callable[[Target], list[tuple[str, dict[str, object]]]]) -> None:
    """Print, per host, exactly what would be sent: script text and bound parameters."""
    from ocsps.powershell.script import render_action

    out = console()
    for target in targets:
        out.rule(f"{target.host} ({target.product.id}) - nothing is sent", style="dim")
        for action, values in steps(target):
            rendered = render_action(action, target.product, values)
            out.print(
                f"# {action}: parameters {rendered.bound_parameters}; body sha256 {rendered.body_sha256}",
                markup=False,
            )
            out.print(rendered.script, markup=False, highlight=False)


def _chosen_values(rendered: RenderedScript) -> dict[str, object]:
    """A rendered step's values without those its action fixes itself (rendering adds them again)."""
    from ocsps.catalog import load_catalog

    fixed = load_catalog().action(rendered.action).fixed.get(rendered.product.service_control, {})
    return {name: value for name, value in rendered.values.items() if name not in fixed}


def _emit(action: str, targets: list[Target], values: dict[str, object], path: Path, title: str) -> None:
    from ocsps.cli.output import write_output
    from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board
    from ocsps.powershell.script import render_action

    products = {t.product.id for t in targets}
    if len(products) != 1:
        raise UsageError(
            "--emit-script writes one script for one product; these hosts run " + ", ".join(sorted(products))
        )
    rendered = render_action(action, targets[0].product, values)
    computer = targets[0].host if len(targets) == 1 else ""
    write_output(render_change_board(title, [Step(title, rendered)], ChangeInfo(computer, "", "")), path)


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


def _activity_text(status: ServiceStatus) -> str:
    if status.activity is None or not len(status.activity):
        return "-"
    return ", ".join(f"{c.name}={c.value}" for c in status.activity)


# ---------------------------------------------------------------------------------------------- status
@app.command()
@with_target_options
def status(
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service")] = None,
    parallel: ParallelOpt = 16,
    timeout: TimeoutOpt = "60s",
    json_out: JsonOpt = False,
    *,
    options: TargetOptions,
) -> None:
    """Services per host with their status and parsed activity."""
    from ocsps.durations import parse_duration
    from ocsps.operations.fleet import run_parallel

    deadline = parse_duration(timeout)
    with open_targets(options, service=service) as (targets, _):
        _check_service(targets, service, "status")
        by_host = {t.host: t for t in targets}

        def work(host: str, cancel: threading.Event) -> list[ServiceStatus]:
            with _server(by_host[host], deadline) as server:
                return server.services(service)

        run = run_parallel(list(by_host), work, parallel=parallel)
    document: dict[str, object] = {
        "command": "status",
        "hosts": [o.to_json(lambda r: [s.to_json() for s in r]) for o in run.outcomes],
    }
    if not json_out:
        _print_status(run)
    _finish(run, document, json_out)


def _print_status(run: FleetRun[list[ServiceStatus]]) -> None:
    from rich.table import Table

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
            table.add_row(outcome.host, s.name, f"[{colour}]{s.status.value}[/{colour}]", _activity_text(s))
    console().print(table)


# ---------------------------------------------------------------------------------------------- drain
@app.command()
@with_target_options
def drain(
    service: ServiceOpt,
    timeout: TimeoutOpt = "30m",
    poll: Annotated[str, typer.Option("--poll", help="How often to read status and activity")] = "5s",
    then: Annotated[str, typer.Option("--then", help="At the deadline: force-stop, fail or leave")] = "fail",
    leave_running: Annotated[
        list[str] | None,
        typer.Option("--leave-running", help="Keep a service running (2013+: RTCCLSAGT, W3SVC)"),
    ] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Request the drain and return at once")] = False,
    rolling: Annotated[
        bool, typer.Option("--rolling", help="One host at a time: drain, start again, next")
    ] = False,
    parallel: ParallelOpt = 16,
    what_if: WhatIfOpt = False,
    emit_script: EmitOpt = None,
    json_out: JsonOpt = False,
    *,
    options: TargetOptions,
) -> None:
    """Drain a service gracefully (Stop-CsWindowsService -Graceful) and watch it to Stopped."""
    from ocsps.durations import parse_duration
    from ocsps.operations.drain import Phase, Then

    deadline, interval = parse_duration(timeout), parse_duration(poll)
    try:
        policy = Then(then)
    except ValueError:
        raise UsageError(f"--then must be one of: {', '.join(t.value for t in Then)}") from None
    with open_targets(options, service=service) as (targets, _):
        _check_service(targets, service, "drain")
        leave = tuple(leave_running or ())
        leave_values = {t.host: _leave_values(t, leave) for t in targets}

        def drain_values(target: Target) -> dict[str, object]:
            return {**_service_values(target, service), "NoWait": True, **leave_values[target.host]}

        if what_if:
            _what_if(targets, lambda t: [("status", _service_values(t, service)), ("drain", drain_values(t))])
            return
        if emit_script is not None:
            values = {**drain_values(targets[0]), "NoWait": False}
            _emit("drain", targets, values, emit_script, f"drain {service}")
            return
        reports = _run_drains(
            targets, service, deadline, interval, policy, leave, not no_wait, rolling, parallel, json_out
        )
    run, board = reports
    document: dict[str, object] = {
        "command": "drain",
        "service": service,
        "hosts": [o.to_json(lambda r: r.to_json()) for o in run.outcomes],
    }
    if not json_out:
        _print_drain_summary(board)
    for outcome in run.outcomes:
        report = outcome.result
        if report is not None and report.phase is Phase.DEADLINE:
            outcome.exit_code = 4
        if report is not None and report.phase is Phase.FAILED and report.error_code:
            outcome.exit_code = report.error_code
        if report is not None and report.phase is Phase.INTERRUPTED:
            run.interrupted = True
    _finish(run, document, json_out)


def _leave_values(target: Target, names: tuple[str, ...]) -> dict[str, object]:
    from ocsps.catalog import load_catalog
    from ocsps.cli.common import leave_running_values

    cat = load_catalog()
    keep = [n for n in names if cat.find_service(target.product, n).leave_running_switch]
    for name in names:
        if name not in keep and not is_quiet():
            err_console().print(
                f"{target.host}: {name} keeps running: drain stops only the service named", markup=False
            )
    return leave_running_values(cat, target.product, keep)


def _run_drains(
    targets: list[Target],
    service: str,
    deadline: float,
    interval: float,
    policy: Any,
    leave: tuple[str, ...],
    wait: bool,
    rolling: bool,
    parallel: int,
    json_out: bool,
) -> tuple[FleetRun[DrainReport], dict[str, DrainReport]]:
    from ocsps.operations.drain import DrainReport, Phase
    from ocsps.operations.drain import drain as drain_service
    from ocsps.operations.fleet import run_parallel, run_rolling

    by_host = {t.host: t for t in targets}
    board: dict[str, DrainReport] = {}
    lock = threading.Lock()

    printed: dict[str, str] = {}

    def update(report: DrainReport) -> None:
        with lock:
            board[report.host] = report
            changed = printed.get(report.host) != report.phase.value
            printed[report.host] = report.phase.value
        if changed and (json_out or not _live_ok()) and not is_quiet():
            status = report.last.status.value if report.last else "unknown"
            err_console().print(f"{report.host}: {service} {report.phase.value} ({status})", markup=False)

    def work(host: str, cancel: threading.Event) -> DrainReport:
        with _server(by_host[host], deadline) as server:
            try:  # unreachable: "could not connect, nothing sent" (exit 3), as for every command
                server.open()
            except OcspsError as exc:
                update(DrainReport(host, service, phase=Phase.FAILED, error=exc.message))
                raise
            report = drain_service(
                server,
                service,
                timeout=deadline,
                poll=interval,
                then=policy,
                leave_running=leave,
                wait=wait,
                on_update=update,
                cancel=cancel,
                on_decision=lambda note: _record_decision(by_host[host], "drain", service, note),
            )
            if rolling and report.ok and report.phase.value in ("stopped", "forced"):
                started = server.start(service)
                report.note = (
                    report.note + "; " if report.note else ""
                ) + f"started again: {started.status.value}"
                if not started.is_running:
                    report.error = f"{service} did not come back to Running ({started.status.value})"
            return report

    def judge(report: DrainReport) -> bool:
        return report.ok and not report.error

    with _live_board(board, lock, service, enabled=not json_out and _live_ok()):
        if rolling:
            run = run_rolling(list(by_host), work, judge=judge)
        else:
            run = run_parallel(list(by_host), work, parallel=parallel, judge=judge)
    for outcome in run.outcomes:
        if outcome.result is None and outcome.host in board:
            outcome.result = board[outcome.host]
    return run, board


def _live_ok() -> bool:
    import sys

    return sys.stdout.isatty() and not is_quiet()


class _live_board:
    """A live per-host display while drains run: phase, status, activity, elapsed time."""

    def __init__(
        self, board: dict[str, DrainReport], lock: threading.Lock, service: str, *, enabled: bool
    ) -> None:
        self.board, self.lock, self.service, self.enabled = board, lock, service, enabled
        self.live: Any = None

    def render(self) -> Any:
        from rich.table import Table

        table = Table(title=f"Draining {self.service}")
        for col in ("host", "phase", "status", "activity", "elapsed"):
            table.add_column(col)
        with self.lock:
            reports = list(self.board.values())
        for r in reports:
            status = r.last.status.value if r.last else "-"
            table.add_row(
                r.host, r.phase.value, status, _activity_text(r.last) if r.last else "-", f"{r.elapsed:.0f}s"
            )
        return table

    def __enter__(self) -> _live_board:
        if self.enabled:
            from rich.live import Live

            self.live = Live(
                get_renderable=self.render, console=console(), refresh_per_second=4, transient=True
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)


def _print_drain_summary(board: dict[str, DrainReport]) -> None:
    from rich.table import Table

    table = Table(title="Drain summary")
    for col in ("host", "service", "result", "status", "elapsed", "events", "note"):
        table.add_column(col)
    for r in board.values():
        events = ", ".join(f"{e.id} at {e.time.strftime('%H:%M:%S')}" for e in r.events) or "-"
        result = "[green]ok[/green]" if r.ok and not r.error else f"[red]{r.phase.value}[/red]"
        status = r.last.status.value if r.last else "unknown"
        note = _unprefixed(r.error, r.host) or r.note or "-"
        table.add_row(r.host, r.service, result, status, f"{r.elapsed:.1f}s", events, note)
    console().print(table)


# ------------------------------------------------------------------------------- stop / start / restart
def _service_operation(
    action: str,
    service: str,
    options: TargetOptions,
    *,
    force: bool,
    timeout: str,
    rolling: bool,
    parallel: int,
    what_if: bool,
    emit_script: Path | None,
    json_out: bool,
) -> None:
    from ocsps.durations import parse_duration
    from ocsps.operations.fleet import run_parallel, run_rolling

    deadline = parse_duration(timeout)
    with open_targets(options, service=service) as (targets, _):
        _check_service(targets, service, action)

        def values(target: Target) -> dict[str, object]:
            extra: dict[str, object] = {"Force": True} if force and action != "start" else {}
            return {**_service_values(target, service), **extra}

        if what_if:
            _what_if(targets, lambda t: [("status", _service_values(t, service)), (action, values(t))])
            return
        if emit_script is not None:
            _emit(action, targets, values(targets[0]), emit_script, f"{action} {service}")
            return
        by_host = {t.host: t for t in targets}
        wanted = "Stopped" if action == "stop" else "Running"
        last_known: dict[str, str] = {}

        def work(host: str, cancel: threading.Event) -> dict[str, object]:
            from ocsps.operations.change import STARTING, STOPPING, apply_change

            started = time.monotonic()
            with _server(by_host[host], deadline) as server:
                before = server.status(service)
                last_known[host] = f"last known state: {before.status.value} (read before {action})"
                if action != "restart" and before.status.value == wanted:
                    return {
                        "before": before.to_json(),
                        "after": before.to_json(),
                        "changed": False,
                        "note": f"already {wanted.lower()}: nothing to do",
                        "seconds": 0.0,
                    }
                if action == "stop":
                    send, took_effect = (lambda: server.stop(service, force=force)), STOPPING
                elif action == "start":
                    send, took_effect = (lambda: server.start(service)), STARTING
                else:
                    send, took_effect = (lambda: server.restart(service, force=force)), None
                after, note = apply_change(
                    server,
                    service,
                    send,
                    took_effect,
                    what=action,
                    on_decision=lambda text: _record_decision(by_host[host], action, service, text),
                )
                last_known[host] = f"last known state: {after.status.value} (after {action})"
                return {
                    "before": before.to_json(),
                    "after": after.to_json(),
                    "changed": True,
                    "note": note,
                    "seconds": round(time.monotonic() - started, 3),
                }

        def judge(result: dict[str, object]) -> bool:
            after = result["after"]
            return isinstance(after, dict) and after.get("status") == wanted

        if rolling:
            run = run_rolling(list(by_host), work, judge=judge)
        else:
            run = run_parallel(list(by_host), work, parallel=parallel, judge=judge)
        for outcome in run.outcomes:
            if outcome.state in ("failed", "interrupted"):
                outcome.step = last_known.get(outcome.host, "last known state: unknown (never read)")
    document: dict[str, object] = {
        "command": action,
        "service": service,
        "hosts": [o.to_json(lambda r: r) for o in run.outcomes],
    }
    if not json_out:
        _print_operation(action, run)
    _finish(run, document, json_out)


def _print_operation(action: str, run: FleetRun[dict[str, object]]) -> None:
    from rich.table import Table

    table = Table(title=f"{action} summary")
    for col in ("host", "result", "before", "after", "note"):
        table.add_column(col)
    for o in run.outcomes:
        r = o.result or {}
        before = r.get("before") if isinstance(r.get("before"), dict) else {}
        after = r.get("after") if isinstance(r.get("after"), dict) else {}
        assert isinstance(before, dict) and isinstance(after, dict)
        colour = "green" if o.state == "ok" else "red"
        table.add_row(
            o.host,
            f"[{colour}]{o.state}[/{colour}]",
            str(before.get("status", "-")),
            str(after.get("status", "-")),
            str(r.get("note") or "; ".join(x for x in (_unprefixed(o.error, o.host), o.step) if x) or "-"),
        )
    console().print(table)


ForceOpt = Annotated[bool, typer.Option("--force", help="Stop without waiting for sessions")]
RollingOpt = Annotated[bool, typer.Option("--rolling", help="One host at a time; stop at the first failure")]


@app.command()
@with_target_options
def stop(
    service: ServiceOpt,
    force: ForceOpt = False,
    timeout: TimeoutOpt = "10m",
    rolling: RollingOpt = False,
    parallel: ParallelOpt = 16,
    what_if: WhatIfOpt = False,
    emit_script: EmitOpt = None,
    json_out: JsonOpt = False,
    *,
    options: TargetOptions,
) -> None:
    """Stop a service and the services that depend on it; already stopped is success."""
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
    )


@app.command()
@with_target_options
def start(
    service: ServiceOpt,
    timeout: TimeoutOpt = "10m",
    rolling: RollingOpt = False,
    parallel: ParallelOpt = 16,
    what_if: WhatIfOpt = False,
    emit_script: EmitOpt = None,
    json_out: JsonOpt = False,
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
    )


@app.command()
@with_target_options
def restart(
    service: Annotated[str | None, typer.Option("--service", "-s", help="Service short name")] = None,
    plan: Annotated[
        Path | None, typer.Option("--plan", help="Run a plan written by 'ocsps plan restart -o'")
    ] = None,
    reapprove: Annotated[
        bool, typer.Option("--reapprove", help="Accept a plan edited after it was written")
    ] = False,
    force: ForceOpt = False,
    timeout: TimeoutOpt = "10m",
    rolling: RollingOpt = False,
    parallel: ParallelOpt = 16,
    what_if: WhatIfOpt = False,
    emit_script: EmitOpt = None,
    json_out: JsonOpt = False,
    *,
    options: TargetOptions,
) -> None:
    """Stop a service, then start it again; or run a restart plan's steps in order."""
    if (service is None) == (plan is None):
        raise UsageError("give either --service or --plan")
    if service is not None:
        _service_operation(
            "restart",
            service,
            options,
            force=force,
            timeout=timeout,
            rolling=rolling,
            parallel=parallel,
            what_if=what_if,
            emit_script=emit_script,
            json_out=json_out,
        )
        return
    assert plan is not None
    _run_restart_plan(
        plan,
        options,
        reapprove=reapprove,
        timeout=timeout,
        rolling=rolling,
        parallel=parallel,
        what_if=what_if,
        json_out=json_out,
    )


def _run_restart_plan(
    path: Path,
    options: TargetOptions,
    *,
    reapprove: bool,
    timeout: str,
    rolling: bool,
    parallel: int,
    what_if: bool,
    json_out: bool,
) -> None:
    from ocsps.durations import parse_duration
    from ocsps.operations.fleet import run_parallel, run_rolling
    from ocsps.plans.sealed import load_plan, restart_steps

    deadline = parse_duration(timeout)
    document_plan = load_plan(path, "restart", reapprove=reapprove)
    steps = restart_steps(document_plan)
    product_id = steps[0].rendered.product.id if steps else ""
    if options.product is None:
        options.product = product_id
    with open_targets(options) as (targets, _):
        wrong = [t.host for t in targets if t.product.id != product_id]
        if wrong:
            raise UsageError(f"the plan is for {product_id}; {', '.join(wrong)} run another product")
        if what_if:
            _what_if(targets, lambda t: [(s.rendered.action, _chosen_values(s.rendered)) for s in steps])
            return
        by_host = {t.host: t for t in targets}
        reached: dict[str, str] = {}

        def work(host: str, cancel: threading.Event) -> dict[str, object]:
            done = []
            with _server(by_host[host], deadline) as server:
                for number, step in enumerate(steps, 1):
                    if cancel.is_set():
                        break
                    reached[host] = f"step {number}/{len(steps)}: {step.label}"
                    server.session.run(step.rendered).raise_for_errors()
                    done.append(step.label)
            return {"steps_done": done, "steps_total": len(steps)}

        def judge(result: dict[str, object]) -> bool:
            return result["steps_done"] == [s.label for s in steps]

        if rolling:
            run = run_rolling(list(by_host), work, judge=judge)
        else:
            run = run_parallel(list(by_host), work, judge=judge, parallel=parallel)
        for outcome in run.outcomes:
            outcome.step = reached.get(outcome.host, "not started")
    document: dict[str, object] = {
        "command": "restart",
        "plan": str(path),
        "hosts": [o.to_json(lambda r: r) for o in run.outcomes],
    }
    if not json_out:
        for o in run.outcomes:
            console().print(
                f"{o.host}: {o.state}; reached {o.step}" + (f"; {o.error}" if o.error else ""), markup=False
            )
    _finish(run, document, json_out)
