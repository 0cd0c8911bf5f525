"""Which servers a caller talks to, checked before anything is sent, and the audited ``Server`` for each.

The command line and the Ansible collection both resolve their servers here, so a playbook gets the same
refusals (a missing CA bundle, an auth package not installed, two hosts on one endpoint, pool members on
different products) and the same audit records (transport warnings in ``detail``, an operator's script as
a line count) as ``ocsps`` on a terminal. What is interactive stays with the caller and is passed in: the
password ``prompt`` and ``warn`` (how to tell a person about an unprotected connection).

Only light imports at module level: ``ocsps --help`` must not pay for sessions and the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocsps.errors import UsageError

if TYPE_CHECKING:
    from ocsps.catalog import Product
    from ocsps.remote.server import Server
    from ocsps.remote.settings import ConnectionSettings

__all__ = ["OPERATOR_SCRIPTS", "Target", "audited_server", "pool_servers", "resolve_targets"]

OPERATOR_SCRIPTS: tuple[str, ...] = ("StepScript",)
"""Script parameters that carry an operator's own file (a pool roll's step): audited as a line count."""


@dataclass(frozen=True)
class Target:
    """One server to reach: its connection settings and the product it runs."""

    settings: ConnectionSettings
    product: Product

    @property
    def host(self) -> str:
        return self.settings.host


def resolve_targets(
    flags: Mapping[str, object],
    hosts: Sequence[tuple[str, int | None]] = (),
    *,
    env: Mapping[str, str],
    profile: str | None = None,
    prompt: Callable[[str], str] | None = None,
    per_host: Mapping[str, Mapping[str, object]] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Target]:
    """Servers from connection options, environment and config profile, checked before anything is sent.

    ``flags`` are connection options by ``OPTIONS`` key (``None``: not given); ``hosts`` (name, port or
    None) the servers, each reached with those settings (none: the one host the settings name).
    ``per_host`` (keys folded to lower case) adds connection options for single hosts, which are then
    resolved on their own. The password is asked for (``prompt``) at most once and reused. Every
    resolved connection is checked for local files (CA bundle, client certificate) and installed auth
    packages; each distinct transport warning is handed to ``warn`` once; several hosts dialled at one
    endpoint are refused.
    """
    from ocsps.catalog import load_catalog
    from ocsps.remote.profiles import find_config, resolve_settings

    config = find_config(env)
    catalog = load_catalog()
    first_flags = dict(flags)
    if hosts:
        first_flags["host"] = hosts[0][0]
    first = resolve_settings(first_flags, env, config, profile, prompt)
    known = first.password
    reuse = prompt if known is None else (lambda _text: known.reveal())

    def product_of(settings: ConnectionSettings) -> Product:
        if not settings.product:
            raise UsageError(
                "which product do the servers run? set product (--product, the product option, "
                "OCSPS_PRODUCT or a config profile)",
                hint=", ".join(catalog.products),
            )
        return catalog.product(settings.product)

    told: list[str] = []

    def checked(settings: ConnectionSettings) -> Target:
        settings.check_local_files()  # a missing CA bundle is the operator's to fix, not the server's fault
        settings.check_installed()
        for text in settings.transport_warnings():  # before anything is sent
            if text not in told:
                told.append(text)
                if warn is not None:
                    warn(text)
        return Target(settings, product_of(settings))

    if not hosts:
        return [checked(first)]
    extra = {key.casefold(): value for key, value in (per_host or {}).items()}
    targets: list[Target] = []
    for host, port in hosts:
        own = extra.get(host.casefold())
        if own:
            settings = resolve_settings({**flags, **own, "host": host}, env, config, profile, reuse)
            if port is not None and own.get("port") is None:
                settings = settings.with_(port=port)
        else:
            changes: dict[str, object] = {"host": host}
            if port is not None:
                changes["port"] = port
            settings = first.with_(**changes)
        targets.append(checked(settings))
    from ocsps.operations.fleet import check_distinct_endpoints

    check_distinct_endpoints(
        [(t.host, t.settings.address, t.settings.port, t.settings.path) for t in targets]
    )
    return targets


def audited_server(
    target: Target, timeout: float, *, summarized: Sequence[str] = (), change_id: str | None = None
) -> Server:
    """A ``Server`` for one host whose state-changing calls are written to the audit log.

    Each record carries the connection's transport warnings as ``detail``; parameters named in
    ``summarized`` are logged as a line count only; ``change_id`` stamps the records (``None``: the ticket
    of the surrounding ``audit.change`` block). The session does not log the transport warnings again:
    ``resolve_targets`` handed them to the caller once for the whole run.
    """
    from ocsps import audit
    from ocsps.remote.server import Server
    from ocsps.remote.session import ServerSession

    record = audit.recorder(
        target.host,
        detail="; ".join(target.settings.transport_warnings()),
        summarized=summarized,
        change_id=change_id,
    )
    audit.warn_if_unwritable()  # reads go on; a change calls audit.require_writable before sending
    session = ServerSession(target.settings, target.product, default_timeout=timeout, audit=record)
    session.warn_transport = False
    return Server(session)


def pool_servers(
    targets: Sequence[Target],
    members: Sequence[str],
    pool: str,
    timeout: float,
    *,
    change_id: str | None = None,
) -> tuple[Callable[[str], Server], Product, list[str]]:
    """(factory, product, members) for a pool: ``factory(host)`` opens an audited ``Server`` for a member.

    Every member needs resolved settings and all must run one product (a pool cannot mix them: the
    readiness and failover cmdlets differ). The operator's step script is audited as a line count.
    Members come back as the settings spell them, in the order given.
    """
    by_host = {t.host.casefold(): t for t in targets}
    missing = [m for m in members if m.casefold() not in by_host]
    if missing:
        raise UsageError(f"no connection settings for {', '.join(missing)}")
    chosen = [by_host[m.casefold()] for m in members]
    if not chosen:
        raise UsageError(f"no members given for {pool}: list every member of the pool, in topology order")
    products = sorted({t.product.id for t in chosen})
    if len(products) != 1:
        raise UsageError(f"the members of {pool} run different products: {', '.join(products)}")

    def factory(host: str) -> Server:
        target = by_host[host.casefold()]
        return audited_server(target, timeout, summarized=OPERATOR_SCRIPTS, change_id=change_id)

    return factory, chosen[0].product, [t.host for t in chosen]
