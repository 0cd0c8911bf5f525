"""One encoder for every JSON document ocsps writes: ``--json`` output, saved plans and reports.

A document's shape is declared on its type, not in a method: a dataclass is written field by field (its
fields are its JSON keys), a ``msgspec.Struct`` the same way with its ``rename`` and ``omit_defaults``
options, and a value the document shows but the object derives (a verdict, a total) is a field computed
when the object is built. :func:`to_builtins` turns any such object into plain dicts, lists and scalars
with msgspec, so every document follows the same rules:

* enums give their value, tuples and sets give lists, ``Path`` gives its text;
* datetimes and dates give ISO 8601 text as ``isoformat()`` writes it (``+00:00``, not ``Z``), and a
  ``timedelta`` its ``str()``: the documents keep the text they have always had;
* what came from a server as it was sent (the ``extra`` mappings of parsed results, PowerShell objects)
  goes through :func:`ocsps.results.base.jsonable`, which bounds depth and cycles and shows numbers no
  JSON reader can hold as text;
* a float that JSON cannot write (NaN, infinity) gives its text, as does an integer past Python's
  int-to-text limit.

msgspec is imported on first use, so a command that prints no JSON never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import PurePath
from typing import Any

from ocsps.results.base import MAX_DIGITS, jsonable

__all__ = ["to_builtins"]

_KEPT = (datetime, date, time, timedelta)
"""Types msgspec would write in its own format; they are passed through and written by :func:`_finish`."""


_POWERSHELL_MEMBERS = ("adapted_properties", "extended_properties", "to_string", "property_sets")
"""What a deserialized PowerShell object carries (read by duck typing, as the parsers do)."""


def to_builtins(obj: object) -> Any:
    """The JSON form of ``obj``: dicts, lists, text, numbers, booleans and None only."""
    import msgspec

    return _finish(msgspec.to_builtins(obj, builtin_types=_KEPT, enc_hook=_foreign, str_keys=True))


def _foreign(value: object) -> object:
    """Types msgspec does not know: paths, read-only mappings of server data, PowerShell objects."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping) or any(hasattr(value, name) for name in _POWERSHELL_MEMBERS):
        return jsonable(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _finish(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finish(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finish(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_DIGITS * 3:
            return jsonable(value)
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return value
