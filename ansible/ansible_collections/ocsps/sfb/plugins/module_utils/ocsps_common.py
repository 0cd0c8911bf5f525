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


def resolve(module):
    """(ConnectionSettings, Product) from the module's options, the environment and the config profile."""
    from ocsps.catalog import load_catalog
    from ocsps.errors import UsageError
    from ocsps.remote.profiles import find_config, resolve_settings

    params = module.params
    flags = {key: params.get(key) for key in CONNECTION_ARGUMENT_SPEC if key not in ("password", "profile")}
    env = dict(os.environ)
    if params.get("password"):
        env["OCSPS_PASSWORD"] = params["password"]
    settings = resolve_settings(flags, env, find_config(env), params.get("profile"), None)
    if not settings.product:
        raise UsageError("which product does the server run? set product (or OCSPS_PRODUCT, or a profile)")
    return settings, load_catalog().product(settings.product)


def open_server(module, timeout=DEFAULT_TIMEOUT):
    """A ``Server`` whose state-changing calls are written to the ocsps audit log, as the CLI's are."""
    from ocsps import audit
    from ocsps.remote.server import Server
    from ocsps.remote.session import ServerSession

    settings, product = resolve(module)

    def record(rendered, result, outcome, duration):
        audit.record(
            host=settings.host,
            action=rendered.action,
            parameters=dict(rendered.bound_parameters),
            outcome=outcome,
            duration=duration,
            body_sha256=rendered.body_sha256,
        )

    return Server(ServerSession(settings, product, default_timeout=timeout, audit=record))


def status_json(status):
    """A service status as ``ocsps status --json`` prints it."""
    return status.to_json()
