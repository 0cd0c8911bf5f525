"""ocsps's pydantic-free option conversion accepts and refuses exactly what typer's own would.

Each case is one option declaration and the values a user could type (or an environment variable could
hold); both conversions run on the same typer parameter and must agree on the value or on the message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
import typer.main
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param

from ocsps.cli.coercion import plain_runtime_param

INT_TEXTS = [
    *["5", " 7 ", "+3", "-2", "0", "1_000", "5.0", "5.00", "5.", "1__0", "_1", "5.5", "0x10", "abc", ""],
    *["1e3", "١٢", "300", "256"],
]
BOOL_TEXTS = ["true", "Yes", "off", "0", "1", "t", "N", "", " on ", "2", "maybe", "truthy"]
STR_TEXTS = ["", "RTCMEDSRV", "a b", "ü", "-x", "'quoted'"]


def _command() -> typer.main._click.Command:  # type: ignore[name-defined]
    app = typer.Typer()

    @app.command()
    def probe(
        plain_int: Annotated[int, typer.Option()] = 1,
        width: Annotated[int, typer.Option(min=1, max=256)] = 16,
        timeout_ms: Annotated[int | None, typer.Option(min=0)] = None,
        flag: Annotated[bool, typer.Option()] = False,
        ssl: Annotated[bool | None, typer.Option("--ssl/--no-ssl")] = None,
        text: Annotated[str, typer.Option()] = "",
        maybe_text: Annotated[str | None, typer.Option()] = None,
        path: Annotated[Path | None, typer.Option()] = None,
        existing: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
        hosts: Annotated[list[str] | None, typer.Option("--host")] = None,
        ports: Annotated[list[int] | None, typer.Option("--port")] = None,
    ) -> None:
        pass

    return typer.main.get_command(app)


COMMAND = _command()
PARAMS = {p.name: p for p in COMMAND.params}


def _existing_file() -> str:
    return __file__


CASES: list[tuple[str, Any]] = (
    [("plain_int", v) for v in [*INT_TEXTS, 4, True]]
    + [("width", v) for v in INT_TEXTS]
    + [("timeout_ms", v) for v in ["-1", "0", "10"]]
    + [("flag", v) for v in [*BOOL_TEXTS, True, 0, 1]]
    + [("ssl", v) for v in BOOL_TEXTS]
    + [("text", v) for v in [*STR_TEXTS, b"bytes", 5]]
    + [("maybe_text", v) for v in STR_TEXTS]
    + [("path", v) for v in ["", "out.ps1", "/tmp/x", "~/y", Path("z"), "nul\x00byte", "/tmp/\ud83d"]]
    + [("existing", v) for v in ["nul\x00byte", "\ud83d"]]
    + [("existing", v) for v in [_existing_file(), "/no/such/file", str(Path(__file__).parent)]]
    + [("hosts", v) for v in [("fe01",), ("fe01", "fe02:5986"), []]]
    + [("ports", v) for v in [("1", "2"), ("x",), ("5986",)]]
)


def _outcome(runtime: Any, name: str, value: Any) -> tuple[str, Any]:
    param = PARAMS[name]
    ctx = COMMAND.make_context("probe", [], resilient_parsing=True)
    try:
        return ("ok", runtime._coerce_value(value, param=param, ctx=ctx))
    except BadParameter as exc:
        return ("refused", exc.message)


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_same_value_or_same_refusal_as_typer(name: str, value: Any) -> None:
    descriptor = PARAMS[name].type_descriptor
    plain = plain_runtime_param(descriptor)
    assert plain is not None, f"{name} should not need typer's pydantic conversion"
    assert _outcome(plain, name, value) == _outcome(build_runtime_param(descriptor), name, value)


def test_every_option_type_ocsps_uses_is_converted_without_pydantic() -> None:
    from ocsps.cli.app import COMMANDS, app

    root = typer.main.get_command(app)
    stack = [root.commands[name] for name in COMMANDS]
    missing = []
    while stack:
        command = stack.pop()
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and plain_runtime_param(descriptor) is None:
                missing.append(f"{command.name} --{param.name}: {descriptor.annotation!r}")
        stack.extend(getattr(command, "commands", {}).values())
    assert missing == [], "teach ocsps.cli.coercion these types (or keep pydantic): " + "; ".join(missing)
