"""Synthetic transactions, simulated: ``Test-CsRegistration`` and ``Test-CsIM`` against a lab pool.

A model, not a copy. A transaction succeeds when its users are known and the pool serves them: at least
one member's Front-End service runs, the pool keeps its quorum (the lab's own table), and no routing group
is in quorum loss (``missing_replicas``). Users are the SIP addresses passed, or else the pool's
``test_users`` (the lab's stand-in for ``New-CsHealthMonitoringConfiguration``: the first signs in, the
first two exchange a message). Each failure carries an Error and a Diagnosis, as the real result object
does; their wording here is the lab's own, not a server's. Latency is a fixed, plausible time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ocsps.lab.estate import SimServer
from ocsps.lab.pool_sim import SimPool

if TYPE_CHECKING:
    from ocsps.lab.wsman import PipelineSink

__all__ = ["synthetic_handlers"]

Handler = Callable[[SimServer, Mapping[str, Any], "PipelineSink"], None]

_LATENCY = {"Registration": "00:00:00.4200000", "IM": "00:00:01.1800000"}


def _list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


class SyntheticSim:
    def __init__(self, pools: Mapping[str, SimPool]) -> None:
        self.pools = pools

    def handlers(self) -> dict[str, Handler]:
        return {"check-synthetic": self._run}

    def _run(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        target = str(params.get("PoolFqdn") or "")
        pool = self.pools.get(target.casefold())
        for name in _list(params.get("Transaction")) or ["Registration", "IM"]:
            result, error, diagnosis = self._outcome(name, pool, target, params)
            out.write(
                {
                    "ComputerName": sim.reported_name,
                    "Transaction": name,
                    "TargetFqdn": target,
                    "Result": result,
                    "Latency": _LATENCY.get(name, "") if result == "Success" else "00:00:00",
                    "Error": error,
                    "Diagnosis": diagnosis,
                    "Threw": False,
                }
            )

    @staticmethod
    def _users(name: str, pool: SimPool, params: Mapping[str, Any]) -> list[str]:
        configured = list(pool.test_users)
        if name == "Registration":
            given = str(params.get("UserSipAddress") or "")
            return [given] if given else configured[:1]
        sender, receiver = (
            str(params.get("SenderSipAddress") or ""),
            str(params.get("ReceiverSipAddress") or ""),
        )
        if sender and receiver:
            return [sender, receiver]
        return configured[:2] if len(configured) >= 2 else []

    def _outcome(
        self, name: str, pool: SimPool | None, target: str, params: Mapping[str, Any]
    ) -> tuple[str, str, str]:
        if name not in _LATENCY:
            return "Failure", f"unknown transaction {name}", ""
        if pool is None:
            return "Failure", f"The target pool '{target}' was not found in the topology.", ""
        users = self._users(name, pool, params)
        if not users:
            return (
                "Failure",
                f"No test users are configured for pool {pool.fqdn}: run New-CsHealthMonitoringConfiguration "
                "or name the users.",
                "",
            )
        with pool.lock:
            up = [m for m in pool.members if pool.is_up(m)]
            keeps, why = pool.quorum_after()
            missing = list(pool.missing_replicas)
        if not up or not keeps:
            return (
                "Failure",
                f"{users[0]} could not register: 504 Server time-out.",
                f"ErrorCode=1046,Source={pool.fqdn},Reason=Failed to connect to a peer server ({why}).",
            )
        if missing:
            return (
                "Failure",
                f"{users[0]} could not register: 503 Service Unavailable.",
                f"ErrorCode=3000,Source={up[0].fqdn},Reason=Routing group {missing[0]} is in quorum loss.",
            )
        return "Success", "", ""


def synthetic_handlers(pools: Mapping[str, SimPool]) -> dict[str, Handler]:
    """The handler the lab engine adds for the check-synthetic template."""
    return SyntheticSim(pools).handlers()
