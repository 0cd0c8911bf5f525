"""``ocsps check``: preflight checks that catch, before a maintenance window, what would make it fail."""

from __future__ import annotations

import json
import re
import threading
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.fanout import ReadParallelOpt, read_parallel
from ocsps.cli.output import console, emit_json, is_quiet
from ocsps.cli.targets import Target, TargetOptions, open_targets, with_target_options
from ocsps.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from ocsps.checks import CheckOptions, CheckResult, CheckSpec
    from ocsps.operations.fleet import FleetRun

_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def parse_window(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d``, ``1d12h`` to a time window for event look-ups; anything else is refused."""
    raw = text.strip().lower()
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", raw)
    if not raw or match is None or not any(match.groups()):
        raise UsageError(f"cannot read --since {text!r}: use e.g. 90m, 24h, 7d, 1d12h")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    window = timedelta(days=days, hours=hours, minutes=minutes)
    if window <= timedelta(0) or window > timedelta(days=366):
        raise UsageError(f"--since {text!r} is out of range (more than 0, at most 366 days)")
    return window


def load_baseline(path: Path) -> dict[str, dict[str, object]]:
    """A baseline of WMI values: TOML (``[Class]`` tables of ``Property = value``) or the same as JSON."""
    from ocsps.checks.restart_pending import baseline_from_document

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read baseline {path}: {exc.__class__.__name__}") from None
    try:
        doc: object = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"baseline {path} is not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {exc}"
        ) from None
    return baseline_from_document(doc, str(path))


@app.command("check")
@with_target_options
def check(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Checks to run (default: every check; those not for the product are skipped)"),
    ] = None,
    list_checks: Annotated[
        bool, typer.Option("--list", help="Describe the checks and their rules; send nothing")
    ] = False,
    queue_path: Annotated[
        str | None, typer.Option("--queue-path", help="archiving-queue: the destination queue path")
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="drain-ready: the service you will drain")
    ] = None,
    changed: Annotated[
        list[str] | None,
        typer.Option("--changed", "-c", help="restart-pending: a changed setting (WMIClass.Property, ...)"),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="restart-pending: TOML/JSON of WMI values the services started with"),
    ] = None,
    certificate_renewed_same_subject: Annotated[
        bool,
        typer.Option(
            "--certificate-renewed-same-subject",
            help="restart-pending: the new certificate differs from the old only in its expiration date",
        ),
    ] = False,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="deactivation-ready: role key to deactivate; repeatable"),
    ] = None,
    key_reader: Annotated[
        list[str] | None,
        typer.Option("--key-reader", help="tls-certificate: account the service runs as; repeatable"),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="tls-certificate: event window, e.g. 24h, 7d (default 7d)")
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool", help="synthetic: the pool (registrar) the transactions target, e.g. pool01.contoso.com"
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", help="synthetic: SIP address that signs in and sends (default: the pool's test users)"
        ),
    ] = None,
    receiver: Annotated[
        str | None,
        typer.Option("--receiver", help="synthetic: SIP address that receives the IM (with --user)"),
    ] = None,
    parallel: ReadParallelOpt = None,
    timeout: Annotated[str, typer.Option("--timeout", help="Deadline per host, e.g. 90s, 15m")] = "120s",
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout; people-facing text on stderr")
    ] = False,
    *,
    options: TargetOptions,
) -> None:
    """Run preflight checks and print pass / warn / fail with the reason, the fix and the rule cited."""
    from ocsps.checks import complete_options, select_checks
    from ocsps.checks.synthetic import SyntheticOptions
    from ocsps.durations import parse_duration
    from ocsps.jsonout import to_builtins
    from ocsps.operations.fleet import HostDocument

    selected = select_checks(names or [])
    if list_checks:
        _list(selected, json_out)
        return
    if queue_path is not None and not queue_path.strip():
        raise UsageError("--queue-path is empty")
    deadline = parse_duration(timeout)
    synthetic_given = [n for n, v in (("--pool", pool), ("--user", user), ("--receiver", receiver)) if v]
    if synthetic_given and "synthetic" not in selected:
        raise UsageError(
            f"{synthetic_given[0]} only applies to the synthetic check: ocsps check synthetic --pool ..."
        )
    if pool and "synthetic" in selected:
        _synthetic_lab_host(options, pool)
    check_options = SyntheticOptions(
        pool=pool,
        user=user,
        receiver=receiver,
        queue_path=queue_path,
        service=service,
        changed=tuple(changed or ()),
        baseline=load_baseline(baseline) if baseline is not None else None,
        certificate_renewed_same_subject=certificate_renewed_same_subject,
        roles=tuple(role or ()),
        key_readers=tuple(key_reader or ()),
        event_window_hours=parse_window(since).total_seconds() / 3600 if since else None,
    )
    check_options = complete_options(selected, check_options)  # once, not per host
    with open_targets(options, service=service if "drain-ready" in selected else None) as (targets, _):
        run = _run(targets, selected, check_options, deadline, read_parallel(parallel, targets))
    document: dict[str, object] = {
        "command": "check",
        "checks": selected,
        "options": to_builtins(check_options),
        "hosts": to_builtins([HostDocument.of(o, _host_json) for o in run.outcomes]),
        "summary": _summary(run),
    }
    _print(run, console(json_mode=json_out))
    document["exit_code"] = run.exit_code
    if json_out:
        emit_json(document)
    raise typer.Exit(run.exit_code)


def _synthetic_lab_host(options: TargetOptions, pool: str) -> None:
    """With --lab and no host named, the synthetic transactions run on the pool's first member."""
    if not options.lab or options.hosts or options.hosts_file is not None:
        return
    from ocsps.lab.topology import load_topology

    found = load_topology(options.lab_topology).pools.get(pool.strip().casefold())
    if found is None:
        raise UsageError(f"the lab topology has no pool {pool!r}")
    options.hosts = [found.members[0].fqdn]


def _run(
    targets: list[Target], names: list[str], options: CheckOptions, deadline: float, parallel: int
) -> FleetRun[list[CheckResult]]:
    from ocsps.checks import Status, run_checks, validate_checks
    from ocsps.operations.fleet import run_parallel
    from ocsps.remote.server import Server
    from ocsps.remote.session import ServerSession

    for target in targets:  # bad input is refused for every host before anything is sent
        validate_checks(names, target.product, options)
    by_host = {t.host: t for t in targets}

    def work(host: str, cancel: threading.Event) -> list[CheckResult]:
        target = by_host[host]
        server = Server(ServerSession(target.settings, target.product, default_timeout=deadline))
        try:
            return run_checks(server, names, options, timeout=deadline)
        finally:
            server.session.close()

    def judge(results: list[CheckResult]) -> bool:
        return all(r.status is not Status.FAIL for r in results)

    return run_parallel(list(by_host), work, judge=judge, parallel=parallel)


def _host_json(results: list[CheckResult]) -> dict[str, object]:
    from ocsps.checks.spec import worst
    from ocsps.jsonout import to_builtins

    return {
        "status": worst([r.status for r in results]).value,
        "checks": to_builtins(results),
    }


def _summary(run: FleetRun[list[CheckResult]]) -> dict[str, int]:
    counts = {"pass": 0, "warn": 0, "fail": 0, "skip": 0, "hosts_failed": 0}
    for outcome in run.outcomes:
        if outcome.result is None:
            counts["hosts_failed"] += 1
            continue
        for result in outcome.result:
            counts[result.status.value] += 1
    return counts


def _print(run: FleetRun[list[CheckResult]], out: Console) -> None:
    quiet = is_quiet()
    for outcome in run.outcomes:
        if outcome.result is None:
            out.print(f"[red]{outcome.host}: {outcome.state}[/red] {outcome.error}", highlight=False)
            continue
        for result in outcome.result:
            status = result.status.value
            colour = _STYLE[status]
            if quiet and status in ("pass", "skip"):
                continue
            out.print(
                f"[{colour}]{status.upper():4}[/{colour}] {outcome.host} {result.check}", highlight=False
            )
            for finding in result.findings:
                shown = finding.status.value
                if quiet and shown in ("pass", "skip"):
                    continue
                style = _STYLE[shown]
                out.print(f"  [{style}]{shown:4}[/{style}] {finding.rule}: ", end="", highlight=False)
                out.print(finding.reason, markup=False, highlight=False)
                if shown in ("warn", "fail"):
                    if finding.consequence:
                        out.print(f"       consequence: {finding.consequence}", markup=False, highlight=False)
                    if finding.fix:
                        out.print(f"       fix: {finding.fix}", markup=False, highlight=False)
                    out.print(f"       rule: {finding.source}", markup=False, highlight=False, style="dim")
    counts = _summary(run)
    out.print(
        f"checks: {counts['fail']} fail, {counts['warn']} warn, {counts['pass']} pass, {counts['skip']} skip"
        + (f"; {counts['hosts_failed']} host(s) not checked" if counts["hosts_failed"] else ""),
        markup=False,
        highlight=False,
    )


def _list(names: list[str], json_out: bool) -> None:
    from ocsps.checks import load_checks_data

    data = load_checks_data()
    specs = [data.check(n) for n in names]
    if json_out:
        emit_json({"command": "check --list", "checks": [_spec_json(s) for s in specs]})
        return
    out = console()
    for spec in specs:
        out.print(f"[bold]{spec.name}[/bold]: {spec.summary}", highlight=False)
        out.print(f"  source: {spec.source}", markup=False, highlight=False)
        out.print(
            f"  products: {', '.join(spec.products)}; reads with: {', '.join(spec.actions)}", markup=False
        )
        for rule in spec.rules.values():
            out.print(f"  - {rule.id}: {rule.title}", markup=False, highlight=False)
            out.print(f"      rule: {rule.source}", markup=False, highlight=False, style="dim")
            for outcome in rule.outcomes.values():
                out.print(
                    f"      {outcome.status.value:4} {outcome.name}: {outcome.text}",
                    markup=False,
                    highlight=False,
                )
        out.print("")


def _spec_json(spec: CheckSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "summary": spec.summary,
        "source": spec.source,
        "products": list(spec.products),
        "actions": list(spec.actions),
        "settings": spec.settings,
        "rules": [
            {
                "id": r.id,
                "title": r.title,
                "source": r.source,
                "fix": r.fix,
                "consequence": r.consequence,
                "outcomes": {o.name: {"status": o.status.value, "text": o.text} for o in r.outcomes.values()},
            }
            for r in spec.rules.values()
        ],
    }
