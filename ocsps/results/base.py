"""Reading PowerShell output objects: one accessor, typed coercions and the parse error.

Objects reach Python in three shapes and every parser must accept all of them:

* a ``pypsrp.complex_objects.GenericComplexObject`` built from a PSCustomObject (``New-Object PSObject
  -Property @{...}`` in our templates), whose fields sit in ``extended_properties``;
* a ``GenericComplexObject`` built from a real .NET object (``NTService``, ``ServiceController``,
  ``EventLogRecord``...), whose fields sit in ``adapted_properties`` (alias and note properties that
  PowerShell adds still land in ``extended_properties``);
* a plain mapping, which is what tests and the lab hand over.

pypsrp is never imported here: the objects are read by duck typing, so the parsers stay importable and
testable without a transport, and a future client that yields the same attributes works unchanged.

PowerShell property names are case-insensitive, so every lookup here is too. DateTime, TimeSpan and
Decimal values arrive as strings and enums arrive either as an object whose ``to_string`` is the member
name or as the bare integer, which is why the coercion helpers accept all of those forms.
"""

from __future__ import annotations

import base64
import enum
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, NoReturn, TypeGuard, TypeVar

from ocsps.errors import OcspsError

__all__ = [
    "EMPTY",
    "CoercionError",
    "FrozenMap",
    "JsonValue",
    "Names",
    "ParseError",
    "PropertyReader",
    "bounded",
    "enum_token",
    "freeze",
    "host_name",
    "jsonable",
    "known_names",
    "no_extra",
    "prop",
    "property_map",
    "to_bool",
    "to_datetime",
    "to_int",
    "to_multiline",
    "to_text",
]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

T = TypeVar("T")



