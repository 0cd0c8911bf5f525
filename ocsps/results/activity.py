"""ActivityLevel: the load counters Get-CsWindowsService reports for each Lync / Skype for Business service.

The cmdlet renders them as one string of comma-separated ``Counter Name=value`` pairs, for example
``Concurrent Calls=0`` (RTCCAA) or ``Incoming Requests per Second=0,Messages in Server=0,...`` (RTCSRV).
Counter names differ per service and product version and are not documented, so the parser is generic:
every pair is kept, in order, under the name the server used.

Parsing rules, chosen so that a drain decision never rests on a misread value:

* Pairs are separated by commas or line breaks; blank fragments (doubled or trailing commas) are ignored.
* Spaces around names and values are dropped; runs of spaces inside a name become one space.
* A value that is a plain integer becomes ``int`` (more than 20 digits, beyond any 64-bit counter, is a
  ``ParseError`` naming the counter); one with a ``.`` decimal point (or an exponent)
  becomes ``float``; anything else, including the empty string, ``NaN`` and ``1 234``, stays text.
* A comma is never read as a decimal separator: in this format it separates pairs, and a server that
  formats ``0,5`` with its culture cannot be told from one that writes a thousands separator (``1,234``).
  The digits after such a comma end up in ``unparsed``, which blocks :attr:`ActivityLevel.is_idle`.
* A fragment without ``=`` or with an empty name is kept in ``unparsed``, never dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ocsps.results.base import CoercionError, ParseError, to_text

__all__ = ["ActivityLevel", "Counter", "CounterValue", "parse_activity_level"]

CounterValue = int | float | str

_SPLIT_RE = re.compile(r"[,\r\n]")
_SPACES_RE = re.compile(r"\s+")
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def _key(name: str) -> str:
    return _SPACES_RE.sub(" ", name).strip().casefold()


@dataclass(frozen=True)
class Counter:
    """One ``name=value`` pair; ``value`` is int, float or (when it is not a number) the text as sent."""

    name: str
    value: CounterValue

    @property
    def is_numeric(self) -> bool:
        return not isinstance(self.value, str)


@dataclass(frozen=True)
class ActivityLevel:
    """The parsed ActivityLevel string, with the raw text kept for display and diagnosis.

    ``total`` and ``is_idle`` are worked out when the object is built (it is frozen), so that the
    ``--json`` document shows them like any other field.
    """

    raw: str = ""
    counters: tuple[Counter, ...] = ()
    unparsed: tuple[str, ...] = ()
    total: int | float = field(init=False, compare=False, repr=False)
    """Sum of the numeric counters (an int when all of them are ints); text counters are skipped."""
    is_idle: bool = field(init=False, compare=False, repr=False)
    """True only on positive evidence that the service carries no load.

    That means at least one counter, every counter numeric and zero, and no fragment left unread. A
    counter we could not read as a number is not evidence of zero, and an empty string (stopped
    service, or the counters were excluded) is no evidence at all; a drain that trusted either would
    cut calls that are still up.
    """

    def __post_init__(self) -> None:
        # One pass over the counters: this runs for every status object a server sends.
        numbers: list[int | float] = []
        only_ints = True
        idle = bool(self.counters) and not self.unparsed
        for counter in self.counters:
            value = counter.value
            if isinstance(value, str):
                idle = False
                continue
            numbers.append(value)
            if not isinstance(value, int):
                only_ints = False
            if value != 0:
                idle = False
        total = sum(numbers) if only_ints else math.fsum(numbers)
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "is_idle", idle)

    def __iter__(self) -> Iterator[Counter]:
        return iter(self.counters)

    def __len__(self) -> int:
        return len(self.counters)

    def get(self, name: str, default: CounterValue | None = None) -> CounterValue | None:
        """Value of the first counter with this name (case- and spacing-insensitive)."""
        wanted = _key(name)
        for counter in self.counters:
            if _key(counter.name) == wanted:
                return counter.value
        return default

    def as_dict(self) -> dict[str, CounterValue]:
        """Counters by name; if the server repeated a name, the first occurrence wins, as in :meth:`get`."""
        result: dict[str, CounterValue] = {}
        for counter in self.counters:
            result.setdefault(counter.name, counter.value)
        return result

    @property
    def is_empty(self) -> bool:
        return not self.counters and not self.unparsed


_MAX_COUNTER_DIGITS = 20  # a performance counter is at most 64 bits: 18446744073709551615


def _value(name: str, text: str) -> CounterValue:
    if text.isdecimal() or _INT_RE.fullmatch(text):  # isdecimal: the digits \d matches, without a sign
        digits = len(text.lstrip("+-"))
        if digits > _MAX_COUNTER_DIGITS:
            raise ParseError(
                "ActivityLevel", name, f"has a value of {digits} digits; no counter holds more than 64 bits"
            )
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def parse_activity_level(value: object) -> ActivityLevel:
    """Parse an ActivityLevel value; None and empty text give an empty result.

    ``value`` is normally a string, but a list of strings (one pair each) and an object whose
    ``to_string`` is the text are accepted too, because the cmdlet's property type is not documented.
    This function never raises for ordinary text: everything it cannot read lands in ``unparsed``. A value
    with no text form at all (binary data, an object without ToString, a list nested too deeply or
    containing itself) or a counter beyond 64 bits raises :class:`ParseError`.
    """
    if isinstance(value, list | tuple):
        parts = [_text_or_empty(item) for item in value]
        raw = ",".join(part for part in parts if part)
    else:
        raw = _text_or_empty(value)
    counters: list[Counter] = []
    unparsed: list[str] = []
    fragments = raw.split(",") if "\r" not in raw and "\n" not in raw else _SPLIT_RE.split(raw)
    for fragment in fragments:
        piece = fragment.strip()
        if not piece:
            continue
        name, sep, rest = piece.partition("=")
        if name.isascii() and name.isprintable() and "  " not in name:
            name = name.strip()  # no run of spaces and no other white space inside: nothing to collapse
        else:
            name = _SPACES_RE.sub(" ", name).strip()
        if not sep or not name:
            unparsed.append(piece)
            continue
        counters.append(Counter(name, _value(name, rest.strip())))
    return ActivityLevel(raw=raw, counters=tuple(counters), unparsed=tuple(unparsed))


def _text_or_empty(value: object) -> str:
    try:
        return to_text(value) or ""
    except CoercionError as exc:
        raise ParseError("ActivityLevel", None, f"value {exc}") from None
