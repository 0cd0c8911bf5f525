"""Pool start and quorum-loss recovery, simulated: ``Start-CsPool`` and ``Reset-CsPoolRegistrarState``.

A model, not a copy, deciding with the lab's own facts (``ocsps/lab/facts/quorum.toml``):

- ``Start-CsPool`` (Skype for Business Server 2015 / 2019 only) starts every service of every member
  except those in ``-SkipServer``; when the members that would run are fewer than the pool's quorum, the
  cmdlet refuses and nothing starts. Routing groups in quorum loss (the topology's ``missing_replicas``)
  stay missing unless ``-QuorumLossRecovery`` is given. A pool that already runs is answered with a
  warning saying so, and nothing changes.
- ``Reset-CsPoolRegistrarState -ResetType QuorumLossRecovery`` (Lync Server 2013 and later) reloads the
  routing groups in quorum loss (they are no longer missing) and restarts the Front-End and Windows
  Fabric services of every member that is not failed over (and their prerequisites); the pool then answers
  Busy for its
  ``busy_polls`` readings, as after any server's return.

A cold pool is a topology whose members list every service under ``stopped``; a routing-group quorum loss
is ``missing_replicas`` on the pool. What the real cmdlets print is not documented: the lab's wording is
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ocsps.lab.estate import RUNNING, LabError, SimServer
from ocsps.lab.facts import load_lab_facts
from ocsps.lab.pool_sim import SimPool

if TYPE_CHECKING:
    from ocsps.lab.wsman import PipelineSink

__all__ = ["recovery_handlers"]

Handler = Callable[[SimServer, Mapping[str, Any], "PipelineSink"], None]

# The services a registrar reset stops and starts (Microsoft Learn, Reset-CsPoolRegistrarState: RtcSrv and
# FabricHostSvc); keys as the lab's estate names them.
_RESET_SERVICES = ("RTCSRV", "FabricHostSvc")


def _names(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


class RecoverySim:
    def __init__(self, pools: Mapping[str, SimPool]) -> None:
        self.pools = pools

    def handlers(self) -> dict[str, Handler]:
        return {"pool-start": self._start_pool, "pool-recover": self._recover}

    def _pool(self, sim: SimServer, params: Mapping[str, Any], cmdlet: str, since: str) -> SimPool:
        if sim.catalog.cmdlet_parameters(sim.product, cmdlet) is None:
            raise LabError(
                f"The term '{cmdlet}' is not recognized as the name of a cmdlet ({sim.product.name}; it "
                f"arrived with {since}).",
                category="ObjectNotFound",
                error_id="CommandNotFoundException",
            )
        wanted = str(params.get("PoolFqdn") or "")
        pool = self.pools.get(wanted.casefold())
        if pool is None:
            raise LabError(f"Pool '{wanted}' was not found in the topology.", error_id="PoolNotFound")
        return pool

    @staticmethod
    def _answer(sim: SimServer, pool: SimPool, operation: str, warnings: Sequence[str]) -> dict[str, Any]:
        return {
            "ComputerName": sim.reported_name,
            "PoolFqdn": pool.fqdn,
            "Operation": operation,
            "Invoked": True,
            "Output": "",
            "Warnings": "\n".join(warnings),
        }

    def _start_pool(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        pool = self._pool(sim, params, "Start-CsPool", "Skype for Business Server 2015")
        skipped = {s.casefold() for s in _names(params.get("SkipServer"))}
        with pool.lock:
            unknown = [s for s in skipped if pool.member(s) is None]
            if unknown:
                raise LabError(
                    f"Server '{unknown[0]}' is not a member of pool {pool.fqdn}.", error_id="NotInPool"
                )
            if not pool.down() and not pool.missing_replicas:
                out.write(self._answer(sim, pool, "StartPool", [f"Pool {pool.fqdn} is already started."]))
                return
            starting = [
                m for m in pool.members if m.fqdn.casefold() not in skipped and m.fqdn not in pool.failed_over
            ]
            rule = load_lab_facts().pool_rule(len(pool.members))
            names = [m.fqdn for m in pool.members]
            down = {n.casefold() for n in names} - {m.fqdn.casefold() for m in starting}
            if rule is None or not rule.enough(names, down):
                raise LabError(
                    f"Cannot start pool {pool.fqdn}: {len(starting)} of {len(names)} servers would run, "
                    "fewer than the pool needs to function.",
                    error_id="InsufficientServers",
                )
            warnings: list[str] = []
            for member in starting:
                for svc in list(member.services.values()):
                    if svc.status != RUNNING:
                        member.start(svc.name)
            if pool.missing_replicas:
                if params.get("QuorumLossRecovery"):
                    pool.missing_replicas.clear()
                else:
                    warnings.append(
                        f"{len(pool.missing_replicas)} routing group(s) in quorum loss were not placed."
                    )
            pool.operations.append("start-pool " + ",".join(sorted(skipped)))
        pool.came_back()
        out.write(self._answer(sim, pool, "StartPool", warnings))

    def _recover(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        pool = self._pool(sim, params, "Reset-CsPoolRegistrarState", "Lync Server 2013")
        with pool.lock:
            reloaded = len(pool.missing_replicas)
            pool.missing_replicas.clear()
            for member in pool.members:
                if member.fqdn in pool.failed_over:
                    continue
                for key in _RESET_SERVICES:
                    svc = next(
                        (
                            s
                            for s in member.services.values()
                            if key.casefold() in (s.key.casefold(), s.name.casefold())
                        ),
                        None,
                    )
                    if svc is not None and svc.status != RUNNING:
                        member.start(svc.name)  # a running one restarts: nothing the lab can show
            pool.operations.append(f"quorum-loss-recovery {reloaded}")
        pool.came_back()
        note = [] if reloaded else ["No routing group was in quorum loss."]
        out.write(self._answer(sim, pool, "QuorumLossRecovery", note))


def recovery_handlers(pools: Mapping[str, SimPool]) -> dict[str, Handler]:
    """The handlers the lab engine adds for the pool-start and pool-recover templates."""
    return RecoverySim(pools).handlers()
