"""Drive the lab engine without a network: a recording sink, plain cmdlets and template actions.

The engine is what decides; WSMan only carries its answers. These helpers call it the way the listener
does (an ``Invocation`` of ``CommandCall``s, or one template action's handler) and keep what it wrote, so a
rule of the simulated server is tested in microseconds and without a clock that runs by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from ocsps.lab.engine import LabEngine
from ocsps.lab.topology import Topology, parse_topology
from ocsps.lab.wsman import CommandCall, Invocation, PipelineSink


class Recorder:
    """Stands in for a ``PipelineSink``: keeps output and warnings; never cancelled."""

    def __init__(self, on_wait: Callable[[], None] | None = None) -> None:
        self.output: list[Any] = []
        self.warnings: list[str] = []
        self._on_wait = on_wait

    def write(self, value: Any) -> bool:
        self.output.append(value)
        return True

    def write_object(self, type_names: Any, adapted: Any = None, extended: Any = None, **_: Any) -> bool:
        self.output.append(dict(adapted or {}) | dict(extended or {}))
        return True

    def write_warning(self, message: str) -> bool:
        self.warnings.append(message)
        return True

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        if self._on_wait is not None:
            self._on_wait()  # a test's clock moves instead of the wall clock
        return False


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def topology(text: str, clock: Clock | None = None) -> Topology:
    return parse_topology(text, source="test", clock=clock)


def cmdlet(engine: LabEngine, fqdn: str, name: str, **params: Any) -> list[Any]:
    """Run one plain cmdlet as a client's ``add_cmdlet`` would; a refusal raises ``PipelineFailure``."""
    out = Recorder()
    call = CommandCall(name, False, tuple((key, value) for key, value in params.items()))
    engine(fqdn, Invocation((call,)), cast(PipelineSink, out))
    return out.output


def action(
    engine: LabEngine, fqdn: str, name: str, params: dict[str, Any], out: Recorder | None = None
) -> list[Any]:
    """Run one ocsps template action's handler (what the ``# ocsps:action=`` marker selects)."""
    sink = out or Recorder()
    engine.handlers[name](engine.topology.server(fqdn), params, cast(PipelineSink, sink))
    return sink.output
