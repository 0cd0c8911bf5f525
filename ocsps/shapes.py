"""Typed data shapes for input files: one conversion step, one error format with a dotted path.

Config files, lab topologies, check specs and saved plans are parsed (TOML or JSON) into plain data and then
converted into ``msgspec.Struct`` classes declared with ``forbid_unknown_fields=True``. msgspec checks the
types and refuses unknown keys; what it cannot know (a host name's syntax, a port's range, a value that must
stay harmless inside PowerShell) stays in the struct as a ``__post_init__`` check that raises
:class:`FieldError`.

Every failure becomes one ``UsageError`` line that names the key the user has to fix::

    profiles.lab.port: expected int, got str '5986'
    profiles.fe01: unknown key 'hots' (did you mean host?); valid keys: host, port, ...
    hosts."fe01.contoso.com".services[2]: expected str, got int 7

msgspec reports a dict entry as ``[...]``; :func:`convert` finds which entry failed, so the message names
the key. This module imports only msgspec and the error class, so that it stays cheap for offline commands.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

import msgspec

from ocsps.errors import UsageError
from ocsps.hostname import show

__all__ = ["FieldError", "convert", "join_path"]

T = TypeVar("T")

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_LOCATION: Final = re.compile(r"^(?P<detail>.*?)(?: - at `\$(?P<where>[^`]*)`)?$", re.DOTALL)
_SEGMENT: Final = re.compile(r"\.(?P<field>[^.\[]+)|\[(?P<index>[0-9]+|\.\.\.)\]")
_EXPECTED: Final = re.compile(r"^Expected `(?P<want>[^`]+)`(?P<rest>.*)$", re.DOTALL)
_UNKNOWN: Final = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`$")
_MISSING: Final = re.compile(r"^Object missing required field `(?P<key>[^`]*)`$")
_ENUM: Final = re.compile(r"^Invalid enum value (?P<value>.*)$")


class FieldError(ValueError):
    """A domain check on one field of a struct failed: raised from ``__post_init__``.

    msgspec turns a ``ValueError`` raised there into a validation error located at the struct; ``field``
    lets :func:`convert` add the field's name to that location.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def join_path(prefix: str, *parts: str | int) -> str:
    """Append keys and list indices to a dotted path; odd keys are quoted.

    ``prefix`` is used as is; one that ends with a space (``"config.toml: "``) names the document, and the
    first key follows it without a dot.
    """
    text = prefix
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part:
            key = part if _BARE_KEY.fullmatch(part) else _quoted(part[:60])
            text += f".{key}" if text and not text[-1].isspace() else key
    return text


def _quoted(key: str) -> str:
    """A key in double quotes with control characters escaped, so that it cannot break the line."""
    import json

    return json.dumps(key)


def convert(data: object, type_: type[T], *, path: str = "") -> T:
    """Convert parsed TOML/JSON data into ``type_``, or raise one ``UsageError`` line with a dotted path.

    ``path`` is where ``data`` sits in its document (``"profiles.lab"``, or ``"config.toml: "`` for a whole
    file); the message prefixes it to the location msgspec found. Conversion is strict: ``"5986"`` is
    not a port and ``true`` is not a number.
    """
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise UsageError(_message(exc, data, type_, path)) from None


def _message(exc: msgspec.ValidationError, data: object, type_: object, path: str) -> str:
    match = _LOCATION.match(str(exc))
    detail = match["detail"] if match else str(exc)
    where = match["where"] or "" if match else ""
    parts, value, at_type = _locate(data, type_, where)
    cause = exc.__cause__
    if isinstance(cause, FieldError):
        parts.append(cause.field)
    head = join_path(path, *parts).strip()
    text = " ".join(_detail(detail, value, at_type).split())  # one line, whatever a check said
    if not head:
        return text
    return f"{head} {text}" if head.endswith(":") else f"{head}: {text}"


def _detail(detail: str, value: object, at_type: object) -> str:
    expected = _EXPECTED.match(detail)
    if expected:
        want = expected["want"].replace("object", "table").replace(" | ", " or ")
        rest = expected["rest"].replace("`object`", "table").replace("`", "")
        if isinstance(value, str | int | float):
            rest += f" {show(value)}" if ", got " in rest else f", got {show(value)}"
        return f"expected {want}{rest}"
    unknown = _UNKNOWN.match(detail)
    if unknown:
        key = unknown["key"]
        import difflib  # only on the error path: it costs start-up time

        valid = _field_names(at_type)
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        listed = f"; valid keys: {', '.join(valid)}" if valid else ""
        return f"unknown key {show(key)}{hint}{listed}"
    missing = _MISSING.match(detail)
    if missing:
        return f"missing required key {show(missing['key'])}"
    if _ENUM.match(detail):
        choices = _choices(at_type)
        return f"{show(value)} is not one of {', '.join(choices)}" if choices else detail
    return detail


def _choices(type_: object) -> list[str]:
    """The values an enum or a ``Literal`` allows, for the message that refuses another one."""
    if isinstance(type_, type) and issubclass(type_, enum.Enum):
        return [str(member.value) for member in type_]
    return [str(arg) for arg in get_args(type_)] if get_origin(type_) is Literal else []


def _field_names(type_: object) -> list[str]:
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return [f.encode_name for f in msgspec.structs.fields(type_)]
    return []


def _unwrap(type_: object, data: object) -> object:
    """The member of a union that matches ``data``'s container kind (``Struct | None`` -> ``Struct``),
    without its ``Annotated`` constraints."""
    while get_origin(type_) is Annotated:
        type_ = get_args(type_)[0]
    if get_origin(type_) is Union or type(type_).__name__ == "UnionType":
        for member in get_args(type_):
            origin = get_origin(member) or member
            if isinstance(data, dict) and (origin is dict or _field_names(member)):
                return member
            if isinstance(data, list) and origin in (list, tuple, frozenset, set):
                return _unwrap(member, data)
        return type_
    return type_


def _child_type(type_: object, key: str | None) -> object:
    """The declared type of one field (``key``) or of the entries (``None``) of a container type."""
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        for f in msgspec.structs.fields(type_):
            if f.encode_name == key:
                return f.type
        return Any
    args = get_args(type_)
    origin = get_origin(type_)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, frozenset, set) and args:
        return args[0]
    if origin is tuple and args:
        return args[0]
    return Any


def _locate(data: object, type_: object, where: str) -> tuple[list[str | int], object, object]:
    """Walk msgspec's location over the data: the path parts, the value there and its declared type.

    A ``[...]`` (a dict entry) is resolved by converting each entry again: the first that fails is the one.
    """
    parts: list[str | int] = []
    current, current_type = data, _unwrap(type_, data)
    for segment in _SEGMENT.finditer(where):
        field, index = segment["field"], segment["index"]
        if field is not None:
            parts.append(field)
            current = current.get(field) if isinstance(current, dict) else None
            current_type = _child_type(current_type, field)
        elif index == "...":
            entry_type = _child_type(current_type, None)
            found: str | None = None
            if isinstance(current, dict):
                for key, entry in current.items():
                    try:
                        msgspec.convert(entry, entry_type, strict=True)
                    except (msgspec.ValidationError, TypeError, ValueError, UsageError):
                        found = str(key)
                        break
            parts.append(found if found is not None else "...")
            current = current.get(found) if isinstance(current, dict) and found is not None else None
            current_type = entry_type
        else:
            position = int(index)
            parts.append(position)
            in_range = isinstance(current, list) and position < len(current)
            current = current[position] if in_range and isinstance(current, list) else None
            current_type = _child_type(current_type, None)
        current_type = _unwrap(current_type, current)
    return parts, current, current_type