class FrozenMap(Mapping[str, object]):
    """A read-only mapping for the ``extra`` fields of frozen results.

    Not a ``dict``: the JSON encoder hands every non-dict mapping of server data to :func:`jsonable`,
    which bounds the depth and cycles a hostile server can send. ``dataclasses.asdict``,
    ``copy.deepcopy`` and ``pickle`` handle it (and every result and report that holds one); every way to
    change it raises.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, object] | None = None) -> None:
        self._data: dict[str, object] = dict(data or {})

    def __getitem__(self, name: str) -> object:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a result's extra fields are read-only")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[FrozenMap], tuple[dict[str, object]]]:
        return (FrozenMap, (dict(self._data),))


EMPTY: Final[Mapping[str, object]] = FrozenMap()


def no_extra() -> Mapping[str, object]:
    """Default factory for ``extra`` fields (a shared read-only empty mapping)."""
    return EMPTY


_PARSE_HINT = "the server returned an object of an unexpected shape; check the template and product version"


class ParseError(OcspsError):
    """An object from the server lacks a field we need, or holds a value of the wrong kind.

    It names the result kind and the PowerShell property so that whoever maintains the templates can
    see at once which side is out of step; returning the raw object instead would only move the failure
    to a place where nobody can tell what went wrong.
    """

    exit_code = 1

    def __init__(self, kind: str, field: str | None, problem: str, *, host: str | None = None) -> None:
        self.kind = kind
        self.field = field
        self.problem = problem
        where = f"property {field!r} " if field else ""
        super().__init__(
            f"cannot read {kind}: {where}{problem}",
            host=host,
            hint=_PARSE_HINT,
        )


class CoercionError(ValueError):
    """A value could not be coerced; :class:`PropertyReader` reports it as a ParseError naming the field."""


def property_map(obj: object) -> dict[str, tuple[str, object]] | None:
    """Return ``{casefolded name: (original name, value)}`` for an object, or None if it has no properties.

    Extended properties override adapted ones because PowerShell resolves a name the same way: an
    alias or note property added by the type system shadows the .NET member of the same name.
    """
    result: dict[str, tuple[str, object]] = {}
    if _is_mapping(obj):
        _fold_into(result, obj)
        return result
    adapted = getattr(obj, "adapted_properties", None)
    extended = getattr(obj, "extended_properties", None)
    adapted_ok = _is_mapping(adapted)
    extended_ok = _is_mapping(extended)
    if not adapted_ok and not extended_ok:
        return None
    if adapted_ok and adapted:
        _fold_into(result, adapted)
    if extended_ok and extended:
        _fold_into(result, extended)
    return result


def _fold_into(result: dict[str, tuple[str, object]], source: Mapping[object, object]) -> None:
    for key, value in source.items():
        name = key if type(key) is str else str(key)
        result[name.casefold()] = (name, value)


_MAPPING_TYPES: dict[type, bool] = {dict: True, type(None): False}


def _is_mapping(value: object) -> TypeGuard[Mapping[object, object]]:
    """``isinstance(value, Mapping)``, remembered per type: the ABC check cost more than folding the names."""
    kind = type(value)
    known = _MAPPING_TYPES.get(kind)
    if known is None:
        known = isinstance(value, Mapping)
        if len(_MAPPING_TYPES) < 256:
            _MAPPING_TYPES[kind] = known
    return known


def prop(obj: object, name: str, default: object = None) -> object:
    """Read one property by name, case-insensitively, from extended then adapted properties or a mapping.

    Returns ``default`` when the object has no such property (or is not an object at all), so callers that
    only peek never need a try block.
    """
    props = property_map(obj)
    if props is None:
        return default
    found = props.get(name.casefold())
    return default if found is None else found[1]


def _to_string_of(value: object) -> str | None:
    text = getattr(value, "to_string", None)
    return text if isinstance(text, str) else None


def _is_psobject(value: object) -> bool:
    return hasattr(value, "adapted_properties") or hasattr(value, "extended_properties")


def enum_token(value: object) -> str | int | None:
    """Reduce an enum-like value to its member name or number.

    A serialized enum comes back as an object whose ``to_string`` is the member name and whose
    ``property_sets`` holds the number; a template may also send the name as text or the bare number.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise CoercionError(f"is a boolean ({value}), expected an enum name or number")
    if isinstance(value, int):
        return _check_int_size(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, enum.Enum):
        inner = value.value
        return inner if isinstance(inner, int | str) else value.name
    text = _to_string_of(value)
    if text is not None:
        return text.strip()
    sets = getattr(value, "property_sets", None)
    if isinstance(sets, list) and len(sets) == 1 and isinstance(sets[0], int | str):
        first = sets[0]
        return _check_int_size(first) if isinstance(first, int) else first.strip()
    raise CoercionError(f"has type {type(value).__name__}, expected an enum name or number")


MAX_DIGITS: Final = 4300
"""Longest integer text read as a number: Python's own limit for int/str conversion (``sys.int_info``).

No field of these cmdlets comes near it; a server that sends more is malformed, and converting such text
raises a bare ``ValueError`` that would surface as an internal error instead of a ParseError naming the
field."""

MAX_NESTING: Final = 16
"""Lists nested deeper than this (or a list that contains itself) are malformed, not text to join."""


def _check_int_size(value: int) -> int:
    if value.bit_length() > MAX_DIGITS * 3:  # about 900 digits per 3,000 bits: well inside the limit
        raise CoercionError(f"is an integer of about {int(value.bit_length() * 0.30103)} digits, too long")
    return value


def _check_digits(text: str) -> None:
    digits = len(text.lstrip("+-"))
    if digits > MAX_DIGITS:
        raise CoercionError(f"is a number of {digits} digits, more than the {MAX_DIGITS} any field can hold")


