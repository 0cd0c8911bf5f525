"""1. WSMan requests per operation, counted by the lab: ocsps on one open pool vs a new pool per call.

Counts do not depend on latency or machine load, so they are taken once per repeat against a lab
without injected latency, and the repeats only confirm they are stable. ``http`` is every HTTP request
(NTLM handshake legs included); the action columns are the WSMan actions among them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import baseline
from bench.common import Config, log

ACTIONS = ("Create", "Command", "Receive", "Signal", "Delete")
SERVICE = "RTCMEDSRV"


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


def _count_once() -> list[dict[str, Any]]:
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
        rows.append(
            _row("drain poll", "ocsps", counted(lambda: server.status(SERVICE)), "a status read while Paused")
        )
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
    return rows


def measure(config: Config) -> dict[str, Any]:
    log("requests per operation ...")
    runs = [_count_once() for _ in range(max(1, min(config.repeat, 3)))]
    rows = runs[0]
    stable = all(
        [{k: v for k, v in r.items() if k != "note"} for r in run]
        == [{k: v for k, v in r.items() if k != "note"} for r in rows]
        for run in runs
    )
    by_key = {(r["tool"], r["operation"]): r for r in rows}
    poll_ocsps = by_key[("ocsps", "drain poll")]["http"]
    poll_plain = by_key[("pypsrp new pool", "status / drain poll")]["http"]
    one_shot_ocsps = sum(by_key[("ocsps", op)]["http"] for op in ("open", "status (one service)", "close"))
    return {
        "rows": rows,
        "repeats": len(runs),
        "stable": stable,
        "per_poll": {
            "ocsps": poll_ocsps,
            "pypsrp_new_pool": poll_plain,
            "protocol_minimum": 2,
            "ratio": round(poll_ocsps / poll_plain, 3) if poll_plain else None,
        },
        "one_shot_status": {
            "ocsps_open_status_close": one_shot_ocsps,
            "pypsrp_first_call": by_key[("pypsrp new pool", "status, first call")]["http"],
        },
    }
