"""Server-side twins of tests/results/psobjects.py: parser case inputs as psrpcore objects.

A parser case describes an object as pypsrp hands it over. Built here with psrpcore and written by the
lab's pipeline, the same object is serialized to CLIXML, fragmented into PSRP messages, carried over
WSMan and deserialized by pypsrp: the parser then sees exactly what it would see from a real server.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from psrpcore.types import PSEnumBase, PSObject, PSType

from ocsps.lab.wsman import ps_object
from tests.results.psobjects import CUSTOM_TYPES, DATA, ENUM_TYPES


def server_value(value: Any) -> Any:
    """A JSON case value (markers included) as the object a PowerShell host would serialize."""
    if isinstance(value, list):
        return [server_value(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$enum" in value:
        names = [name for name in value.get("types", ENUM_TYPES) if name not in ENUM_TYPES]
        if "value" in value:
            return _enum_type(names[0] if names else "Ocsps.Wire.Enum", value["$enum"], int(value["value"]))(
                int(value["value"])
            )
        bare = PSObject()
        bare.PSObject.type_names = list(value.get("types", ENUM_TYPES))
        bare.PSObject.to_string = value["$enum"]
        return bare
    if "$object" in value:
        return server_object(value["$object"])
    if "$bytes_b64" in value:
        return base64.b64decode(value["$bytes_b64"])
    if "$file" in value:
        text = (DATA / value["$file"]).read_bytes().decode(value.get("encoding", "utf-8"))
        return text.removeprefix("\ufeff")
    if "$bytes_file" in value:
        return (DATA / value["$bytes_file"]).read_bytes()
    return {key: server_value(item) for key, item in value.items()}


@functools.cache
def _enum_type(type_name: str, member: str, number: int) -> Any:
    """A .NET enum type with one member: psrpcore serializes it with its type names and ToString, as
    PowerShell does (a plain integer with extra type names would travel as a bare ``<I32>``)."""
    meta: Any = type(PSEnumBase)
    namespace = meta.__prepare__(type_name, (PSEnumBase,))
    namespace[member] = number
    created = meta(type_name.rsplit(".", 1)[-1], (PSEnumBase,), namespace)
    return PSType([type_name], rehydrate=False)(created)


def server_object(spec: dict[str, Any]) -> PSObject:
    """A case input of shape ``adapted`` or ``extended`` as a psrpcore object."""
    properties = {name: server_value(value) for name, value in spec.get("properties", {}).items()}
    if spec["shape"] == "extended":
        types = list(spec.get("types", CUSTOM_TYPES))
        return ps_object(types, extended=properties, to_string=spec.get("to_string"))
    if spec["shape"] == "adapted":
        extended = {name: server_value(value) for name, value in spec.get("extended_properties", {}).items()}
        types = list(spec.get("types", ["System.Object"]))
        return ps_object(types, adapted=properties, extended=extended, to_string=spec.get("to_string"))
    raise ValueError(f"shape {spec['shape']!r} does not travel as an object")
