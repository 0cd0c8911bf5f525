"""Which servers a remote command talks to, and how: flags, environment, profiles, hosts files, the lab.

Options become flags here; resolving and checking them (before anything is sent) is the library's
``ocsps.remote.targets``, which the Ansible modules call too. What is interactive stays here: the password
prompt (asked once, or read from OCSPS_PASSWORD, and reused for every host) and the printed warnings.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocsps.cli.output import err_console
from ocsps.errors import UsageError
from ocsps.remote.targets import Target as Target  # re-exported: the commands name it from here

if TYPE_CHECKING:  # imported where used: --help must not pay for the catalog and connection modules
    from ocsps.lab.runtime import Lab
    from ocsps.remote.server import Server

NO_HOST_HINT = "use --host, OCSPS_HOST, a profile (--profile), a hosts file (--hosts-file), or --lab"

HostOpt = Annotated[list[str] | None, typer.Option("--host", "-H", help="Server FQDN[:port]; repeatable")]
HostsFileOpt = Annotated[
    Path | None, typer.Option("--hosts-file", help="One host per line, # comments, optional :port")
]
ProductOpt = Annotated[
    str | None, typer.Option("--product", "-p", help="Product the servers run (see 'ocsps catalog products')")
]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="Named profile from the config file")]
AuthOpt = Annotated[
    str | None, typer.Option("--auth", help="negotiate, kerberos, ntlm, credssp, basic or certificate")
]
UserOpt = Annotated[
    str | None,
    typer.Option("--username", "-u", help="DOMAIN\\user; the password comes from OCSPS_PASSWORD or a prompt"),
]
PortOpt = Annotated[int | None, typer.Option("--port", help="WinRM port (default 5986 with https)")]
SslOpt = Annotated[bool | None, typer.Option("--ssl/--no-ssl", help="https (default) or http")]
CaOpt = Annotated[
    Path | None, typer.Option("--ca-bundle", help="PEM file of the CA that issued the server certificate")
]
InsecureOpt = Annotated[
    bool, typer.Option("--no-verify-tls", help="Do not validate the server certificate (unsafe)")
]
ConfigNameOpt = Annotated[
    str | None, typer.Option("--configuration-name", help="Session configuration (JEA endpoint)")
]
LabOpt = Annotated[bool, typer.Option("--lab", help="Run against a built-in simulated estate on loopback")]
LabTopologyOpt = Annotated[Path | None, typer.Option("--lab-topology", help="Topology file for --lab")]


@dataclass
class TargetOptions:
    hosts: list[str] = field(default_factory=list)
    hosts_file: Path | None = None
    product: str | None = None
    profile: str | None = None
    auth: str | None = None
    username: str | None = None
    port: int | None = None
    ssl: bool | None = None
    ca_bundle: Path | None = None
    no_verify_tls: bool = False
    configuration_name: str | None = None
    lab: bool = False
    lab_topology: Path | None = None


_OPTION_ANNOTATIONS: dict[str, object] = {
    "hosts": HostOpt,
    "hosts_file": HostsFileOpt,
    "product": ProductOpt,
    "profile": ProfileOpt,
    "auth": AuthOpt,
    "username": UserOpt,
    "port": PortOpt,
    "ssl": SslOpt,
    "ca_bundle": CaOpt,
    "no_verify_tls": InsecureOpt,
    "configuration_name": ConfigNameOpt,
    "lab": LabOpt,
    "lab_topology": LabTopologyOpt,
}


def with_target_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command every connection option at once, packed into its ``TargetOptions`` parameter.

    Every remote command takes the same dozen options; declaring them once keeps their names, help and
    defaults identical everywhere. The command names its keyword-only ``TargetOptions`` parameter freely.
    """
    own = inspect.signature(command, eval_str=True)
    (packed,) = [p.name for p in own.parameters.values() if p.annotation is TargetOptions]
    kept = [p for p in own.parameters.values() if p.name != packed]
    defaults = {f.name: None if f.default is MISSING else f.default for f in fields(TargetOptions)}
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name], annotation=annotation)
        for name, annotation in _OPTION_ANNOTATIONS.items()
    ]
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept] + added

    @functools.wraps(command)
    def wrapper(**kwargs: object) -> None:
        values = {name: kwargs.pop(name) for name in _OPTION_ANNOTATIONS}
        values["hosts"] = values["hosts"] or []
        kwargs[packed] = TargetOptions(**values)  # type: ignore[arg-type]
        command(**kwargs)

    wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def host_entries(opts: TargetOptions) -> list[tuple[str, int | None]]:
    """(host, port or None) of every ``--host`` (``name``, ``name:port``, ``[v6]:port``) and hosts-file line.

    Every command that takes ``--host`` reads it here, so ``host:port`` works wherever a host does."""
    from ocsps.remote.hosts import load_hosts_file, parse_hosts_file

    entries: list[tuple[str, int | None]] = []
    for given in opts.hosts:
        plain = not any(c in given for c in "\r\n#")
        parsed = parse_hosts_file(given, source="--host") if plain else []
        if len(parsed) != 1:
            raise UsageError(f"--host takes one host name, got {given[:60]!r}")
        entries.append((parsed[0].host, parsed[0].port))
    if opts.hosts_file is not None:
        entries += [(e.host, e.port) for e in load_hosts_file(opts.hosts_file)]
    return entries


