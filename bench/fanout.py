"""3. Fan-out: the status of N simulated servers, as ``ocsps status`` does it, at injected latency.

The lab runs in its own process with the largest fleet; each measurement is a fresh worker process
(``python -m bench.fanout --worker``) that opens a session per host with ``run_parallel``, reads every
service's status and closes, exactly like the ``status`` command. The worker reports its wall time
(imports excluded), its CPU time, and its peak resident memory (``ru_maxrss``), so memory figures are the
client's alone. The baseline worker is a plain pypsrp loop: one ``execute_ps``-style call per host,
one host after the other, which is what a script without a thread pool does.

The whole command is measured too: ``ocsps status --json`` with default settings (so at the default
``--parallel``), from process start to exit, start-up and output included. Only the servers' addresses
are injected (``--command-worker``): the lab serves every host on one port under its own URL path, which
flags and profiles cannot express per host, so the worker hands the command the lab's connection
settings where it would otherwise resolve them from ``--host``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from bench.common import (
    PYTHON,
    Config,
    child_env,
    cpu_seconds,
    last_json_line,
    log,
    peak_rss_mb,
    ratio,
    run_child,
    summary,
)
from bench.labproc import LabProcess, client_kwargs, settings_for

ENV_INFO = "OCSPS_BENCH_LAB"


def worker(hosts: int, parallel: int, mode: str) -> dict[str, Any]:
    """Runs in the measurement process: connect to the lab process described in the environment."""
    info: dict[str, Any] = json.loads(os.environ[ENV_INFO])
    names = [h["fqdn"] for h in info["hosts"]][:hosts]
    # Both tools import pypsrp lazily; load it before the idle reading so "idle" means the same for both.
    import pypsrp.client
    import pypsrp.powershell  # noqa: F401
    if mode == "ocsps":
        import threading

        from ocsps.catalog import load_catalog
        from ocsps.operations.fleet import run_parallel
        from ocsps.remote.server import Server
        from ocsps.remote.session import ServerSession
        from ocsps.results import ServiceStatus

        catalog = load_catalog()
        products = {h["fqdn"]: catalog.product(h["product"]) for h in info["hosts"]}
        settings = {name: settings_for(info, name) for name in names}
        idle_rss, cpu_before = peak_rss_mb(), cpu_seconds()

        def work(host: str, cancel: threading.Event) -> list[ServiceStatus]:
            with Server(ServerSession(settings[host], products[host], default_timeout=120)) as server:
                return server.services()

        started = time.perf_counter()
        run = run_parallel(names, work, parallel=parallel)
        wall = time.perf_counter() - started
        ok = sum(1 for o in run.outcomes if o.state == "ok")
        errors = sorted({o.error for o in run.outcomes if o.state != "ok"})[:3]
    else:
        from bench import baseline

        idle_rss, cpu_before = peak_rss_mb(), cpu_seconds()
        started = time.perf_counter()
        ok, errors = 0, []
        for name in names:
            client = baseline.make_client(client_kwargs(info, name))
            output, had_errors = baseline.new_pool_call(client, "Get-CsWindowsService")
            client.wsman.close()
            if output and not had_errors:
                ok += 1
        wall = time.perf_counter() - started
    return {
        "hosts": len(names),
        "parallel": parallel,
        "mode": mode,
        "wall": wall,
        "ok": ok,
        "errors": errors,
        "cpu": round(cpu_seconds() - cpu_before, 3),
        "idle_rss_mb": idle_rss,
        "peak_rss_mb": peak_rss_mb(),
    }


def command_worker(hosts: int) -> int:
    """Runs ``ocsps status --json`` in this process against the first ``hosts`` servers of the lab."""
    info: dict[str, Any] = json.loads(os.environ[ENV_INFO])
    names = [h["fqdn"] for h in info["hosts"]][:hosts]
    import ocsps.cli.targets as targets
    from ocsps.catalog import load_catalog
    from ocsps.cli import main

    catalog = load_catalog()
    products = {h["fqdn"]: catalog.product(h["product"]) for h in info["hosts"]}

    def lab_targets(options: Any) -> list[Any]:
        return [targets.Target(settings_for(info, name), products[name]) for name in options.hosts]

    targets.resolve_targets = lab_targets  # type: ignore[assignment]
    argv = ["status", "--json"]
    for name in names:
        argv += ["--host", name]
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _whole_command(lab: LabProcess, hosts: int) -> dict[str, Any]:
    env = child_env({ENV_INFO: json.dumps(lab.info)})
    argv = [PYTHON, "-m", "bench.fanout", "--command-worker", "--hosts", str(hosts)]
    child = run_child(argv, env=env, timeout=900)
    try:
        document = json.loads(child.stdout)
        ok = sum(1 for h in document["hosts"] if h.get("state") == "ok")
    except (ValueError, KeyError, TypeError):
        ok = 0
    errors = [] if child.returncode == 0 else [child.stderr.strip()[-300:]]
    return {
        "wall": child.wall, "cpu": child.cpu, "peak_rss_mb": child.peak_rss_mb, "ok": ok, "errors": errors,
    }


def _one(lab: LabProcess, hosts: int, parallel: int, mode: str) -> dict[str, Any]:
    env = child_env({ENV_INFO: json.dumps(lab.info)})
    argv = [PYTHON, "-m", "bench.fanout", "--worker", "--hosts", str(hosts), "--parallel", str(parallel)]
    argv += ["--mode", mode]
    child = run_child(argv, env=env, timeout=900)
    if child.returncode != 0:
        raise RuntimeError(f"fan-out worker failed ({child.returncode}): {child.stderr.strip()[-500:]}")
    result = last_json_line(child.stdout)
    result["process_wall"] = round(child.wall, 3)
    return result


def _series(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "wall": summary([r["wall"] for r in runs]),
        "cpu": summary([r["cpu"] for r in runs]),
        "peak_rss_mb": summary([r["peak_rss_mb"] for r in runs], digits=1),
        "idle_rss_mb": summary([r["idle_rss_mb"] for r in runs], digits=1),
        "ok": [r["ok"] for r in runs],
        "errors": sorted({e for r in runs for e in r["errors"]}),
    }


def measure(config: Config) -> dict[str, Any]:
    sizes = sorted(set(config.fanout_sizes))
    largest = max(sizes + list(config.baseline_fanout_sizes))
    series: list[dict[str, Any]] = []
    with LabProcess(largest, config.latency_ms) as lab:
        for parallel in config.fanout_parallel:
            for hosts in sizes:
                # Serial runs of big fleets take minutes: past serial_cap hosts they are measured once.
                times = config.repeat if parallel > 1 or hosts <= config.serial_cap else 1
                runs = []
                for index in range(times):
                    log(f"fan-out: {hosts} hosts, parallel {parallel}, repeat {index + 1}/{times} ...")
                    runs.append(_one(lab, hosts, parallel, "ocsps"))
                series.append({"tool": "ocsps", "hosts": hosts, "parallel": parallel, **_series(runs)})
        # What other widths give on the big fleets (measured once: it informs, it is not a goal).
        for parallel in config.wide_parallel:
            for hosts in sorted(set(config.wide_sizes) & set(sizes)):
                log(f"fan-out: {hosts} hosts, parallel {parallel} ...")
                runs = [_one(lab, hosts, parallel, "ocsps")]
                series.append(
                    {"tool": "ocsps", "hosts": hosts, "parallel": parallel, "wide": True, **_series(runs)}
                )
        whole: list[dict[str, Any]] = []
        for hosts in sizes:
            runs = []
            for index in range(config.repeat):
                log(f"fan-out: whole command, {hosts} hosts, repeat {index + 1}/{config.repeat} ...")
                runs.append(_whole_command(lab, hosts))
            whole.append(
                {
                    "hosts": hosts,
                    "wall": summary([r["wall"] for r in runs]),
                    "cpu": summary([r["cpu"] for r in runs]),
                    "peak_rss_mb": summary([r["peak_rss_mb"] for r in runs], digits=1),
                    "ok": [r["ok"] for r in runs],
                    "errors": sorted({e for r in runs for e in r["errors"]}),
                }
            )
        for hosts in sorted(set(config.baseline_fanout_sizes)):
            runs = []
            for index in range(config.repeat):
                log(f"fan-out: {hosts} hosts, plain pypsrp loop, repeat {index + 1}/{config.repeat} ...")
                runs.append(_one(lab, hosts, 1, "pypsrp"))
            series.append({"tool": "pypsrp loop", "hosts": hosts, "parallel": 1, **_series(runs)})
    default = _default_parallel()
    for item in series:
        # Each series against one host of the same tool and pool width (other widths: the default's).
        width = default if item.get("wide") else item["parallel"]
        one = next(
            (
                s for s in series
                if s["tool"] == item["tool"]
                and s["parallel"] == width
                and s["hosts"] == 1
                and not s.get("wide")
            ),
            None,
        )
        item["vs_one_host"] = ratio(item["wall"], one["wall"]) if one is not None else None
    ratios = {
        str(parallel): {
            str(s["hosts"]): s["vs_one_host"]
            for s in series
            if s["tool"] == "ocsps" and s["parallel"] == parallel and not s.get("wide")
        }
        for parallel in config.fanout_parallel
    }
    one_host = next((w for w in whole if w["hosts"] == 1), None)
    for item in whole:
        item["vs_one_host"] = ratio(item["wall"], one_host["wall"]) if one_host is not None else None
    return {
        "latency_ms": config.latency_ms,
        "default_parallel": default,
        "whole_command": whole,
        "lab": "separate process, same machine",
        "series": series,
        "ratio_to_one_host": ratios,
    }


def _default_parallel() -> int:
    """The width ``ocsps status`` uses when nothing sets one."""
    from ocsps.cli.fanout import DEFAULT_READ_PARALLEL

    return DEFAULT_READ_PARALLEL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout")
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--worker", action="store_true")
    role.add_argument("--command-worker", action="store_true")
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--mode", choices=("ocsps", "pypsrp"), default="ocsps")
    args = parser.parse_args(argv)
    if args.command_worker:
        return command_worker(args.hosts)
    print(json.dumps(worker(args.hosts, args.parallel, args.mode)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
