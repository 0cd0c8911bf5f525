"""The lab's drain watch: one long pipeline that writes a status every poll, as the template does.

``drain-watch`` asks for a graceful stop first, ``drain-follow`` only watches. Both write the service's
status (and any new watched event) every ``PollMilliseconds`` until the service is Stopped or
``DeadlineMilliseconds`` have passed on the server's own monotonic clock, then end by themselves: a client
that goes away without stopping the pipeline leaves nothing running past the deadline. A client's stop
(Signal) ends the loop at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from ocsps.lab.estate import STOPPED, SimServer, SimService
from ocsps.lab.wsman import PipelineSink

View = Callable[[SimServer, SimService], dict[str, Any]]
Handler = Callable[[SimServer, Mapping[str, Any], PipelineSink], None]

BEFORE_START = timedelta(seconds=5)
"""Without ``Since``, events logged this long before the script started count (the template's default)."""


def watch_handlers(view: View) -> dict[str, Handler]:
    """The ``drain-watch`` and ``drain-follow`` handlers; ``view`` shapes a service as templates do."""

    def drain_watch(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        _watch(sim, params, out, view, request=True)

    def drain_follow(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        _watch(sim, params, out, view, request=False)

    return {"drain-watch": drain_watch, "drain-follow": drain_follow}


def repeating(handler: Handler) -> Handler:
    """A watch over a one-shot read: ``handler``'s objects and an ``end`` object (with the time it was
    taken) every ``PollMilliseconds``, or ``BusyPollMilliseconds`` after a ``BusyState`` answer, until
    ``DeadlineMilliseconds`` (server clock) or a client's stop, as ``pool-readiness-watch`` does."""

    def run(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        started = time.monotonic()
        poll = max(int(params["PollMilliseconds"]), 1) / 1000
        busy = str(params.get("BusyState") or "")
        busy_poll = max(int(params.get("BusyPollMilliseconds") or 0), 0) / 1000 or poll
        deadline = started + int(params["DeadlineMilliseconds"]) / 1000
        while True:
            taken = int((time.monotonic() - started) * 1000)
            written: list[Any] = []
            handler(sim, params, cast(PipelineSink, _Tee(out, written)))  # duck-typed: write + the rest
            out.write({"Kind": "end", "ComputerName": sim.reported_name, "ElapsedMilliseconds": taken})
            pause = poll
            if busy and any(_field(o, "PoolUpgradeState") == busy for o in written):
                pause = busy_poll
            left = deadline - time.monotonic()
            if left <= 0 or out.wait_cancelled(min(pause, left)):
                return

    return run


def _watch(
    sim: SimServer, params: Mapping[str, Any], out: PipelineSink, view: View, *, request: bool
) -> None:
    started = time.monotonic()
    name = str(params["Name"])
    poll = max(int(params["PollMilliseconds"]), 1) / 1000
    deadline = started + int(params["DeadlineMilliseconds"]) / 1000
    ids = [int(i) for i in _as_list(params.get("EventId"))]
    log_name = str(params.get("LogName") or sim.product.event_log)
    since_text = params.get("Since")
    since = (
        datetime.fromisoformat(str(since_text).replace("Z", "+00:00"))
        if since_text
        else sim.now() - BEFORE_START
    )
    seen: set[int] = set()
    if request:
        sim.stop(name, graceful=True)
    while True:
        sim.tick()
        svc = sim.find(name)
        out.write(view(sim, svc))
        for event in sim.query_events(log_name, ids, since) if ids else []:
            if id(event) in seen:
                continue
            seen.add(id(event))
            out.write(
                {
                    "Id": event.id,
                    "TimeCreated": event.time.isoformat().replace("+00:00", "Z"),
                    "LevelDisplayName": event.level,
                    "ProviderName": event.source,
                    "Message": event.message,
                    "MachineName": sim.reported_name,
                    "LogName": event.log,
                }
            )
        left = deadline - time.monotonic()
        if svc.status == STOPPED or left <= 0:
            return
        if out.wait_cancelled(min(poll, left)):
            return  # the client stopped the pipeline


class _Tee:
    """A sink that also keeps what was written, so the watch can look at the reading it just sent."""

    def __init__(self, out: PipelineSink, kept: list[Any]) -> None:
        self._out = out
        self._kept = kept

    def write(self, value: Any) -> bool:
        self._kept.append(value)
        return self._out.write(value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def _field(value: Any, name: str) -> str:
    return str(value.get(name, "")) if isinstance(value, Mapping) else ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]
