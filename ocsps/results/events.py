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
    ParseError,
    PropertyReader,
    enum_token,
    host_name,
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


def _level(reader: PropertyReader) -> str | None:
    found = reader.lookup("LevelDisplayName", "EntryType", "Level")
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
    reader = PropertyReader(obj, KIND)
    instance_id = reader.integer("InstanceId")
    raw_id = reader.integer("Id", "EventID")
    if raw_id is None:
        raw_id = instance_id
    if raw_id is None:
        raise reader.fail(["Id", "EventID", "InstanceId"], "is missing")
    moment = reader.moment("TimeCreated", "TimeGenerated", "TimeWritten", required=True)
    if moment is None:
        raise ParseError(KIND, "TimeCreated", "is missing")
    time, assumed = moment
    return EventRecord(
        id=raw_id & 0xFFFF,
        time=time,
        time_assumed_utc=assumed,
        level=_level(reader),
        source=reader.text("ProviderName", "Source"),
        message=reader.text("Message"),
        computer=host_name(reader.text("MachineName", "ComputerName", "PSComputerName")),
        log=reader.text("LogName", "Log"),
        instance_id=instance_id,
        record_id=reader.integer("RecordId", "Index"),
        extra=reader.extra(),
    )
