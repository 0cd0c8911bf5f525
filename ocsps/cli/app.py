"""The typer application and the options every command shares."""

from __future__ import annotations

from typing import Annotated

import typer

from ocsps import __version__
from ocsps.cli.output import err_console, set_verbosity
from ocsps.errors import OcspsError

app = typer.Typer(
    name="ocsps",
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
        from ocsps.catalog import load_catalog

        products = ", ".join(load_catalog().products)
        typer.echo(f"ocsps {__version__} (products: {products})")
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
