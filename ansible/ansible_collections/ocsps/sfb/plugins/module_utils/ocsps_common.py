"""What every ocsps module shares: the connection, the audit trail and the mapping of library errors.

The modules run on the controller (``delegate_to: localhost``) and reach the server over PowerShell
Remoting through the ocsps library, so OCS 2007/R2 and Lync Server 2010 servers, which have only
PowerShell 2.0, are served as well as newer ones. Unset connection options are read exactly as the
``ocsps`` command line reads them: ``OCSPS_*`` environment variables, then the config profile.
"""

from __future__ import annotations

import os
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ocsps.sfb.plugins.module_utils.connection_spec import CONNECTION_ARGUMENT_SPEC

try:
    import ocsps  # the library every module wraps
except ImportError:
    HAS_OCSPS = False
    OCSPS_IMPORT_ERROR = traceback.format_exc()
    OCSPS_VERSION = None
else:
    HAS_OCSPS = True
    OCSPS_IMPORT_ERROR = None
    OCSPS_VERSION = ocsps.__version__

DEFAULT_TIMEOUT = 120.0
"""Seconds one remote call may take unless a module says otherwise (the CLI's --timeout default)."""


def argument_spec(**own):
    """The module's own options plus the shared connection options."""
    spec = dict(CONNECTION_ARGUMENT_SPEC)
    spec.update(own)
    return spec


def require_ocsps(module):
    if not HAS_OCSPS:
        module.fail_json(msg=missing_required_lib("ocsps"), exception=OCSPS_IMPORT_ERROR)


def fail_from(module, exc, **result):
    """Fail the task with the library's one-line message and its exit-code class."""
    from ocsps.errors import OcspsError

    if isinstance(exc, OcspsError):
        module.fail_json(
            msg=exc.message, error=type(exc).__name__, exit_code=exc.exit_code, hint=exc.hint, **result
        )
    module.fail_json(
        msg=f"internal error: {type(exc).__name__}: {exc}", exception=traceback.format_exc(), **result
    )


def _warner(module):
    """``module.warn`` for each transport warning, once per task (the CLI prints each once per run)."""
    told = set()

    def warn(text):
        if text not in told:
            told.add(text)
            module.warn(f"{text}.")

    return warn


def _targets(module, hosts=(), per_host=None):
    """Targets (settings, product) resolved and checked by the library, exactly as the CLI resolves its
    servers: local files, installed auth packages, transport warnings, distinct endpoints."""
    from ocsps.remote.targets import resolve_targets

    params = module.params
    flags = {key: params.get(key) for key in CONNECTION_ARGUMENT_SPEC if key not in ("password", "profile")}
    env = dict(os.environ)
    if params.get("password"):
        env["OCSPS_PASSWORD"] = params["password"]
    if not hasattr(module, "_ocsps_warn"):
        module._ocsps_warn = _warner(module)
    return resolve_targets(
        flags,
        [(host, None) for host in hosts],
        env=env,
        profile=params.get("profile"),
        per_host=per_host,
        warn=module._ocsps_warn,
    )


def resolve(module, host=None):
    """(ConnectionSettings, Product) from the module's options, the environment and the config profile.

    ``host`` takes the place of the module's own ``host`` option.
    """
    (target,) = _targets(module, [host] if host is not None else [])
    return target.settings, target.product


def _ticket(module, change_id):
    """The change ticket for the audit records, checked (default: the module's ``change_id`` option)."""
    return _checked((module.params.get("change_id") or "") if change_id is None else change_id)


def _checked(ticket):
    from ocsps import audit
    from ocsps.errors import UsageError

    try:
        audit.check_change_id(ticket)
    except ValueError as exc:
        raise UsageError(f"change_id: {exc}") from None
    return ticket


def _audited(settings, product, timeout, change_id=""):
    """A ``Server`` for settings already resolved, audited by the library as the CLI's servers are.

    ``change_id`` (a change ticket, checked here) is stamped on every record, as ``--change-id`` does.
    """
    from ocsps.remote.targets import Target, audited_server

    return audited_server(Target(settings, product), timeout, change_id=_checked(change_id))


