"""``ocsps config``: write a commented starter profile file, show where it is and what it sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ocsps.cli.app import app
from ocsps.cli.output import emit_json, err_console, human, is_quiet

config_app = typer.Typer(help="The config file of connection profiles.", no_args_is_help=True)
app.add_typer(config_app, name="config")

PathOpt = Annotated[
    Path | None,
    typer.Option("--path", help="Config file to use (default: OCSPS_CONFIG, else the user config dir)"),
]


def _path(path: Path | None) -> Path:
    from ocsps.remote.profiles import config_path

    return path.expanduser() if path is not None else config_path(os.environ)


@config_app.command("init")
def init_cmd(
    path: PathOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file")] = False,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the starter file instead of writing it")
    ] = False,
) -> None:
    """Write a commented config file: every key explained, a profile for the lab, an example pool member."""
    from ocsps.remote.profiles import default_config_text, write_default_config

    if stdout:
        typer.echo(default_config_text(), nl=False)
        return
    written = write_default_config(_path(path), force=force)
    typer.echo(str(written))
    if not is_quiet():
        err_console().print(
            f"wrote {written}\n"
            "next: edit a profile, then run e.g. 'ocsps status --profile NAME'; "
            "passwords go in OCSPS_PASSWORD or the prompt, never in the file.",
            markup=False,
        )


@config_app.command("path")
def path_cmd() -> None:
    """Print where ocsps looks for its config file (OCSPS_CONFIG moves it)."""
    typer.echo(str(_path(None)))


@config_app.command("show")
def show_cmd(
    profile: Annotated[
        str | None, typer.Option("--profile", help="Profile to show (default: OCSPS_PROFILE, else none)")
    ] = None,
    path: PathOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Check the config file and show a profile's values, and which OCSPS_* variables override them."""
    from ocsps.errors import UsageError
    from ocsps.remote.profiles import load_config
    from ocsps.remote.settings import ENV_PASSWORD, ENV_PROFILE, OPTIONS

    file = _path(path)
    exists = file.exists()
    if path is not None and not exists:
        raise UsageError(f"{file} does not exist", hint="create it with 'ocsps config init --path FILE'")
    chosen = profile or os.environ.get(ENV_PROFILE) or None
    profiles: tuple[str, ...] = ()
    values: dict[str, object] = {}
    if exists:
        config = load_config(file)
        profiles = config.profile_names
        values = config.values(chosen)
    elif chosen is not None:
        raise UsageError(
            f"profile {chosen!r} was asked for but there is no config file at {file}",
            hint="create one with 'ocsps config init'",
        )
    environment: dict[str, object] = {}
    for option in OPTIONS.values():
        raw = os.environ.get(option.env)
        if raw:
            environment[option.env] = raw
    if os.environ.get(ENV_PASSWORD):
        environment[ENV_PASSWORD] = "(set)"
    document: dict[str, object] = {
        "path": str(file),
        "exists": exists,
        "profiles": list(profiles),
        "profile": chosen,
        "values": values,
        "environment": environment,
    }
    if json_out:
        emit_json(document)
        return
    typer.echo(
        human(f"config file: {file}" + ("" if exists else " (none yet: 'ocsps config init' writes one)"))
    )
    typer.echo(human("profiles: " + (", ".join(profiles) or "none")))
    typer.echo(human(f"values ({'[default]' if chosen is None else f'[profiles.{chosen}] over [default]'}):"))
    for key, value in values.items():
        typer.echo(human(f"  {key} = {value!r}"))
    if not values:
        typer.echo("  (none)")
    if environment:
        typer.echo("environment (wins over the file):")
        for key, value in environment.items():
            typer.echo(human(f"  {key}={value}"))
