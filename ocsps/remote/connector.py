"""Many servers, one set of connection settings: a ``Connector`` hands out a ``Server`` per host.

An estate shares almost everything (authentication, account, TLS trust, timeouts, the product) and differs
only in host names. Building each ``Server`` through ``connect`` repeats all of that, and the ``OCSPS_*``
variables describe one server at a time (an ``OCSPS_PATH`` meant for one lab host silently reaches it
whatever ``--host`` says). A connector validates the shared settings once and makes per-host settings from
them; ``Connector.for_lab`` does the same for every server of a running lab.

Example::

    import os
    import ocsps

    estate = ocsps.Connector(
        product="sfb2015", auth="ntlm", username="CONTOSO\\\\lyncadmin", password=os.environ["OCSPS_PASSWORD"]
    )
    for host in ("med01.contoso.com", "med02.contoso.com:5986"):
        with estate.server(host) as server:
            print(host, server.status("RTCMEDSRV").status.value)

Servers are not opened until used; each has its own session, so they can run in parallel threads (a
``Server`` itself is not shared between threads).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Unpack

from ocsps.catalog import Catalog, Product, load_catalog
from ocsps.errors import UsageError
from ocsps.remote.server import Server
from ocsps.remote.session import AuditCallback, ProgressCallback, ServerSession
from ocsps.remote.settings import ConnectionSettings, ConnectOptions, Secret, settings_from_keywords, show

if TYPE_CHECKING:
    from ocsps.lab.runtime import Lab

__all__ = ["Connector"]

_PLACEHOLDER = "connector.invalid"
"""The host the shared settings are validated with; every server gets its own."""


class Connector:
    """Shared connection settings, validated once; ``server(host)`` gives a ``Server`` for one host.

    Keyword settings are those of ``ocsps.connect`` (typed as ``ConnectOptions``). ``connect_address`` is
    per host (pass it to ``server``), never shared. ``timeout`` is the default deadline of each call.
    """

    def __init__(
        self,
        *,
        product: str | Product,
        auth: str = "negotiate",
        username: str | None = None,
        password: str | Secret | None = None,
        timeout: float = 120.0,
        on_progress: ProgressCallback | None = None,
        audit: AuditCallback | None = None,
        catalog: Catalog | None = None,
        **settings: Unpack[ConnectOptions],
    ) -> None:
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise UsageError(f"timeout must be a positive number of seconds, not {show(timeout)}")
        if settings.get("connect_address") is not None:
            raise UsageError("connect_address differs per host: pass it to Connector.server(host, ...)")
        self.catalog = catalog or load_catalog()
        self.product = self.catalog.product(product) if isinstance(product, str) else product
        self.settings = settings_from_keywords(
            _PLACEHOLDER,
            product=self.product.id,
            auth=auth,
            username=username,
            password=password,
            options=settings,
        )
        self.timeout = float(timeout)
        self.on_progress = on_progress
        self.audit = audit
        self._per_host: Callable[[str], tuple[ConnectionSettings, Product]] | None = None

    @classmethod
    def for_lab(cls, lab: Lab, *, timeout: float = 120.0, retry_backoff: float | None = None) -> Connector:
        """A connector for every server of a running lab (each has its own path and product there)."""
        connector = cls.__new__(cls)
        connector.catalog = load_catalog()
        first = lab.topology.servers[0]
        connector.product = first.product
        connector.settings = lab_settings(lab, first.fqdn)
        connector.timeout = float(timeout)
        connector.on_progress = None
        connector.audit = None

        def per_host(host: str) -> tuple[ConnectionSettings, Product]:
            try:
                sim = lab.server(host)
            except Exception:
                names = ", ".join(s.fqdn for s in lab.topology.servers)
                raise UsageError(f"{show(host)} is not a server of the lab (lab servers: {names})") from None
            return lab_settings(lab, sim.fqdn), sim.product

        connector._per_host = per_host
        connector._retry_backoff = retry_backoff
        return connector

    _retry_backoff: float | None = None

    def settings_for(self, host: str, **overrides: object) -> ConnectionSettings:
        """The settings for ``host`` (``name``, ``name:port`` or ``[v6]:port``), with per-host overrides."""
        from ocsps.remote.hosts import parse_hosts_file

        entries = parse_hosts_file(host, source="host") if "\n" not in host and "#" not in host else []
        if len(entries) != 1:
            raise UsageError(f"expected one host name, got {show(host)}")
        name, port = entries[0].host, entries[0].port
        if self._per_host is not None:
            base, _ = self._per_host(name)
            return base.with_(**overrides) if overrides else base
        changes: dict[str, object] = {"host": name, **overrides}
        if port is not None:
            changes["port"] = port
        return self.settings.with_(**changes)

    def server(self, host: str, **overrides: object) -> Server:
        """A ``Server`` for ``host`` (not opened yet: use it as a context manager)."""
        settings = self.settings_for(host, **overrides)
        product = self._per_host(settings.host)[1] if self._per_host is not None else self.product
        options: dict[str, Any] = {}
        if self._retry_backoff is not None:
            options["retry_backoff"] = self._retry_backoff
        session = ServerSession(
            settings,
            product,
            default_timeout=self.timeout,
            on_progress=self.on_progress,
            audit=self.audit,
            **options,
        )
        return Server(session, self.catalog)

    def servers(self, hosts: Iterable[str]) -> list[Server]:
        """A ``Server`` per host, in order (none opened yet)."""
        return [self.server(host) for host in hosts]


def lab_settings(lab: Lab, fqdn: str, **overrides: Any) -> ConnectionSettings:
    """Client settings for one lab server, built here from the plain values the lab hands out (the
    simulated server knows nothing of the client's types)."""
    values = {**lab.connection(fqdn), **overrides}
    if isinstance(values.get("password"), str):
        values["password"] = Secret(values["password"])
    return ConnectionSettings(**values)
