"""EventRecord: one entry of the "Lync Server" (or any) event log.

Two cmdlets can read the log and their objects differ, so both shapes are accepted:

* Get-WinEvent (PowerShell 2.0 on Server 2008 and later) gives ``EventLogRecord``: Id, TimeCreated,
  LevelDisplayName / Level, ProviderName, Message, MachineName, LogName, RecordId;
* Get-EventLog (the only choice on Server 2003) gives ``EventLogEntry``: EventID, InstanceId,
  TimeGenerated, EntryType, Source, Message, MachineName, Index (no log name).

``InstanceId`` carries the severity, customer and facility bits in its upper half, and ``EventID`` keeps
some of them, so the event id that administrators know (25049, 25050, 14347...) is always taken as the
low 16 bits. Matching on the raw number would miss exactly the events a drain waits for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ocsps.results.base import (
    Names,
    ParseError,
    PropertyReader,
    enum_token,
    host_name,
    known_names,
    no_extra,
)

__all__ = ["EventRecord", "parse_event_record"]

KIND = "EventRecord"

_WINEVENT_LEVELS = {0: "Information", 1: "Critical", 2: "Error", 3: "Warning", 4: "Information", 5: "Verbose"}
_ENTRY_TYPES = {1: "Error", 2: "Warning", 4: "Information", 8: "SuccessAudit", 16: "FailureAudit"}


@dataclass(frozen=True)
class EventRecord:
    """An event reduced to what the drain and TLS checks need, with everything else kept in ``extra``.

    ``time`` is always timezone-aware; ``time_assumed_utc`` says the server sent it without an offset
    and UTC was assumed. ``level`` is text as the server shows it (LevelDisplayName is localised, so it
    is not turned into an enum). ``instance_id`` is the raw Get-EventLog InstanceId when present.
    """

    id: int
    time: datetime
    level: str | None = None
    source: str | None = None
    message: str | None = None
    computer: str | None = None
    log: str | None = None
    time_assumed_utc: bool = False
    instance_id: int | None = None
    record_id: int | None = None
    extra: Mapping[str, object] = field(default_factory=no_extra, hash=False)


_INSTANCE_ID = Names("InstanceId")
_ID = Names("Id", "EventID")
_TIME = Names("TimeCreated", "TimeGenerated", "TimeWritten")
_LEVEL = Names("LevelDisplayName", "EntryType", "Level")
_SOURCE = Names("ProviderName", "Source")
_MESSAGE = Names("Message")
_COMPUTER = Names("MachineName", "ComputerName", "PSComputerName")
_LOG = Names("LogName", "Log")
_RECORD_ID = Names("RecordId", "Index")
_KNOWN = known_names(_INSTANCE_ID, _ID, _TIME, _LEVEL, _SOURCE, _MESSAGE, _COMPUTER, _LOG, _RECORD_ID)


def _level(reader: PropertyReader) -> str | None:
    found = reader.find(_LEVEL)
    if found is None or found[1] is None:
        return None
    name, value = found
    token = reader.convert(name, value, enum_token)
    if isinstance(token, int):
        table = _ENTRY_TYPES if name.casefold() == "entrytype" else _WINEVENT_LEVELS
        return table.get(token, str(token))
    return token or None


def parse_event_record(obj: object) -> EventRecord:
    """Build an :class:`EventRecord` from Get-WinEvent, Get-EventLog or template output.

    Reads: Id, EventID or InstanceId (required, masked to 16 bits); TimeCreated, TimeGenerated or
    TimeWritten (required); LevelDisplayName, EntryType or Level; ProviderName or Source; Message;
    MachineName, ComputerName or PSComputerName; LogName; RecordId or Index; InstanceId.
    """
    reader = PropertyReader(obj, KIND, _KNOWN)
    instance_id = reader.find_integer(_INSTANCE_ID)
    raw_id = reader.find_integer(_ID)
    if raw_id is None:
        raw_id = instance_id
    if raw_id is None:
        raise reader.fail([*_ID.names, *_INSTANCE_ID.names], "is missing")
    moment = reader.find_moment(_TIME, required=True)
    if moment is None:
        raise ParseError(KIND, "TimeCreated", "is missing")
    time, assumed = moment
    return EventRecord(
        id=raw_id & 0xFFFF,
        time=time,
        time_assumed_utc=assumed,
        level=_level(reader),
        source=reader.find_text(_SOURCE),
        message=reader.find_text(_MESSAGE),
        computer=host_name(reader.find_text(_COMPUTER)),
        log=reader.find_text(_LOG),
        instance_id=instance_id,
        record_id=reader.find_integer(_RECORD_ID),
        extra=reader.extra(),
    )