def to_text(value: object, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> str | None:
    """Render a scalar as text the way PowerShell would show it; None stays None.

    Lists are joined with ", " because that is how a multi-valued property reads in the console, and an
    object without a ToString is rejected rather than turned into an unhelpful type name. A list nested
    deeper than ``MAX_NESTING`` or containing itself is refused (it would otherwise exhaust the stack).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(_check_int_size(value))
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() > MAX_DIGITS:
        raise CoercionError(f"is a number of {value.adjusted() + 1} digits, too long")
    if isinstance(value, float | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list | tuple):
        if _depth >= MAX_NESTING or id(value) in _seen:
            raise CoercionError("is a list nested too deeply (or containing itself), expected text")
        seen = _seen | {id(value)}
        parts = [to_text(item, _depth + 1, seen) for item in value]
        return ", ".join(part for part in parts if part is not None)
    if isinstance(value, bytes):
        raise CoercionError("is binary data, expected text")
    text = _to_string_of(value)
    if text is not None:
        return text
    if _is_psobject(value):
        raise CoercionError("is an object without a text form, expected text")
    return str(value)


def to_multiline(value: object) -> str | None:
    """Like :func:`to_text`, but a list of lines (native command output) is joined with newlines."""
    if isinstance(value, list | tuple):
        lines = [to_text(item, 1, frozenset({id(value)})) for item in value]
        return "\n".join(line if line is not None else "" for line in lines)
    return to_text(value)


_INT_RE = re.compile(r"[+-]?\d+")
_HEX_RE = re.compile(r"[+-]?0[xX][0-9a-fA-F]+")


def to_int(value: object) -> int | None:
    """Coerce to int; accepts ints, integral floats, decimal or 0x-hex text and numeric enums."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CoercionError(f"is a boolean ({value}), expected an integer")
    if isinstance(value, int):
        return _check_int_size(value)
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() > MAX_DIGITS:
        raise CoercionError(f"is a number of {value.adjusted() + 1} digits, expected an integer")
    if isinstance(value, float | Decimal):
        if math.isfinite(value) and value == int(value):
            return int(value)
        raise CoercionError(f"has value {_shown(value)}, expected an integer")
    if isinstance(value, str):
        text = value.strip()
        if _INT_RE.fullmatch(text):
            _check_digits(text)
            return int(text)
        if _HEX_RE.fullmatch(text):
            _check_digits(text[2:] if text[:1] not in "+-" else text[3:])
            return _check_int_size(int(text, 16))
        raise CoercionError(f"has value {_shown(value)}, expected an integer")
    token = enum_token(value)
    if isinstance(token, int):
        return _check_int_size(token)
    raise CoercionError(f"has value {_shown(token)}, expected an integer")


def _shown(value: object) -> str:
    """A value quoted in an error: at most 60 characters, so a megabyte answer is not echoed whole."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 10_000 else "(a huge integer)"
    return text if len(text) <= 60 else text[:57] + "..."


_TRUE: Final = frozenset({"true", "$true", "1", "yes", "y", "on"})
_FALSE: Final = frozenset({"false", "$false", "0", "no", "n", "off"})


def to_bool(value: object) -> bool | None:
    """Coerce to bool; accepts real booleans, 0/1 and the usual words, and refuses anything else.

    Refusing is deliberate: a preflight check that reads "maybe" as False would report a healthy
    server as broken, and reading it as True would hide a broken one.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise CoercionError(f"has value {value!r}, expected True or False")
    text = _to_string_of(value)
    if text is not None:
        return to_bool(text)
    raise CoercionError(f"has type {type(value).__name__}, expected True or False")


_ISO_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_FRACTION_RE = re.compile(r"([.,])(\d+)")
_MSJSON_RE = re.compile(r"\\?/Date\((-?\d+)(?:[+-]\d{4})?\)\\?/")


def to_datetime(value: object) -> tuple[datetime, bool] | None:
    """Parse a point in time and return ``(aware datetime, assumed_utc)``.

    Accepted: ``datetime`` objects, ISO 8601 text as PowerShell's round-trip format ``"o"`` writes it
    (``2024-05-01T10:00:00.1234567+02:00`` or ``...Z``), which is also the form CLIXML uses for
    ``System.DateTime`` and therefore what pypsrp hands over, and the ``/Date(ms)/`` form. A value without
    an offset (DateTimeKind Unspecified) is taken as UTC and flagged, because comparing naive and aware
    times would otherwise fail later, far from the cause. Culture-formatted text such as
    ``05/01/2024 10:00`` is refused: its day/month order cannot be known.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=UTC), True
        return value, False
    text = to_text(value) if not isinstance(value, str) else value
    if text is None:
        return None
    text = text.strip()
    if _ISO_RE.fullmatch(text):
        # fromisoformat in 3.11 copes with 7-digit .NET fractions, but not with a comma or a space
        # before the offset; normalise those first.
        norm = _FRACTION_RE.sub(lambda m: "." + m.group(2)[:6], text, count=1)
        norm = re.sub(r"\s+(?=[Zz+-]\S*$)", "", norm)
        norm = norm[:-1] + "+00:00" if norm[-1:] in ("Z", "z") else norm
        try:
            parsed = datetime.fromisoformat(norm)
        except ValueError as exc:
            raise CoercionError(f"has value {text!r}, which is not a valid date and time") from exc
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC), True
        return parsed, False
    match = _MSJSON_RE.fullmatch(text)
    if match:
        _check_digits(match.group(1))
        millis = int(match.group(1))
        try:
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis), False
        except OverflowError as exc:
            raise CoercionError(f"has value {text!r}, which is out of range") from exc
    raise CoercionError(f"has value {text!r}, expected an ISO 8601 date and time")


def jsonable(value: object, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> JsonValue:
    """Turn any parsed or raw value into something ``json.dumps`` accepts, without losing meaning.

    Objects from pypsrp can reference each other (CLIXML ``Ref``), so recursion is bounded by depth and
    by identity; past the bound an object is shown by its text form.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_DIGITS * 3:
        # json.dumps cannot write it (and str() refuses past 4,300 digits): say what it was instead
        return f"(an integer of about {int(value.bit_length() * 0.30103)} digits)"
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value, _depth + 1, _seen)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID | timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if id(value) in _seen or _depth > 8:
        return _to_string_of(value) or type(value).__name__
    seen = _seen | {id(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1, seen) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item, _depth + 1, seen) for item in value]
    props = property_map(value)
    if props:
        return {name: jsonable(v, _depth + 1, seen) for name, v in props.values()}
    text = _to_string_of(value)
    if text is not None:
        return text
    sets = getattr(value, "property_sets", None)
    if isinstance(sets, list) and sets:
        return jsonable(sets[0] if len(sets) == 1 else sets, _depth + 1, seen)
    return str(value)


