"""1. WSMan requests per operation, counted by the lab: ocsps on one open pool vs a new pool per call.

Counts do not depend on latency or machine load, so they are taken once per repeat against a lab
without injected latency, and the repeats only confirm they are stable. ``http`` is every HTTP request
(NTLM handshake legs included); the action columns are the WSMan actions among them.

A drain is watched in one pipeline that the server feeds with a status every poll, so its per-poll cost
is measured over a watch of ``WATCH_POLLS`` statuses: the requests between the first and the last status,
per status (steady state), next to the whole pipeline's count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import baseline
from bench.common import Config, log

ACTIONS = ("Create", "Command", "Receive", "Signal", "Delete")
SERVICE = "RTCMEDSRV"
WATCH_POLLS = 20
WATCH_INTERVAL = 0.2
"""Seconds between the watch's statuses: longer than the lab's Receive linger (50 ms), so that statuses are
not merged into one reply, as with a real poll interval of seconds."""


def _row(operation: str, tool: str, counts: dict[str, int], note: str = "") -> dict[str, Any]:
    row: dict[str, Any] = {"operation": operation, "tool": tool}
    for action in ACTIONS:
        row[action] = counts.get(action, 0)
    row["auth_legs"] = counts.get("auth", 0)
    row["http_401"] = counts.get("401", 0)
    row["http"] = counts.get("requests", 0)
    row["wsman"] = sum(counts.get(a, 0) for a in ACTIONS)
    row["note"] = note
    return row


def _count_once() -> tuple[list[dict[str, Any]], float | None]:
    from ocsps.lab.runtime import Lab
    from ocsps.lab.topology import synthetic_topology
    from ocsps.remote.connector import lab_settings
    from ocsps.remote.server import Server
    from ocsps.remote.session import ServerSession

    topology = synthetic_topology(1, drain_seconds=3600)
    fqdn = topology.servers[0].fqdn
    rows: list[dict[str, Any]] = []
    with Lab(topology=topology) as lab:

        def counted(action: Callable[[], object]) -> dict[str, int]:
            lab.listener.reset_counters()
            action()
            return lab.requests(fqdn)

        server = Server(ServerSession(lab_settings(lab, fqdn), lab.server(fqdn).product))
        rows.append(
            _row("open", "ocsps", counted(server.session.open), "NTLM handshake, pool, module import")
        )
        rows.append(_row("status (one service)", "ocsps", counted(lambda: server.status(SERVICE))))
        rows.append(_row("status (all services)", "ocsps", counted(server.services)))
        drained = counted(lambda: server.begin_drain(SERVICE))
        rows.append(_row("begin drain", "ocsps", drained, "Stop -Graceful -NoWait"))
        read = counted(lambda: server.status(SERVICE))
        rows.append(_row("status read", "ocsps", read, "a status read while Paused"))
        marks: list[int] = []

        def watch() -> None:
            server.watch_drain(
                SERVICE,
                request=False,
                poll=WATCH_INTERVAL,
                until=WATCH_POLLS * WATCH_INTERVAL,
                on_status=lambda _: marks.append(lab.requests(fqdn).get("requests", 0)),
            )

        watched = counted(watch)
        statuses = len(marks)
        rows.append(
            _row("drain watch", "ocsps", watched, f"one pipeline, {statuses} statuses written by the server")
        )
        steady = (marks[-1] - marks[0]) / (statuses - 1) if statuses > 1 else None
        rows.append(_row("close", "ocsps", counted(server.session.close)))

        client = baseline.make_client(lab.listener.client_kwargs(fqdn))
        lab.server(fqdn).start(SERVICE)
        rows.append(
            _row(
                "status, first call",
                "pypsrp new pool",
                counted(lambda: baseline.new_pool_call(client, baseline.STATUS_SCRIPT)),
                "NTLM handshake on the new connection",
            )
        )
        rows.append(
            _row(
                "status / drain poll",
                "pypsrp new pool",
                counted(lambda: baseline.new_pool_call(client, baseline.STATUS_SCRIPT)),
                "every later call",
            )
        )
        fresh = baseline.make_client(lab.listener.client_kwargs(fqdn))
        rows.append(
            _row(
                "status, first call",
                "pypsrp execute_ps",
                counted(lambda: baseline.execute_ps(fresh, baseline.STATUS_SCRIPT)),
                "lab answers an error record (no Invoke-Expression)",
            )
        )
        rows.append(
            _row(
                "status / drain poll",
                "pypsrp execute_ps",
                counted(lambda: baseline.execute_ps(fresh, baseline.STATUS_SCRIPT)),
                "every later call",
            )
        )
        for used in (client, fresh):
            used.wsman.close()
    return rows, steady


def measure(config: Config) -> dict[str, Any]:
    log("requests per operation ...")
    counted = [_count_once() for _ in range(max(1, min(config.repeat, 3)))]
    runs = [rows for rows, _ in counted]
    rows = runs[0]
    watch = [steady for _, steady in counted if steady is not None]

    def fixed(run: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows whose counts cannot vary (a watch's Receives follow the server's pace)."""
        return [{k: v for k, v in r.items() if k != "note"} for r in run if r["operation"] != "drain watch"]

    stable = all(fixed(run) == fixed(rows) for run in runs)
    by_key = {(r["tool"], r["operation"]): r for r in rows}
    poll_ocsps = round(max(watch), 3) if watch else None
    poll_read = by_key[("ocsps", "status read")]["http"]
    poll_plain = by_key[("pypsrp new pool", "status / drain poll")]["http"]
    one_shot_ocsps = sum(by_key[("ocsps", op)]["http"] for op in ("open", "status (one service)", "close"))
    return {
        "rows": rows,
        "repeats": len(runs),
        "stable": stable,
        "per_poll": {
            "ocsps": poll_ocsps,
            "ocsps_status_read": poll_read,
            "pypsrp_new_pool": poll_plain,
            "protocol_minimum": 2,
            "ratio": round(poll_ocsps / poll_plain, 3) if poll_plain and poll_ocsps is not None else None,
        },
        "one_shot_status": {
            "ocsps_open_status_close": one_shot_ocsps,
            "pypsrp_first_call": by_key[("pypsrp new pool", "status, first call")]["http"],
        },
    }
