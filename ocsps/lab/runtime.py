"""A running lab: the simulated estate behind a loopback WinRM listener, and how to reach each server."""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Any

from ocsps.errors import UsageError
from ocsps.lab.credentials import credential_problem
from ocsps.lab.engine import LabEngine
from ocsps.lab.estate import SimServer
from ocsps.lab.topology import Topology, load_topology
from ocsps.lab.wsman import DEFAULT_MAX_COMMANDS_PER_SHELL, Faults, HostSpec, LabServer


class Lab:
    """Serve a topology on loopback. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        topology_file: Path | None = None,
        bind: str = "127.0.0.1",
        port: int = 0,
        auth: str | None = None,
        latency_ms: int = 0,
        password: str | None = None,
        max_commands_per_shell: int = DEFAULT_MAX_COMMANDS_PER_SHELL,
    ) -> None:
        self.topology = topology or load_topology(topology_file)
        self.auth = auth or self.topology.auth
        if self.auth not in ("ntlm", "negotiate", "basic"):
            raise UsageError("lab auth must be ntlm, negotiate or basic")
        self.username = self.topology.username
        self.password = password or self.topology.password or secrets.token_urlsafe(12)
        problem = credential_problem(self.username, self.password)
        if problem is not None:
            raise UsageError(f"lab: {problem}")
        if max_commands_per_shell < 1:
            raise UsageError("lab: max_commands_per_shell must be at least 1")
        self.engine = LabEngine(self.topology)
        hosts = []
        for server in self.topology.servers:
            configured = (self.topology.faults or {}).get(server.fqdn)
            faults = Faults()
            faults.set_latency(max(latency_ms, configured.latency_ms if configured else 0))
            if configured and configured.stuck:
                faults.set_stuck(True)
            faults.unreachable = functools.partial(self.engine.patch.unreachable, server.fqdn)
            hosts.append(
                HostSpec(
                    server.fqdn,
                    protocol_version=server.product.psrp_protocol,
                    ps_version=server.product.powershell,
                    faults=faults,
                    max_commands_per_shell=max_commands_per_shell,
                )
            )
        try:
            self.listener = LabServer(
                hosts,
                executor=self.engine,
                credentials=(self.username, self.password),
                auth=self.auth,  # type: ignore[arg-type]
                address=bind,
                port=port,
            )
        except ValueError as exc:
            raise UsageError(f"lab: {exc}") from None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Lab:
        try:
            self.listener.start()
        except OSError as exc:
            raise UsageError(
                f"lab: cannot listen on {self.listener.address}:{self.listener.port} ({exc.strerror})"
            ) from None
        return self

    def stop(self) -> None:
        self.listener.stop()

    @property
    def port(self) -> int:
        return self.listener.port

    def server(self, fqdn: str) -> SimServer:
        return self.topology.server(fqdn)

    def faults(self, fqdn: str) -> Faults:
        return self.listener.faults(fqdn)

    def requests(self, fqdn: str | None = None) -> dict[str, int]:
        """WSMan requests seen, per action, for one server or summed over all."""
        names = [fqdn] if fqdn else [s.fqdn for s in self.topology.servers]
        total: dict[str, int] = {}
        for name in names:
            for key, value in self.listener.counters(name).snapshot().items():
                total[key] = total.get(key, 0) + value
        return total

    def connection(self, fqdn: str) -> dict[str, Any]:
        """Plain values that reach ``fqdn`` inside this lab (http on loopback, lab credentials).

        The keys are those of the client's connection settings; the lab hands out data only and the client
        side builds its own settings from them (the simulated server knows nothing of the client's types).
        """
        server = self.topology.server(fqdn)
        return {
            "host": server.fqdn,
            "connect_address": self.listener.address,
            "port": self.port,
            "ssl": False,
            "path": self.listener.path(server.fqdn),
            "auth": self.auth,
            "username": self.username,
            "password": self.password,
            "encryption": "never" if self.auth == "basic" else "auto",
            "product": server.product.id,
            "no_proxy": True,
        }

    def describe(self) -> list[dict[str, str]]:
        """One line per simulated server, as ``ocsps lab serve`` prints them."""
        return [
            {
                "fqdn": s.fqdn,
                "product": s.product.id,
                "url": self.listener.url(s.fqdn),
                "auth": self.auth,
                "username": self.username,
                "password": self.password,
            }
            for s in self.topology.servers
        ]
