"""Typed results parsed from the objects PowerShell Remoting returns.

Each result is a frozen dataclass whose fields are its ``--json`` document (written by
:func:`ocsps.jsonout.to_builtins`; verdicts such as ``succeeded`` are fields computed when the result is
built) and a module-level
``parse_<kind>(obj)`` that accepts both the PSCustomObject our templates emit (extended properties) and
the real cmdlet's .NET object (adapted properties), or a plain mapping. Parsers are pure: no I/O, no
pypsrp import. A required field that is missing or of the wrong kind raises :class:`ParseError` naming
the result kind and the property; fields a parser does not know are kept in ``extra``.
"""

from __future__ import annotations

from ocsps.results.activity import ActivityLevel, Counter, CounterValue, parse_activity_level
from ocsps.results.base import CoercionError, ParseError, prop
from ocsps.results.events import EventRecord, parse_event_record
from ocsps.results.lcscmd import LcsCmdOutcome, parse_lcscmd_outcome
from ocsps.results.lcscmd_log import LcsCmdLog, LcsCmdLogError, LcsCmdTask, LogFormat, parse_lcscmd_log
from ocsps.results.msmq import PrivacyLevel, QueuePrivacy, parse_queue_privacy
from ocsps.results.service import ServiceState, ServiceStatus, parse_service_status
from ocsps.results.wmi import WmiSetting, parse_wmi_instance, parse_wmi_setting

__all__ = [
    "ActivityLevel",
    "CoercionError",
    "Counter",
    "CounterValue",
    "EventRecord",
    "LcsCmdLog",
    "LcsCmdLogError",
    "LcsCmdOutcome",
    "LcsCmdTask",
    "LogFormat",
    "ParseError",
    "PrivacyLevel",
    "QueuePrivacy",
    "ServiceState",
    "ServiceStatus",
    "WmiSetting",
    "parse_activity_level",
    "parse_event_record",
    "parse_lcscmd_log",
    "parse_lcscmd_outcome",
    "parse_queue_privacy",
    "parse_service_status",
    "parse_wmi_instance",
    "parse_wmi_setting",
    "prop",
]
