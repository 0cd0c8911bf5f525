"""5. Parsing: ocsps's result parsers against pypsrp's own deserialisation of the same objects.

Objects are CLIXML exactly as they travel in PSRP output messages: serialized by psrpcore (the lab's
server side) from the shapes servers send, and deserialized by pypsrp's ``Serializer``, the client's path.
Four shapes, ``count / 2`` of each kind:

* service, template: the PSCustomObject ocsps's status template emits (ActivityLevel text included);
* service, NTService: ``Get-CsWindowsService``'s object, adapted properties;
* event, template: the PSCustomObject ocsps's event template emits (TimeCreated as ISO text);
* event, EventLogRecord: ``Get-WinEvent``'s object (DateTime, Byte, Int64 values, Message under MS).

The figure is parse time over deserialisation time: what ocsps adds on top of what pypsrp must do anyway.
"""

from __future__ import annotations

import gc
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bench.common import Config, log, summary

NTSERVICE = "Microsoft.Rtc.Management.Deployment.Core.NTService"
EVENT_TYPES = (
    "System.Diagnostics.Eventing.Reader.EventLogRecord",
    "System.Diagnostics.Eventing.Reader.EventRecord",
)
EVENT_IDS = (25049, 25050, 25003, 32178, 14347, 12289)
EVENT_LEVELS = ((4, "Information"), (3, "Warning"), (2, "Error"))


def _services() -> list[tuple[str, Any]]:
    """(host, simulated service) pairs of the lab's default estate, in a stable order."""
    from ocsps.lab.topology import load_topology

    return [(server.fqdn, svc) for server in load_topology().servers for svc in server.services.values()]


def _template_service(host: str, svc: Any, index: int) -> Any:
    from psrpcore.types import PSCustomObject, add_note_property

    obj = PSCustomObject()
    values = {
        "ComputerName": host,
        "Name": svc.name,
        "DisplayName": svc.display_name,
        "Status": ("Running", "Stopped", "Paused")[index % 3],
        "RoleName": ",".join(r for r in svc.roles if r != "All"),
        "ActivityLevel": svc.activity_text() or f"Active Calls={index % 17},Inbound Calls={index % 5}",
    }
    for name, value in values.items():
        add_note_property(obj, name, value)
    return obj


def _ntservice(host: str, svc: Any, index: int) -> Any:
    from ocsps.lab.wsman import ps_object

    return ps_object(
        [NTSERVICE],
        adapted={
            "Status": ("Running", "Stopped", "Paused")[index % 3],
            "Name": svc.name,
            "DisplayName": svc.display_name,
            "RoleName": ",".join(r for r in svc.roles if r != "All"),
            "ActivityLevel": svc.activity_text() or None,
        },
    )


def _template_event(index: int, when: datetime) -> Any:
    from psrpcore.types import PSCustomObject, add_note_property

    obj = PSCustomObject()
    values = {
        "Id": EVENT_IDS[index % len(EVENT_IDS)],
        "TimeCreated": when.isoformat().replace("+00:00", "Z"),
        "LevelDisplayName": EVENT_LEVELS[index % 3][1],
        "ProviderName": "LS Mediation Server",
        "Message": f"Draining step {index}: the service is stopping gracefully.",
        "MachineName": f"med{index % 200:03d}.fleet.contoso.com",
        "LogName": "Lync Server",
    }
    for name, value in values.items():
        add_note_property(obj, name, value)
    return obj


def _winevent(index: int, when: datetime) -> Any:
    from psrpcore.types import PSByte, PSDateTime, PSInt, PSInt64

    from ocsps.lab.wsman import ps_object

    level, level_name = EVENT_LEVELS[index % 3]
    return ps_object(
        EVENT_TYPES,
        adapted={
            "Id": PSInt(EVENT_IDS[index % len(EVENT_IDS)]),
            "Level": PSByte(level),
            "RecordId": PSInt64(48_000 + index),
            "ProviderName": "LS Mediation Server",
            "LogName": "Lync Server",
            "MachineName": f"med{index % 200:03d}.fleet.contoso.com",
            "TimeCreated": PSDateTime(when.year, when.month, when.day, when.hour, when.minute, when.second,
                                      when.microsecond, tzinfo=when.tzinfo),
            "LevelDisplayName": level_name,
        },
        extended={"Message": f"Draining step {index}: the service is stopping gracefully."},
        to_string="System.Diagnostics.Eventing.Reader.EventLogRecord",
    )


