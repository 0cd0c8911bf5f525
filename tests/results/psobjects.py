"""Build real pypsrp objects from the JSON case descriptions in tests/data/parsers.

A case input is one of:

* ``{"shape": "adapted" | "extended" | "dict", "types": [...], "properties": {...}, "to_string": "..."}``;
  with ``"adapted"`` an optional ``"extended_properties"`` mapping adds the alias and note properties
  PowerShell attaches to .NET objects (ServiceController's ``Name``, for instance);
* ``{"clixml": "<Obj ...>...</Obj>"}``: CLIXML deserialized by pypsrp's own Serializer, the exact path
  objects take when they come off the wire;
* ``{"text": ...}``: a bare value, for parsers that take text (ActivityLevel).

Property values are JSON, plus these markers: ``{"$enum": "Running", "value": 4}`` (an enum as pypsrp
returns it), ``{"$object": <input>}`` (a nested object), ``{"$bytes_b64": "..."}``,
``{"$file": "lcscmd_logs/x.xml", "encoding": "utf-8"}`` (file text), ``{"$bytes_file": "..."}``, and for
malformed answers ``{"$repeat": "9", "times": 5000}`` (long text), ``{"$big_int": 5000}`` (an int of that many
digits), ``{"$nested": 100000, "leaf": "x"}`` (nested lists) and ``{"$self_list": ["a"]}`` (a list that
contains itself).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from pypsrp.complex_objects import GenericComplexObject
from pypsrp.serializer import Serializer

DATA = Path(__file__).resolve().parent.parent / "data"

ENUM_TYPES = ["System.Enum", "System.ValueType", "System.Object"]
CUSTOM_TYPES = ["System.Management.Automation.PSCustomObject", "System.Object"]


def resolve(value: Any) -> Any:
    """Replace the markers in a JSON value by the Python objects they stand for."""
    if isinstance(value, list):
        return [resolve(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$enum" in value:
        obj = GenericComplexObject()
        obj.to_string = value["$enum"]
        obj.types = list(value.get("types", ENUM_TYPES))
        if "value" in value:
            obj.property_sets = [value["value"]]
        return obj
    if "$object" in value:
        return build(value["$object"])
    if "$bytes_b64" in value:
        return base64.b64decode(value["$bytes_b64"])
    if "$file" in value:
        return (
            (DATA / value["$file"]).read_bytes().decode(value.get("encoding", "utf-8")).removeprefix("\ufeff")
        )
    if "$bytes_file" in value:
        return (DATA / value["$bytes_file"]).read_bytes()
    if (
        "$repeat" in value
    ):  # long text without a long file: {"$repeat": "9", "times": 5000, "before": "", "after": ""}
        return value.get("before", "") + value["$repeat"] * int(value["times"]) + value.get("after", "")
    if "$big_int" in value:  # an int of that many digits (JSON itself cannot carry one past 4,300)
        return 10 ** int(value["$big_int"]) - 1
    if "$nested" in value:  # a list nested that deep around "leaf"
        nested: Any = resolve(value.get("leaf"))
        for _ in range(int(value["$nested"])):
            nested = [nested]
        return nested
    if "$self_list" in value:  # a list that contains itself after the given items
        items: list[Any] = [resolve(item) for item in value["$self_list"]]
        items.append(items)
        return items
    return {key: resolve(item) for key, item in value.items()}


def build(spec: dict[str, Any]) -> Any:
    """Turn one case input into the object a parser receives."""
    if "clixml" in spec:
        return Serializer().deserialize(spec["clixml"])
    if "text" in spec:
        return resolve(spec["text"])
    shape = spec["shape"]
    properties = {name: resolve(value) for name, value in spec.get("properties", {}).items()}
    if shape == "dict":
        return properties
    obj = GenericComplexObject()
    obj.to_string = spec.get("to_string")
    if shape == "extended":
        obj.types = list(spec.get("types", CUSTOM_TYPES))
        obj.extended_properties = properties
    elif shape == "adapted":
        obj.types = list(spec.get("types", ["System.Object"]))
        obj.adapted_properties = properties
        obj.extended_properties = {
            name: resolve(value) for name, value in spec.get("extended_properties", {}).items()
        }
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return obj
