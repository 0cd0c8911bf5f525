"""Option values converted without pydantic, for the option types ocsps's commands use.

typer 0.29 converts every non-flag option through a pydantic ``TypeAdapter``, built when the option is
first processed, even when the option was not given: any command with a ``str`` option imports pydantic,
about twice what ``import typer, jinja2`` costs. ocsps's options are plain ``str``, ``int`` (with a range),
``bool``, ``Path`` and lists of them, which need no schema machinery; this module gives such parameters a
converter that accepts and refuses exactly what typer's adapter would, with the same messages (a test
compares both on the same inputs). Any other type keeps typer's own conversion, so a new option type can
never be converted wrongly, only slowly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # private to typer: if a release moves them, typer's own (slower) conversion stays in place
    from typer._click.exceptions import BadParameter
    from typer._coercion import RuntimeParam, TypeDescriptor
    from typer._param_types import coerce_cli_path, lenient_issubclass, routes_to_path
    from typer.core import _TyperParameter
    from typer.models import ParameterInfo
except ImportError:  # pragma: no cover - older or newer typer without pydantic adapters
    RuntimeParam = None  # type: ignore[assignment,misc]

Converter = Callable[[Any, Any, Any], Any]
"""``(value, parameter, context) -> converted``; raises ``BadParameter`` on a bad value."""

_INT = re.compile(r"[+-]?[0-9](?:_?[0-9])*(?:\.0+)?")
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_NOT_INT = "Input should be a valid integer, unable to parse string as an integer"
_NOT_BOOL = "Input should be a valid boolean, unable to interpret input"


def _fail(message: str, param: Any, ctx: Any) -> BadParameter:
    return BadParameter(message, ctx=ctx, param=param)


def _to_str(value: Any, param: Any, ctx: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _to_bool(value: Any, param: Any, ctx: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE or text == "":
            return False
    raise _fail(_NOT_BOOL, param, ctx)


def _int_converter(minimum: float | None, maximum: float | None) -> Converter:
    def convert(value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, bool):
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, str) and _INT.fullmatch(value.strip()):
            number = int(value.strip().split(".")[0].replace("_", ""))
        else:
            raise _fail(_NOT_INT, param, ctx)
        if minimum is not None and number < minimum:
            raise _fail(f"Input should be greater than or equal to {minimum}", param, ctx)
        if maximum is not None and number > maximum:
            raise _fail(f"Input should be less than or equal to {maximum}", param, ctx)
        return number

    return convert


def _path_converter(info: ParameterInfo, annotation: Any) -> Converter | None:
    path_type: Any = info.path_type
    if path_type is None and lenient_issubclass(annotation, Path):
        path_type = annotation
    if path_type is not Path:
        return None

    def convert(value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str):
            value = Path(value)
        elif not isinstance(value, Path):
            raise _fail("Input is not a valid path", param, ctx)
        return coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)

    return convert


def _leaf(annotation: Any, info: ParameterInfo) -> Converter | None:
    """typer's order of choice (parser, choices, dates, numbers, bool, str, paths), for the plain types."""
    if info.parser is not None or getattr(info, "click_type", None) is not None:
        return None
    if annotation is int:
        if info.clamp:
            return None
        return _int_converter(info.min, info.max)
    if annotation is bool:
        return _to_bool
    if annotation is str:
        return _to_str
    if routes_to_path(annotation, info):
        return _path_converter(info, annotation)
    return None


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        """A typer runtime parameter whose conversion is a plain function."""

        convert: Converter
        is_list: bool

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                if not self.is_list:
                    return self.convert(value, param, ctx)
                items = value if isinstance(value, list | tuple) else [value]
                return [self.convert(item, param, ctx) for item in items]
            except ValueError as exc:  # e.g. a NUL byte in a path: what pydantic reports as a value error
                raise _fail(f"Value error, {exc}", param, ctx) from exc

    def plain_runtime_param(descriptor: TypeDescriptor) -> PlainRuntimeParam | None:
        """The pydantic-free conversion of a parameter, or None where typer's own must stay."""
        if descriptor.file_annotation is not None or descriptor.is_tuple:
            return None
        annotation = descriptor.annotation
        if descriptor.is_list:
            args: tuple[Any, ...] = getattr(annotation, "__args__", ())
            if len(args) != 1:
                return None
            annotation = args[0]
        convert = _leaf(annotation, descriptor.parameter_info)
        if convert is None:
            return None
        return PlainRuntimeParam(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            convert=convert,
            is_list=descriptor.is_list,
        )


def install() -> None:
    """Make typer try the pydantic-free conversion first, for every parameter of this process.

    Patching typer's lazy hook rather than each built parameter also covers the parameters typer adds on
    its own (``--help``, the completion options). The patch is idempotent; typer's own conversion stays the
    fallback for every type not handled here.
    """
    if RuntimeParam is None or getattr(_TyperParameter.get_runtime_param, "_ocsps_plain", False):
        return
    typer_own = _TyperParameter.get_runtime_param

    def get_runtime_param(self: _TyperParameter) -> RuntimeParam:
        if self._runtime_param is None:
            self._runtime_param = plain_runtime_param(self.type_descriptor)
        return typer_own(self)

    get_runtime_param._ocsps_plain = True  # type: ignore[attr-defined]
    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