def build_clixml(count: int) -> dict[str, list[str]]:
    """``count`` objects per kind (half per shape), as the CLIXML strings pypsrp receives."""
    from psrpcore._crypto import PSRemotingCrypto
    from psrpcore.types import serialize

    cipher = PSRemotingCrypto()
    services = _services()
    half = max(1, count // 2)
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)

    def wire(objects: list[Any]) -> list[str]:
        return [ET.tostring(serialize(obj, cipher), encoding="unicode") for obj in objects]

    return {
        "service, template": wire([_template_service(*services[i % len(services)], i) for i in range(half)]),
        "service, NTService": wire([_ntservice(*services[i % len(services)], i) for i in range(half)]),
        "event, template": wire([_template_event(i, start + timedelta(seconds=i)) for i in range(half)]),
        "event, EventLogRecord": wire([_winevent(i, start + timedelta(seconds=i)) for i in range(half)]),
    }


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure(config: Config) -> dict[str, Any]:
    from pypsrp.serializer import Serializer

    from ocsps.results import parse_event_record, parse_service_status

    log(f"parsing: building {config.parse_count} service and {config.parse_count} event objects ...")
    shapes = build_clixml(config.parse_count)
    parsers: dict[str, Callable[[Any], Any]] = {
        name: parse_service_status if name.startswith("service") else parse_event_record for name in shapes
    }
    times: dict[str, dict[str, list[float]]] = {name: {"deserialize": [], "parse": []} for name in shapes}
    repeats = max(1, config.repeat)
    for index in range(repeats):
        log(f"parsing: repeat {index + 1}/{repeats} ...")
        for name, strings in shapes.items():
            took, objects = _timed(partial(_deserialize_all, Serializer(), strings))
            times[name]["deserialize"].append(took)
            took, parsed = _timed(partial(_parse_all, parsers[name], objects))
            times[name]["parse"].append(took)
            if len(parsed) != len(strings):
                raise RuntimeError(f"{name}: parsed {len(parsed)} of {len(strings)} objects")
    groups = {name: [name] for name in shapes}
    for kind in ("service", "event"):
        groups[f"{kind}, all"] = [n for n in shapes if n.startswith(kind)]
    rows = [_row(label, names, shapes, times, repeats) for label, names in groups.items()]
    overall = _row("all", list(shapes), shapes, times, repeats)
    overall["goal"] = 0.10
    return {"count_per_kind": config.parse_count, "rows": rows, "overall": overall}


def _deserialize_all(serializer: Any, strings: list[str]) -> list[Any]:
    return [serializer.deserialize(text) for text in strings]


def _parse_all(parse: Callable[[Any], Any], objects: list[Any]) -> list[Any]:
    return [parse(obj) for obj in objects]


def _row(
    label: str,
    names: list[str],
    shapes: dict[str, list[str]],
    times: dict[str, dict[str, list[float]]],
    repeats: int,
) -> dict[str, Any]:
    """Summed over ``names``, per repeat: deserialisation, parsing, and parsing over deserialisation."""
    deserialize = [sum(times[n]["deserialize"][i] for n in names) for i in range(repeats)]
    parse = [sum(times[n]["parse"][i] for n in names) for i in range(repeats)]
    return {
        "shape": label,
        "objects": sum(len(shapes[n]) for n in names),
        "deserialize": summary(deserialize),
        "parse": summary(parse),
        "overhead": summary([p / d for p, d in zip(parse, deserialize, strict=True)]),
    }
