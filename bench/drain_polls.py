"""2. A drain watched for a fixed number of polls, at the configured latency per request.

Both variants do the same work against a fresh lab: read the status, ask for a graceful stop
(``-Graceful -NoWait``), then follow the status until it reads Stopped, one status every
``POLL_INTERVAL``. ocsps runs its own ``drain()`` on one open pool: the request and the watch are one
pipeline whose status objects the server writes every interval while the client only receives (plus, as
it always does, the module import at open). The baseline makes every call through a new runspace pool,
as ``Client.execute_ps`` does, and pauses the interval between polls.

The simulated server runs in its own process (``bench.labproc``), so its HTTP threads and PSRP framing
do not share the client's interpreter. Its clock advances one step per status received, moved from the
client side (one line on the lab process's standard input, the same small cost for both), so each drain
takes exactly ``polls`` polls whatever the machine's speed. The interval is short (``POLL_INTERVAL``), so
the wall time is mostly protocol cost; with the watch, the requests overlap the interval instead of
adding to it, which is the point being measured.
"""

from __future__ import annotations

import time
from typing import Any

from bench import baseline
from bench.common import Config, log, ratio, summary
from bench.labproc import LabProcess, client_kwargs, settings_for

SERVICE = "RTCMEDSRV"
POLL_INTERVAL = 0.05
"""Seconds between two statuses, for both variants (the watch's server writes one per interval)."""


def _lab(polls: int, latency_ms: int) -> LabProcess:
    """One simulated server in its own process, draining in exactly ``polls`` steps of its clock."""
    return LabProcess(1, latency_ms, drain_seconds=float(polls), step_clock=True)


def run_ocsps(polls: int, latency_ms: int) -> dict[str, Any]:
    from ocsps.catalog import load_catalog
    from ocsps.operations.drain import DrainReport, Phase, drain
    from ocsps.remote.server import Server
    from ocsps.remote.session import ServerSession

    with _lab(polls, latency_ms) as lab:
        (host,) = lab.info["hosts"]
        fqdn = host["fqdn"]
        product = load_catalog().product(host["product"])
        poll_times: list[float] = []

        def on_update(report: DrainReport) -> None:
            if report.phase is Phase.DRAINING:
                poll_times.append(time.perf_counter())
                lab.set_clock(report.polls + 1)

        started = time.perf_counter()
        server = Server(ServerSession(settings_for(lab.info, fqdn), product))
        with server:
            report = drain(server, SERVICE, timeout=3600, poll=POLL_INTERVAL, on_update=on_update)
        wall = time.perf_counter() - started
        counts = lab.requests()
    polling = poll_times[-1] - poll_times[0] if len(poll_times) > 1 else 0.0
    return {
        "wall": wall,
        "polling": polling,
        "polls": report.polls,
        "phase": report.phase.value,
        "requests": counts.get("requests", 0),
        "pools": 1,
    }


def run_new_pool(polls: int, latency_ms: int) -> dict[str, Any]:
    with _lab(polls, latency_ms) as lab:
        fqdn = lab.hosts[0]
        started = time.perf_counter()
        client = baseline.make_client(client_kwargs(lab.info, fqdn))
        calls = 0
        before, _ = baseline.new_pool_call(client, baseline.STATUS_SCRIPT)
        baseline.new_pool_call(client, baseline.DRAIN_SCRIPT)
        calls += 2
        lab.set_clock(1)
        first_poll = time.perf_counter()
        done = 0
        state = baseline.service_state(before)
        while state != "Stopped" and done < polls * 2:
            time.sleep(POLL_INTERVAL)
            output, _ = baseline.new_pool_call(client, baseline.STATUS_SCRIPT)
            calls += 1
            done += 1
            lab.set_clock(done + 1)
            state = baseline.service_state(output)
            last_poll = time.perf_counter()
        client.wsman.close()
        wall = time.perf_counter() - started
        counts = lab.requests()
    return {
        "wall": wall,
        "polling": last_poll - first_poll if done else 0.0,
        "polls": done,
        "phase": "stopped" if state == "Stopped" else state,
        "requests": counts.get("requests", 0),
        "pools": calls,
    }


def measure(config: Config) -> dict[str, Any]:
    polls = config.drain_polls
    runs: dict[str, list[dict[str, Any]]] = {"ocsps": [], "new_pool": []}
    for index in range(config.repeat):
        log(f"drain, {polls} polls at {config.latency_ms} ms, repeat {index + 1}/{config.repeat} ...")
        runs["ocsps"].append(run_ocsps(polls, config.latency_ms))
        runs["new_pool"].append(run_new_pool(polls, config.latency_ms))
    result: dict[str, Any] = {
        "polls": polls,
        "latency_ms": config.latency_ms,
        "poll_interval_s": POLL_INTERVAL,
    }
    for name, items in runs.items():
        result[name] = {
            "wall": summary([r["wall"] for r in items]),
            # The polling phase spans polls-1 intervals between the first and the last poll.
            "per_poll": summary([r["polling"] / max(1, r["polls"] - 1) for r in items]),
            "polls": [r["polls"] for r in items],
            "phase": [r["phase"] for r in items],
            "requests": [r["requests"] for r in items],
            "pools_opened": items[0]["pools"] if items else 0,
        }
    result["ratio_wall"] = ratio(result["ocsps"]["wall"], result["new_pool"]["wall"])
    result["ratio_per_poll"] = ratio(result["ocsps"]["per_poll"], result["new_pool"]["per_poll"])
    return result