def resolve_targets(opts: TargetOptions) -> list[Target]:
    """Real servers from flags, environment and config, resolved and checked by the library (as the
    Ansible modules are); the password is asked for once, transport warnings are printed once."""
    from ocsps.remote.targets import resolve_targets as resolve

    entries = host_entries(opts)
    flags: dict[str, object] = {
        "auth": opts.auth,
        "username": opts.username,
        "port": opts.port,
        "ssl": opts.ssl,
        "ca_bundle": str(opts.ca_bundle) if opts.ca_bundle else None,
        "verify": False if opts.no_verify_tls else None,
        "configuration_name": opts.configuration_name,
        "product": opts.product,
    }
    env = dict(os.environ)
    if not entries and not env.get("OCSPS_HOST") and not opts.profile and not env.get("OCSPS_PROFILE"):
        raise UsageError("no server given", hint=NO_HOST_HINT)
    return resolve(
        flags,
        entries,
        env=env,
        profile=opts.profile,
        prompt=_prompt if sys.stdin.isatty() else None,
        warn=_warn,
    )


def _warn(text: str) -> None:
    err_console().print(f"warning: {text}.", markup=False)


def _prompt(text: str) -> str:
    import getpass

    return getpass.getpass(text)


LAB_RULE = (
    "with --lab the servers are the lab's: choose them with --host/--hosts-file (lab names), --profile (its "
    "host, which must be a lab server) or --product; connection options and OCSPS_* variables are not used"
)
"""The one rule for ``--lab`` plus target options, as the error message and the docs state it."""

_LAB_REFUSED = {
    "auth": "--auth",
    "username": "--username",
    "port": "--port",
    "ssl": "--ssl/--no-ssl",
    "ca_bundle": "--ca-bundle",
    "no_verify_tls": "--no-verify-tls",
    "configuration_name": "--configuration-name",
}


def _lab_names(opts: TargetOptions, lab: Lab, service: str | None) -> list[str]:
    """The lab servers a ``--lab`` command works on, by the rule in ``LAB_RULE``."""
    from ocsps.catalog import load_catalog

    given = [flag for key, flag in _LAB_REFUSED.items() if getattr(opts, key) not in (None, False)]
    if given:
        raise UsageError(
            f"{given[0]} cannot be combined with --lab: the lab sets its own connection", hint=LAB_RULE
        )
    if opts.product:
        load_catalog().product(opts.product)  # "unknown product", as without --lab
    entries = host_entries(opts)
    if opts.profile:
        if entries:
            raise UsageError("give either --profile or --host/--hosts-file with --lab", hint=LAB_RULE)
        entries = [(_profile_host(opts.profile), None)]
    known = {s.fqdn.casefold(): s.fqdn for s in lab.topology.servers}
    if entries:
        unknown = [h for h, _ in entries if h.casefold() not in known]
        if unknown:
            raise UsageError(
                f"{unknown[0]} is not a server of the lab topology",
                hint="lab servers: " + ", ".join(known.values()),
            )
        return [known[h.casefold()] for h, _ in entries]
    names = [s.fqdn for s in lab.topology.running(service)]
    if opts.product:
        names = [n for n in names if lab.server(n).product.id == opts.product]
    if not names:
        if opts.product:
            raise UsageError(f"no lab server runs {opts.product}" + (f" with {service}" if service else ""))
        raise UsageError(f"no lab server runs {service}" if service else "the lab topology has no servers")
    return names


def _profile_host(profile: str) -> str:
    """The host a config profile names (its other settings do not apply to the lab)."""
    from ocsps.remote.profiles import find_config

    config = find_config(dict(os.environ))
    if config is None:
        raise UsageError(f"profile {profile!r} was selected but no config file was found")
    for _label, values, _key in config.layers(profile):
        host = values.get("host")
        if isinstance(host, str):
            return host
    raise UsageError(f"profile {profile!r} names no host", hint=LAB_RULE)


@contextlib.contextmanager
def open_targets(
    opts: TargetOptions, *, service: str | None = None
) -> Iterator[tuple[list[Target], Lab | None]]:
    """Targets for a command; with ``--lab`` a simulated estate runs for the duration of the block.

    With ``--lab`` the targets follow ``LAB_RULE``: lab servers only, chosen by name, profile host or
    product; options that say how to connect are refused rather than silently ignored.
    """
    if not opts.lab:
        yield resolve_targets(opts), None
        return
    from ocsps import audit
    from ocsps.lab.runtime import Lab

    with Lab(topology_file=opts.lab_topology) as lab, audit.simulated():
        names = _lab_names(opts, lab, service)
        from ocsps.remote.connector import lab_settings

        targets = [Target(lab_settings(lab, n), lab.server(n).product) for n in names]
        if opts.product and any(t.product.id != opts.product for t in targets):
            raise UsageError(f"--product {opts.product} does not match the lab servers chosen")
        yield targets, lab


def audited_server(target: Target, timeout: float, *, summarized: tuple[str, ...] = ()) -> Server:
    """A ``Server`` for one host whose state-changing calls are written to the audit log (the library's
    ``ocsps.remote.targets.audited_server``, which the Ansible modules use too).

    Parameters named in ``summarized`` (an operator's own script, say) are logged as a line count only.
    """
    from ocsps.remote.targets import audited_server as audited

    return audited(target, timeout, summarized=summarized)