def open_server(module, timeout=DEFAULT_TIMEOUT, default_host=None, change_id=None):
    """The one server the module's connection options name, audited; ``default_host`` when none is named.

    ``change_id``: the ticket on its audit records (default: the module's ``change_id`` option, if any).
    The server is audited by the library's ``audited_server``, as the CLI's servers are.
    """
    from ocsps.remote.targets import audited_server

    host = None if module.params.get("host") or default_host is None else default_host
    (target,) = _targets(module, [host] if host is not None else [])
    return audited_server(target, timeout, change_id=_ticket(module, change_id))


POOL_ARGUMENTS = dict(
    pool=dict(type="str", required=True),
    members=dict(type="list", elements="str", required=True),
    member_overrides=dict(type="dict", default={}),
    call_timeout=dict(type="float", default=DEFAULT_TIMEOUT),
)
"""Options of every module that talks to a whole pool: its members, each reached with its own settings."""

_NOT_OVERRIDDEN = ("host", "password", "profile")


def member_overrides(members, raw):
    """``member_overrides`` checked: every key a member, every value a table of connection options.

    A password is refused here: this option is not hidden from logs; set ``password`` (or
    ``OCSPS_PASSWORD``) once for the whole pool instead.
    """
    from ocsps.errors import UsageError

    by_name = {m.casefold(): m for m in members}
    checked = {}
    for name, values in (raw or {}).items():
        key = str(name).casefold()
        if key not in by_name:
            raise UsageError(f"member_overrides names {name}, which is not in members ({', '.join(members)})")
        if not isinstance(values, dict):
            raise UsageError(f"member_overrides.{name}: expected a table of connection options")
        for option in values:
            if option in _NOT_OVERRIDDEN:
                raise UsageError(
                    f"member_overrides.{name}.{option}: not allowed here "
                    "(the member is the host; set password and profile once for the pool)"
                )
            if option not in CONNECTION_ARGUMENT_SPEC:
                raise UsageError(
                    f"member_overrides.{name}.{option}: unknown connection option; valid options: "
                    + ", ".join(k for k in CONNECTION_ARGUMENT_SPEC if k not in _NOT_OVERRIDDEN)
                )
        checked[key] = dict(values)
    return checked


def pool_connections(module, change_id=None):
    """(factory, product, members) for the pool the module's options name; nothing is opened yet.

    Each member's connection is resolved like a single server's, with the member as ``host`` and its
    ``member_overrides`` on top, by the library function the CLI uses (``resolve_targets``: two members
    on one endpoint are refused); ``pool_servers`` refuses members on different products and audits the
    operator's step script as a line count. ``factory(host)`` opens an audited ``Server`` for one
    member; pool and patch drivers share it.
    """
    from ocsps.errors import UsageError
    from ocsps.remote.targets import pool_servers

    params = module.params
    members = [m.strip() for m in params["members"] if m and m.strip()]
    if not members:
        raise UsageError("members is empty: list every member of the pool, in topology order")
    overrides = member_overrides(members, params.get("member_overrides"))
    targets = _targets(module, members, overrides)
    return pool_servers(
        targets, members, params["pool"], params["call_timeout"], change_id=_ticket(module, change_id)
    )


def open_pool(module, change_id=None):
    """(driver, product, members) for the pool the module's options name; the caller closes the driver."""
    from ocsps.pool import RemoteDriver

    factory, product, members = pool_connections(module, change_id)
    return RemoteDriver(factory, call_timeout=module.params["call_timeout"]), product, members


def pool_options(labels=None, **changes):
    """The roll's timing options (``RollOptions``) with the module's values in place of the defaults.

    Parsed and checked by the library, by the rules the CLI's flags follow (``RollOptions.parse_timings``):
    ``stable_for`` may be 0 (pass on the first Ready), every other duration must be more than 0 and at
    most 7 days, ``max_busy`` at least 1. ``labels`` maps a timing to the module option that set it, for
    the refusal's wording.
    """
    from ocsps.pool import RollOptions

    return RollOptions.from_text(labels=labels, **changes)


def status_json(status):
    """A service status as ``ocsps status --json`` prints it."""
    from ocsps.jsonout import to_builtins

    return to_builtins(status)
