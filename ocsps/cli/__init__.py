"""The ``ocsps`` command line: a thin layer over the library.

Sub-command modules import the remote stack (pypsrp) only inside the commands that talk to a server, so
``--help``, ``render`` and ``plan`` start fast.
"""

from __future__ import annotations

import sys

from ocsps.cli import (  # noqa: F401  (each sub-command module registers itself on import)
    audit_cmd,
    catalog_cmd,
    check_cmd,
    config_cmd,
    deactivate_cmd,
    lab_cmd,
    ops_cmd,
    plan_cmd,
    pool_cmd,
    render_cmd,
    restart_cmd,
    verify_cmd,
)
from ocsps.cli.app import app, print_error
from ocsps.errors import OcspsError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    import os

    from ocsps.redact import register_inputs

    register_inputs(sys.argv[1:] if argv is None else argv, os.environ)  # masked wherever echoed
    try:
        app(args=argv, prog_name="ocsps")
    except OcspsError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("ocsps: interrupted", file=sys.stderr)
        sys.exit(130)
