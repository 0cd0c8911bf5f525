"""The typer application, the options every command shares, and a command tree built on demand.

Only the invoked command is imported and built: typer otherwise inspects the signature of all two dozen
commands (and imports their modules) on every run, even for ``--help``. The root lists the commands from
``COMMANDS`` below; a test checks that table against the commands the modules really register.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, NamedTuple

import typer
import typer.main
from typer.core import TyperGroup

try:  # typer vendors its own copy of click since 0.2x; before, it used click itself
    from typer import _click
    from typer._click.utils import make_default_short_help
except ImportError:  # pragma: no cover
    import click as _click  # type: ignore[no-redef]
    from click.utils import make_default_short_help  # type: ignore[no-redef]

from ocsps import __version__
from ocsps.cli import coercion
from ocsps.cli.output import err_console, set_verbosity
from ocsps.errors import OcspsError


class CommandEntry(NamedTuple):
    module: str
    help: str
    """The first paragraph of the command's help, as ``ocsps --help`` lists it."""
    offline: bool = False
    """Never talks to a server: bounded work, run without the cyclic garbage collector."""


COMMANDS: dict[str, CommandEntry] = {
    "check": CommandEntry(
        "ocsps.cli.check_cmd",
        "Run preflight checks and print pass / warn / fail with the reason, the fix and the rule cited.",
    ),
    "status": CommandEntry(
        "ocsps.cli.ops_cmd", "Services per host with their status and parsed activity (read in parallel)."
    ),
    "drain": CommandEntry(
        "ocsps.cli.ops_cmd",
        "Drain a service gracefully (Stop-CsWindowsService -Graceful) and watch it to Stopped.",
    ),
    "stop": CommandEntry(
        "ocsps.cli.ops_cmd",
        "Stop a service now, and the services that depend on it; already stopped is success.",
    ),
    "start": CommandEntry(
        "ocsps.cli.ops_cmd", "Start a service and its prerequisites; already running is success."
    ),
    "restart": CommandEntry(
        "ocsps.cli.restart_cmd",
        "Restart a service and bring its dependents back, or run a restart plan's steps in order.",
    ),
    "render": CommandEntry(
        "ocsps.cli.render_cmd",
        "Write a change-board .ps1: header, -WhatIf support, quoted defaults, transcript, exit code.",
        offline=True,
    ),
    "audit": CommandEntry(
        "ocsps.cli.audit_cmd", "The audit trail of every state-changing call.", offline=True
    ),
    "catalog": CommandEntry(
        "ocsps.cli.catalog_cmd", "List the products, services and restart rules ocsps knows.", offline=True
    ),
    "config": CommandEntry("ocsps.cli.config_cmd", "The config file of connection profiles.", offline=True),
    "deactivate": CommandEntry(
        "ocsps.cli.deactivate_cmd",
        "Deactivate OCS 2007 / R2 server roles: plan, approve, run step by step.",
    ),
    "lab": CommandEntry(
        "ocsps.cli.lab_cmd",
        "Simulated OCS / Lync / Skype for Business servers on loopback, for rehearsals and tests.",
    ),
    "plan": CommandEntry("ocsps.cli.plan_cmd", "Plan changes without touching a server.", offline=True),
    "verify": CommandEntry(
        "ocsps.cli.verify_cmd",
        "Check a change-board script or a sealed plan: intact or modified, and what it targets.",
        offline=True,
    ),
    "pool": CommandEntry(
        "ocsps.cli.pool_cmd",
        "Rolling maintenance of Front End pools: status, and a roll that keeps quorum and can resume.",
    ),
    "patch": CommandEntry(
        "ocsps.cli.patch_cmd",
        "Install a cumulative update on a server end to end: out of service, install, restart, verify, back.",
    ),
    "report": CommandEntry(
        "ocsps.cli.report_cmd",
        "The post-implementation report of a change: per-server timeline, versions, outcome, who ran it.",
        offline=True,
    ),
}
"""Every top-level command, in the order ``ocsps --help`` lists them, with the module that registers it."""