def bounded(value: object, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> object:
    """``value`` itself, once its lists and mappings are known to nest at most ``MAX_NESTING`` deep.

    A value kept as received (a WMI property can be an array) is written to JSON field by field later; a
    list nested past any real property type, or one containing itself, is malformed and refused here,
    where the error can still name the property.
    """
    if isinstance(value, list | tuple | set | frozenset | Mapping):
        if _depth >= MAX_NESTING or id(value) in _seen:
            raise CoercionError("is nested too deeply (or contains itself)")
        seen = _seen | {id(value)}
        for item in value.values() if isinstance(value, Mapping) else value:
            bounded(item, _depth + 1, seen)
    return value


def freeze(mapping: Mapping[str, object] | None) -> Mapping[str, object]:
    """A read-only copy, so that a frozen result cannot be changed through its ``extra`` mapping."""
    if not mapping:
        return EMPTY
    return FrozenMap(mapping)


class Names:
    """One property's aliases, case-folded once when a parser module is imported.

    Parsers that run for every object a server sends (statuses, events) look properties up through these
    with :meth:`PropertyReader.find` and friends, which neither fold names nor record them per lookup:
    the reader is told every name the parser can ask for up front (see :func:`known_names`).
    """

    __slots__ = ("keys", "names")

    def __init__(self, *names: str) -> None:
        if not names:
            raise ValueError("a property needs at least one name")
        self.names: tuple[str, ...] = names
        self.keys: tuple[str, ...] = tuple(name.casefold() for name in names)

    def __repr__(self) -> str:
        return f"Names{self.names!r}"


def known_names(*groups: Names) -> frozenset[str]:
    """Every case-folded alias in ``groups``: the names a parser always reads (its reader's ``known``)."""
    return frozenset(key for group in groups for key in group.keys)


class PropertyReader:
    """Reads the properties of one object for one parser and remembers which ones it used.

    Every name a parser asks for, including the aliases it did not end up using, counts as known; the
    rest is handed back by :meth:`extra`, so fields a newer product adds are kept rather than dropped.
    A parser that always asks for the same names may pass them as ``known`` (from :func:`known_names`):
    they then count as asked from the start, as if every lookup had been made, and lookups through
    :class:`Names` skip the bookkeeping.
    """

    __slots__ = ("_known", "_obj", "_types", "_used", "kind", "props")

    def __init__(self, obj: object, kind: str, known: frozenset[str] | None = None) -> None:
        props = property_map(obj)
        if props is None:
            got = type(obj).__name__
            raise ParseError(kind, None, f"expected a PowerShell object or a mapping, got {got}")
        self.kind = kind
        self.props: dict[str, tuple[str, object]] = props
        self._obj = obj
        self._types: tuple[str, ...] | None = None
        self._known = known
        self._used: set[str] = set()

    @property
    def types(self) -> tuple[str, ...]:
        """The object's .NET type names, most derived first (empty for a mapping)."""
        types = self._types
        if types is None:
            raw_types = getattr(self._obj, "types", None)
            types = tuple(map(str, raw_types)) if isinstance(raw_types, list | tuple) else ()
            self._types = types
        return types

    def lookup(self, *names: str) -> tuple[str, object] | None:
        """Return ``(matched name, value)`` for the first alias present with a non-null value.

        If the aliases that are present are all null, the first of them is returned with None, so a
        caller can tell "sent as null" from "not sent".
        """
        folded = _folded(names)
        self._used.update(folded)
        props = self.props
        first_null: tuple[str, object] | None = None
        for key in folded:
            found = props.get(key)
            if found is None:
                continue
            if found[1] is not None:
                return found
            if first_null is None:
                first_null = found
        return first_null

    def find(self, names: Names) -> tuple[str, object] | None:
        """:meth:`lookup` for aliases folded in advance."""
        if self._known is None:
            self._used.update(names.keys)
        props = self.props
        first_null: tuple[str, object] | None = None
        for key in names.keys:
            found = props.get(key)
            if found is None:
                continue
            if found[1] is not None:
                return found
            if first_null is None:
                first_null = found
        return first_null

    def find_text(self, names: Names, *, required: bool = False) -> str | None:
        """:meth:`text` for aliases folded in advance."""
        found = self.find(names)
        if found is not None and type(found[1]) is str:
            return found[1]  # the common case, without the conversion's call
        return self._coerce_found(names, found, required, to_text)

    def find_required_text(self, names: Names) -> str:
        """:meth:`required_text` for aliases folded in advance."""
        text = self.find_text(names, required=True)
        if text is None or not (text := text.strip()):
            raise self.fail(names.names, "is empty")
        return text

    def find_integer(self, names: Names, *, required: bool = False) -> int | None:
        """:meth:`integer` for aliases folded in advance."""
        return self._coerce_found(names, self.find(names), required, to_int)

    def find_moment(self, names: Names, *, required: bool = False) -> tuple[datetime, bool] | None:
        """:meth:`moment` for aliases folded in advance."""
        return self._coerce_found(names, self.find(names), required, to_datetime)

    def _coerce_found(
        self,
        names: Names,
        found: tuple[str, object] | None,
        required: bool,
        convert: Callable[[object], T | None],
    ) -> T | None:
        if found is None:
            if required:
                raise self.fail(names.names, "is missing")
            return None
        name, value = found
        if value is None:
            if required:
                raise self.fail([name], "is null")
            return None
        return self.convert(name, value, convert)

    def has(self, *names: str) -> bool:
        return any(key in self.props for key in _folded(names))

    def fail(self, names: Iterable[str], problem: str) -> ParseError:
        names = list(names)
        field = names[0] if names else None
        if len(names) > 1:
            problem = f"(or {', '.join(names[1:])}) {problem}"
        return ParseError(self.kind, field, problem)

    def _coerce(
        self, names: tuple[str, ...], required: bool, convert: Callable[[object], T | None]
    ) -> T | None:
        found = self.lookup(*names)
        if found is None:
            if required:
                raise self.fail(names, "is missing")
            return None
        name, value = found
        if value is None:
            if required:
                raise self.fail([name], "is null")
            return None
        return self.convert(name, value, convert)

    def text(self, *names: str, required: bool = False) -> str | None:
        return self._coerce(names, required, to_text)

    def required_text(self, *names: str) -> str:
        """Non-empty text, stripped; missing, null or blank is a ParseError."""
        text = self.text(*names, required=True)
        if text is None or not text.strip():
            raise self.fail(names, "is empty")
        return text.strip()

    def multiline(self, *names: str, required: bool = False) -> str | None:
        return self._coerce(names, required, to_multiline)

    def integer(self, *names: str, required: bool = False) -> int | None:
        return self._coerce(names, required, to_int)

    def boolean(self, *names: str, required: bool = False) -> bool | None:
        return self._coerce(names, required, to_bool)

    def moment(self, *names: str, required: bool = False) -> tuple[datetime, bool] | None:
        return self._coerce(names, required, to_datetime)

    def raw(self, *names: str, required: bool = False) -> object:
        """The value as received; ``required`` here means present (null is a legitimate value)."""
        found = self.lookup(*names)
        if found is None:
            if required:
                raise self.fail(names, "is missing")
            return None
        return found[1]

    def convert(self, name: str, value: object, convert: Callable[[object], T]) -> T:
        """Apply a coercion to an already looked-up value, reporting failures against ``name``."""
        try:
            return convert(value)
        except CoercionError as exc:
            raise ParseError(self.kind, name, str(exc)) from None
        except (ValueError, OverflowError, RecursionError) as exc:  # a malformed value no rule foresaw
            raise ParseError(self.kind, name, f"cannot be read ({exc.__class__.__name__})") from None

    def extra(self) -> Mapping[str, object]:
        """The properties no lookup asked for, worked out only when someone reads them."""
        props = self.props
        used: frozenset[str] | set[str] = self._used
        known = self._known
        if known is not None:
            used = known.union(used) if used else known
        if len(props) <= len(used) and props.keys() <= used:
            return EMPTY
        return Leftovers(props, frozenset(used))


class Leftovers(Mapping[str, object]):
    """A read-only mapping of the properties a parser did not read, built on first use.

    Most results are never asked for their extra properties; building each one's mapping up front was a
    fifth of the parse time of a status object.
    """

    __slots__ = ("_built", "_props", "_used")

    def __init__(self, props: Mapping[str, tuple[str, object]], used: frozenset[str]) -> None:
        self._props: Mapping[str, tuple[str, object]] | None = props
        self._used = used
        self._built: dict[str, object] | None = None

    def _mapping(self) -> dict[str, object]:
        built = self._built
        if built is None:
            props = self._props
            if props is None:  # another thread built it meanwhile (it sets _built before dropping _props)
                return self._built or {}
            built = {name: value for key, (name, value) in props.items() if key not in self._used}
            self._built = built
            self._props = None
        return built

    def __getitem__(self, name: str) -> object:
        return self._mapping()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._mapping() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._mapping()!r})"


_FOLDED: dict[tuple[str, ...], tuple[str, ...]] = {}
_FOLDED_LIMIT = 4096


def _folded(names: tuple[str, ...]) -> tuple[str, ...]:
    """Case-folded aliases, folded once per distinct alias list (parsers ask the same lists every time)."""
    folded = _FOLDED.get(names)
    if folded is None:
        folded = tuple(name.casefold() for name in names)
        if len(_FOLDED) < _FOLDED_LIMIT:
            _FOLDED[names] = folded
    return folded


def host_name(text: str | None) -> str | None:
    """Normalise a computer name; "." and "" (the local machine, as .NET writes it) carry no name."""
    if text is None:
        return None
    text = text.strip()
    return None if text in ("", ".") else text
