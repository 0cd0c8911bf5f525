"""One ``Server`` per host, opened on first use and closed together: the shape every multi-host driver
(pool members, a server being patched) needs, written once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ocsps.remote.server import Server


class ServerPerHost:
    """A lazily built ``Server`` per host name (case-insensitive), reused by every call to that host."""

    def __init__(self, factory: Callable[[str], Server]) -> None:
        self._factory = factory
        self._servers: dict[str, Server] = {}

    def server(self, host: str) -> Server:
        key = host.casefold()
        if key not in self._servers:
            self._servers[key] = self._factory(host)
        return self._servers[key]

    def reset(self, host: str) -> None:
        """Forget the host's session (the next call opens a new one); closing may fail, and that is fine:
        a server restarting or gone cannot release it anyway."""
        server = self._servers.pop(host.casefold(), None)
        if server is not None:
            with contextlib.suppress(Exception):
                server.session.close()

    def close(self) -> None:
        for host in list(self._servers):
            self.reset(host)

    def __enter__(self) -> ServerPerHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
