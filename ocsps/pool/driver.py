"""The remote side of a roll: reads and changes on pool members, behind one small interface.

``PoolDriver`` is what the roll engine needs from the world; ``RemoteDriver`` does it over one
``ServerSession`` per member. Keeping the engine on the interface lets its safety rules (quorum, Busy,
resume) be tested with a scripted driver and an injected clock, and run unchanged against the lab or a
real pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ocsps.errors import OcspsError, UsageError
from ocsps.pool.facts import PoolFacts, load_pool_facts
from ocsps.pool.model import (
    FabricState,
    MemberState,
    PoolReadiness,
    StepOutcome,
    Transition,
    parse_fabric,
    parse_readiness,
    parse_step_outcome,
    parse_transition,
)
from ocsps.pool.plan import StepSpec
from ocsps.remote.per_host import ServerPerHost
from ocsps.remote.server import Server
from ocsps.results import parse_service_status

__all__ = ["PoolDriver", "RemoteDriver"]


class PoolDriver(Protocol):
    """Reads and changes on pool members. Every method blocks until the server has answered."""

    def member(self, host: str) -> MemberState:
        """The member's services; an unreachable member is reported, never raised."""
        ...

    def readiness(self, via: str) -> PoolReadiness: ...

    def fabric(self, via: str, pool: str) -> FabricState: ...

    def drain(self, host: str) -> MemberState:
        """Ask every service of ``host`` to drain and return at once, with the services as they are then."""
        ...

    def start(self, host: str) -> MemberState:
        """Start every service of ``host``; the services as they are afterwards."""
        ...

    def stop_service(self, host: str, name: str) -> None:
        """Stop one service now (-Force): only once its own drain deadline has passed."""
        ...

    def failover(self, host: str, wait_time: float, draining_timeout: float | None, force: bool) -> None: ...

    def failback(self, host: str, wait_time: float) -> None: ...

    def run_step(self, host: str, step: StepSpec, timeout: float) -> StepOutcome: ...

    def close(self) -> None: ...


class RemoteDriver(ServerPerHost):
    """A ``PoolDriver`` over PowerShell Remoting: one lazily opened session per member."""

    def __init__(
        self,
        factory: Callable[[str], Server],
        *,
        facts: PoolFacts | None = None,
        call_timeout: float = 120.0,
    ) -> None:
        super().__init__(factory)
        self.facts = facts or load_pool_facts()
        self.call_timeout = call_timeout

    def _run(
        self, host: str, action: str, timeout: float | None = None, **values: object
    ) -> Sequence[object]:
        server = self.server(host)
        rendered = server.render(action, None, **values)
        result = server.session.run(rendered, timeout=timeout or self.call_timeout).raise_for_errors()
        server.check_answers(result.output)
        return result.output

    # ------------------------------------------------------------------ reads
    def member(self, host: str) -> MemberState:
        try:
            services = self.server(host).services(activity=False, timeout=self.call_timeout)
        except UsageError:
            raise
        except OcspsError as exc:
            return MemberState(host, None, (), exc.message.removeprefix(f"{host}: "))  # shown after the host
        return MemberState.from_services(host, services, self.facts.defaults.front_end_service)

    def readiness(self, via: str) -> PoolReadiness:
        return parse_readiness(self._run(via, "pool-readiness"))

    def watch_readiness(
        self,
        via: str,
        *,
        poll: float,
        until: float,
        on_reading: Callable[[PoolReadiness, float], None],
        busy_state: str = "",
        busy_poll: float = 0.0,
    ) -> None:
        """Readings every ``poll`` seconds from one pipeline (``pool-readiness-watch``) until ``until``
        seconds have passed on the server (``busy_poll`` after a ``busy_state`` answer), each with the
        seconds since the watch began at which it was taken (server clock); an exception from
        ``on_reading`` stops the pipeline and goes on."""
        from ocsps.results.base import prop, to_text

        server = self.server(via)
        rendered = server.render(
            "pool-readiness-watch",
            None,
            PollMilliseconds=max(1, round(poll * 1000)),
            DeadlineMilliseconds=max(1, round(until * 1000)),
            BusyState=busy_state or None,
            BusyPollMilliseconds=round(busy_poll * 1000) if busy_poll > 0 else None,
        )
        reading: list[object] = []

        def arrived(obj: object) -> None:
            if (to_text(prop(obj, "Kind")) or "").casefold() != "end":
                reading.append(obj)
                return
            whole = list(reading)
            reading.clear()
            server.check_answers(whole)
            taken = to_text(prop(obj, "ElapsedMilliseconds")) or "0"
            on_reading(parse_readiness(whole), int(taken) / 1000 if taken.isdigit() else 0.0)

        budget = until + poll + self.call_timeout
        server.session.stream(rendered, arrived, timeout=budget).raise_for_errors()

    def fabric(self, via: str, pool: str) -> FabricState:
        output = self._run(via, "pool-fabric", PoolFqdn=pool)
        return parse_fabric(output, pool, self.facts.missing_replica_patterns)

    # ------------------------------------------------------------------ changes
    def _services(self, host: str, output: Sequence[object]) -> MemberState:
        services = [parse_service_status(obj) for obj in output]
        return MemberState.from_services(host, services, self.facts.defaults.front_end_service)

    def drain(self, host: str) -> MemberState:
        return self._services(host, self._run(host, "pool-drain-server", ComputerName=host, NoWait=True))

    def start(self, host: str) -> MemberState:
        return self._services(host, self._run(host, "pool-start-server", ComputerName=host))

    def stop_service(self, host: str, name: str) -> None:
        self._run(host, "stop", Name=name, Force=True)

    def _transition(self, host: str, action: str, timeout: float, values: Mapping[str, object]) -> Transition:
        found = parse_transition(self._run(host, action, timeout, ComputerName=host, **values))
        if not found.invoked:
            raise OcspsError(f"{action}: the server did not run the cmdlet", host=host)
        return found

    def failover(self, host: str, wait_time: float, draining_timeout: float | None, force: bool) -> None:
        values: dict[str, object] = {"WaitTimeSeconds": round(wait_time)}
        if draining_timeout:
            values["DrainingTimeoutSeconds"] = round(draining_timeout)
        if force:
            values["Force"] = True
        self._transition(host, "pool-failover", wait_time + self.facts.defaults.call_margin, values)

    def failback(self, host: str, wait_time: float) -> None:
        values = {"WaitTimeSeconds": round(wait_time)}
        self._transition(host, "pool-failback", wait_time + self.facts.defaults.call_margin, values)

    def run_step(self, host: str, step: StepSpec, timeout: float) -> StepOutcome:
        output = self._run(host, "pool-step", timeout, StepScript=step.lines, StepName=step.name)
        return parse_step_outcome(output)
