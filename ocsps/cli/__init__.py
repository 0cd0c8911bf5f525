"""The ``ocsps`` command line: a thin layer over the library.

Only the invoked command's module is imported (``ocsps.cli.app.COMMANDS``), and sub-command modules import
the remote stack (pypsrp) only inside the commands that talk to a server, so ``--help``, ``render`` and
``plan`` start fast.
"""

from __future__ import annotations

import gc
import sys

_collecting = gc.isenabled()
gc.disable()  # as in ocsps.cli.app.no_collection: importing typer makes no garbage worth a collection
try:
    from ocsps.cli.app import app, no_collection, print_error
finally:
    if _collecting:
        gc.enable()

from ocsps.errors import OcspsError  # noqa: E402  (after the collector is switched back on)

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    import os

    from ocsps.redact import register_inputs

    register_inputs(sys.argv[1:] if argv is None else argv, os.environ)  # masked wherever echoed
    try:
        with no_collection():
            app(args=argv, prog_name="ocsps")
    except OcspsError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("ocsps: interrupted", file=sys.stderr)
        sys.exit(130)
