"""Helpers shared by the reliability tests: labs with armed faults, engine recorders, output scanning.

The CLI builds its own lab for ``--lab``; ``armed_lab`` swaps the ``Lab`` class it uses for one that takes
a topology, a password and a hook run once the listener is up, so a test arms faults in the very lab the
command talks to, over real HTTP, WSMan, PSRP and NTLM.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocsps.lab import runtime
from ocsps.lab.estate import SimServer
from ocsps.lab.faults import ACTIONS
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import Topology, parse_topology
from ocsps.lab.wsman import PipelineSink
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession

MED = "med01.contoso.com"

QUICK_TOPOLOGY = """
[lab]
username = "LAB\\\\admin"

[[servers]]
fqdn = "med01.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.6
[servers.activity.RTCMEDSRV]
"Inbound Calls" = 3

[[servers]]
fqdn = "med02.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.6
[servers.activity.RTCMEDSRV]
"Inbound Calls" = 2
"""
"""Two Mediation servers whose drains end in well under a second."""


def quick_topology(extra: str = "") -> Topology:
    return parse_topology(QUICK_TOPOLOGY + extra, source="reliability topology")


Handler = Callable[[SimServer, Mapping[str, Any], PipelineSink], None]


@dataclass
class Recorder:
    """Counts what the lab engine really executed, per host and action, with the parameters it got."""

    executed: Counter[tuple[str, str]] = field(default_factory=Counter)
    params: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def times(self, host: str, action: str) -> int:
        with self.lock:
            return self.executed[(host.lower(), action)]

    def wrap(self, lab: Lab, *, after: Mapping[str, Callable[[SimServer], None]] | None = None) -> Recorder:
        """Record every ocsps action the engine runs; ``after[action](sim)`` runs once it has run."""
        hooks = dict(after or {})
        for action, handler in list(lab.engine.handlers.items()):
            lab.engine.handlers[action] = self._recording(action, handler, hooks.get(action))
        return self

    def _recording(self, action: str, handler: Handler, hook: Callable[[SimServer], None] | None) -> Handler:
        def run(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
            with self.lock:
                self.executed[(sim.fqdn.lower(), action)] += 1
                self.params.append((sim.fqdn.lower(), action, dict(params)))
            handler(sim, params, out)
            if hook is not None:
                hook(sim)

        return run


def drop_everything(lab: Lab, fqdn: str, count: int = 10_000) -> None:
    """The server stops answering: every request of every kind is dropped without a reply."""
    faults = lab.faults(fqdn)
    for action in ACTIONS:
        faults.drop_next(action, count)  # type: ignore[arg-type]


def server_for(lab: Lab, fqdn: str = MED, *, timeout: float = 15.0, **settings: Any) -> Server:
    """A ``Server`` for one lab host with a short retry backoff (not opened yet)."""
    session = ServerSession(
        lab_settings(lab, fqdn, **settings),
        lab.server(fqdn).product,
        default_timeout=timeout,
        retry_backoff=0.05,
    )
    return Server(session)


@dataclass
class ArmedLabs:
    """The labs the CLI started during a test, and what to do with each once it listens."""

    topology: Callable[[], Topology] | None = None
    password: str | None = None
    auth: str | None = None
    hook: Callable[[Lab], object] | None = None
    started: list[Lab] = field(default_factory=list)

    @property
    def last(self) -> Lab:
        assert self.started, "the command did not start a lab"
        return self.started[-1]


@pytest.fixture
def armed_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ArmedLabs]:
    """Make ``ocsps ... --lab`` run the lab described by the returned ``ArmedLabs``."""
    armed = ArmedLabs()

    class ArmedLab(Lab):
        def __init__(self, topology: Topology | None = None, **kwargs: Any) -> None:
            if armed.topology is not None:
                topology = armed.topology()
                kwargs.pop("topology_file", None)
            if armed.password is not None:
                kwargs["password"] = armed.password
            if armed.auth is not None:
                kwargs["auth"] = armed.auth
            super().__init__(topology, **kwargs)

        def start(self) -> Lab:
            super().start()
            armed.started.append(self)
            if armed.hook is not None:
                armed.hook(self)
            return self

    monkeypatch.setattr(runtime, "Lab", ArmedLab)
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    yield armed


@pytest.fixture(autouse=True, scope="module")
def cli_built_once() -> Iterator[None]:
    """Build the typer command tree once per module instead of once per ``run_cli``.

    Typer turns the application into click commands on every call (signatures, type hints), which costs
    far more than the commands these tests run; ``ocsps.cli.main`` itself runs unchanged.
    """
    import typer.main

    original = typer.main.get_command
    built: dict[int, Any] = {}

    def cached(app: Any) -> Any:
        if id(app) not in built:
            built[id(app)] = original(app)
        return built[id(app)]

    typer.main.get_command = cached  # type: ignore[assignment]
    try:
        yield
    finally:
        typer.main.get_command = original