PRODUCTS = ("ocs2007", "ocs2007r2", "lync2010", "lync2013", "sfb2015", "sfb2019")
"""The catalog's product ids for ``--version``, which must not pay for parsing the catalog (a test keeps
this equal to ``load_catalog().products``)."""


def command_modules() -> list[str]:
    """Every module that registers commands: those of the table, plus any ``*_cmd`` module of the package."""
    import pkgutil

    import ocsps.cli

    found = {
        f"ocsps.cli.{m.name}" for m in pkgutil.iter_modules(ocsps.cli.__path__) if m.name.endswith("_cmd")
    }
    return list(dict.fromkeys([entry.module for entry in COMMANDS.values()] + sorted(found)))


class _Commands(MutableMapping[str, _click.Command]):
    """A group's sub-commands, each imported and built the first time it is looked up.

    Iterating gives the names without building anything; reading a value builds that one command.
    """

    def __init__(self, built: dict[str, _click.Command]) -> None:
        self._built = built

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self._built:
            command = _build(name)
            if command is None:
                raise KeyError(name)
            self._built[name] = command
        return self._built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS.keys() | self._built.keys())

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self._built


def _registered(name: str) -> _click.Command | None:
    """Build one command (or group) already registered on ``app``, by its command-line name."""
    for info in app.registered_commands:
        callback = info.callback
        if (info.name or (callback and typer.main.get_command_name(callback.__name__))) == name:
            return typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
    return None


_collection = {"resume": False}


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """No cyclic garbage collection while ocsps starts, nor for the whole run of an offline command.

    Start-up creates tens of thousands of long-lived objects (modules, classes, functions) and almost no
    garbage, yet every few hundred new objects trigger a collection that walks the young ones: importing
    the catalog module took 21-27 ms with collections, about 10 ms without. Offline commands do a bounded
    amount of work, so they finish without the collector (reference counting still frees their garbage);
    a command that talks to servers, possibly for hours, gets it back as soon as it is chosen
    (``LazyGroup.resolve_command``).
    The previous state is always restored on the way out.
    """
    collecting = gc.isenabled()
    resume = _collection["resume"]
    gc.disable()
    _collection["resume"] = collecting or resume
    try:
        yield
    finally:
        _collection["resume"] = resume
        if collecting:
            gc.enable()


def _build(name: str) -> _click.Command | None:
    with no_collection():
        return _import_and_build(name)


def _import_and_build(name: str) -> _click.Command | None:
    entry = COMMANDS.get(name)
    if entry is not None:
        importlib.import_module(entry.module)
    command = _registered(name)
    if command is None and entry is None:  # a command missing from the table still works, only slower
        for module in command_modules():
            importlib.import_module(module)
        command = _registered(name)
    return command


class LazyGroup(TyperGroup):
    """The root group: sub-commands built on first use, listed from ``COMMANDS`` without building them."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(dict(self.commands))

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(self.commands)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        entry = COMMANDS.get(name or "")
        if (entry is None or not entry.offline) and _collection["resume"]:
            gc.enable()
        return name, command, rest

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            entry = COMMANDS.get(name)
            if entry is not None:
                rows.append((name, make_default_short_help(entry.help, limit)))
            else:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


coercion.install()

app = typer.Typer(
    name="ocsps",
    cls=LazyGroup,
    help="Drain, stop, start, restart and deactivate OCS / Lync / Skype for Business server roles safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def print_error(exc: OcspsError) -> None:
    console = err_console()
    console.print(f"ocsps: error: {exc.message}", markup=False)
    if exc.hint:
        console.print(f"hint: {exc.hint}", markup=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ocsps {__version__} (products: {', '.join(PRODUCTS)})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and products."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors and results: no progress, no warnings.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show remote verbose output and retries.")
    ] = False,
) -> None:
    set_verbosity(quiet=quiet, verbose=verbose)
