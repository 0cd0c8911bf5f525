"""A WinRM endpoint on loopback that the unmodified pypsrp client can talk to.

No Windows machine exists where ocsps is developed and tested, yet the code under test must meet the
real protocol stack: HTTP keep-alive, NTLM/Negotiate with WSMan message encryption, WS-Management SOAP
and PSRP fragments. This module is that stack on the server side. It serves many simulated servers on
one listener (``/wsman/<fqdn>``; plain ``/wsman`` is the first one), hands PSRP to psrpcore's
``ServerRunspacePool`` / ``ServerPipeline`` and knows nothing about PowerShell itself: every pipeline is
given to an :class:`Executor` together with a :class:`PipelineSink` to write objects, records and errors.

Protocol details that matter to pypsrp (each one breaks the client when wrong):

* replies echo the request's MessageID in ``wsa:RelatesTo``;
* the Create reply carries ``ResourceCreated/ReferenceParameters/SelectorSet/Selector[@Name="ShellId"]``;
* a Receive with nothing to return blocks until the request's OperationTimeout and then answers HTTP 500
  with WSManFault 2150858793, which pypsrp treats as "poll again";
* a PSRP fragment is never split across two Receive replies and a reply never exceeds the request's
  MaxEnvelopeSize (pypsrp announces 153600 bytes and 512000 after negotiating protocol 2.2 or newer);
* the ``ServerPipeline`` (id = WSMan CommandId) exists before its CreatePipeline message is fed;
* on Delete, pipelines are stopped and closed before the pool;
* psrpcore objects are not thread-safe, so each shell has one lock (a condition variable that also wakes
  waiting Receives).

The PSRP protocol version announced in SESSION_CAPABILITY comes from :class:`HostSpec`: "2.1" for a
PowerShell 2.0 product makes pypsrp limit itself exactly as against a real PowerShell 2.0 host.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
import types
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from xml.sax.saxutils import escape, quoteattr

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    GetCommandMetadataEvent,
    PipelineInputEvent,
    PSRPPayload,
    ResetRunspaceStateEvent,
    ServerPipeline,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
    StreamType,
)
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    ProgressRecordType,
    PSCustomObject,
    PSInvocationState,
    PSNoteProperty,
    PSObject,
    PSVersion,
    RunspacePoolState,
    SessionCapability,
    add_note_property,
)
from spnego.channel_bindings import GssChannelBindings

from ocsps.lab.auth import (
    AUTH_MODES,
    AuthMode,
    ConnectionAuth,
    CredentialStore,
    DecryptionError,
    check_basic,
    is_encrypted,
    parse_token,
    principal_matches,
)
from ocsps.lab.faults import (
    ACTIONS,
    AUTH_LEGS,
    DROPPED,
    ENCRYPTED,
    HTTP_ERRORS,
    REQUESTS,
    TIMEOUTS,
    UNAUTHORIZED,
    Counters,
    FaultKind,
    Faults,
)

__all__ = [
    "CommandCall",
    "Counters",
    "Executor",
    "Faults",
    "HostSpec",
    "Invocation",
    "LabServer",
    "PipelineFailure",
    "PipelineSink",
    "ps_object",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Public interface for executors
# --------------------------------------------------------------------------------------------------

_PROTOCOL_DEFAULT_PS: Final[dict[str, str]] = {"2.0": "2.0", "2.1": "2.0", "2.2": "3.0", "2.3": "5.1.17763.1"}


@dataclass(frozen=True)
class HostSpec:
    """One simulated server behind the listener.

    ``protocol_version`` is the PSRP version announced to the client: "2.1" for PowerShell 2.0
    (OCS 2007 R2, Lync 2010), "2.2" for 3.0/4.0, "2.3" for 5.1. ``ps_version`` is what
    ``$PSVersionTable.PSVersion`` would report (derived from the protocol when omitted).
    ``max_envelope_kb`` is what the WinRM config reports (150 on PowerShell 2.0 systems, 500 later).
    """

    fqdn: str
    protocol_version: str = "2.3"
    ps_version: str | None = None
    faults: Faults = field(default_factory=Faults, compare=False)
    max_envelope_kb: int | None = None

    def __post_init__(self) -> None:
        if not self.fqdn or "/" in self.fqdn or any(c.isspace() for c in self.fqdn):
            raise ValueError(f"invalid host name {self.fqdn!r}")
        if self.protocol_version not in _PROTOCOL_DEFAULT_PS:
            raise ValueError(
                f"protocol_version must be one of {', '.join(_PROTOCOL_DEFAULT_PS)}, "
                f"not {self.protocol_version!r}"
            )
        PSVersion(self.effective_ps_version)  # validates the format early

    @property
    def effective_ps_version(self) -> str:
        return self.ps_version or _PROTOCOL_DEFAULT_PS[self.protocol_version]

    @property
    def effective_max_envelope_kb(self) -> int:
        if self.max_envelope_kb is not None:
            return self.max_envelope_kb
        return 150 if self.protocol_version in ("2.0", "2.1") else 500


@dataclass(frozen=True)
class CommandCall:
    """One command of a pipeline as the client sent it.

    ``parameters`` keeps the client's order; a ``None`` name is a positional argument. Values are
    whatever psrpcore deserialized (``str``/``int`` subclasses, ``dict``, ``list``, ``PSObject``...).
    """

    text: str
    is_script: bool
    parameters: tuple[tuple[str | None, Any], ...] = ()
    end_of_statement: bool = True

    @property
    def positional(self) -> list[Any]:
        return [value for name, value in self.parameters if name is None]

    @property
    def named(self) -> dict[str, Any]:
        """Named parameters (later duplicates win), keys as the client spelled them."""
        return {name: value for name, value in self.parameters if name is not None}

    def get(self, name: str, default: Any = None) -> Any:
        """Parameter value by name, case-insensitively, as PowerShell binds parameters."""
        wanted = name.lower()
        for key, value in reversed(self.parameters):
            if key is not None and key.lower() == wanted:
                return value
        return default

    def has(self, name: str) -> bool:
        wanted = name.lower()
        return any(key is not None and key.lower() == wanted for key, _ in self.parameters)


@dataclass(frozen=True)
class Invocation:
    """Everything an executor needs to know about one pipeline."""

    commands: tuple[CommandCall, ...]
    input: tuple[Any, ...] = ()
    shell_id: str = ""
    command_id: str = ""
    protocol_version: str = "2.3"
    ps_version: str = ""

    @property
    def script(self) -> str | None:
        """Text of the first command when it is a script (the usual ``add_script`` case)."""
        if self.commands and self.commands[0].is_script:
            return self.commands[0].text
        return None


CategoryLike = ErrorCategory | str | int


def _category(value: CategoryLike) -> ErrorCategory:
    if isinstance(value, ErrorCategory):
        return value
    if isinstance(value, int):
        return ErrorCategory(value)
    try:
        return ErrorCategory[value]
    except KeyError:
        raise ValueError(f"unknown ErrorCategory {value!r}") from None


def _error_record(
    message: str,
    *,
    category: CategoryLike,
    error_id: str | None,
    target: Any,
    exception_type: str,
    activity: str | None,
) -> ErrorRecord:
    """Build the ErrorRecord PowerShell would produce for an exception of ``exception_type``."""
    exception = NETException(Message=message, HResult=-2146233087)
    type_names = [exception_type]
    for base in ("System.SystemException", "System.Exception", "System.Object"):
        if base not in type_names:
            type_names.append(base)
    exception.PSObject.type_names = type_names
    short_type = exception_type.rsplit(".", 1)[-1]
    target_name = "" if target is None else str(target)
    info = ErrorCategoryInfo(
        Category=_category(category),
        Activity=activity,
        Reason=short_type,
        TargetName=target_name,
        TargetType="" if target is None else type(target).__name__,
    )
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=info,
        TargetObject=target,
        FullyQualifiedErrorId=error_id or short_type,
    )


class PipelineFailure(Exception):
    """Raised by an executor to end its pipeline with a terminating error (state Failed).

    The fields mirror a PowerShell ErrorRecord; the client sees ``had_errors`` and the record in
    ``streams.error``, as after ``throw`` or ``-ErrorAction Stop`` on a real server.
    """

    def __init__(
        self,
        message: str,
        *,
        category: CategoryLike = "NotSpecified",
        error_id: str | None = None,
        target: Any = None,
        exception_type: str = "System.Management.Automation.RuntimeException",
        activity: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_id = error_id
        self.target = target
        self.exception_type = exception_type
        self.activity = activity


def ps_object(
    type_names: Sequence[str],
    adapted: Mapping[str, Any] | None = None,
    extended: Mapping[str, Any] | None = None,
    *,
    to_string: str | None = None,
) -> PSObject:
    """An object that looks like a real .NET object after deserialization.

    ``adapted`` become the .NET properties (pypsrp ``adapted_properties``), ``extended`` the
    PowerShell note properties (``extended_properties``). Use it for things like
    ``Microsoft.Rtc.Management.Deployment.Core.NTService`` that scripts return unchanged.
    """
    obj = PSObject()
    names = list(type_names)
    if "System.Object" not in names:
        names.append("System.Object")
    obj.PSObject.type_names = names
    for name, value in (adapted or {}).items():
        obj.PSObject.adapted_properties.append(PSNoteProperty(name, value))
    for name, value in (extended or {}).items():
        add_note_property(obj, name, value)
    if to_string is not None:
        obj.PSObject.to_string = to_string
    return obj


def _to_wire(value: Any) -> Any:
    """A top-level mapping becomes a PSCustomObject, as ``New-Object PSObject -Property`` would give."""
    if isinstance(value, Mapping) and not isinstance(value, PSObject):
        obj = PSCustomObject()
        for key, item in value.items():
            add_note_property(obj, str(key), item)
        return obj
    return value


class PipelineSink:
    """Where an executor writes the results of one pipeline.

    Every write is serialized immediately and queued for the client's next Receive, so output can stream
    over time. Writes return ``False`` (and are dropped) once the pipeline has ended: after a terminating
    error, after the client stopped it, or after the shell was deleted. Long-running executors should
    poll :attr:`cancelled` (or wait on it with :meth:`wait_cancelled`) to honour a client's stop.
    """

    def __init__(self, shell: _Shell, pipeline: ServerPipeline) -> None:
        self._shell = shell
        self._pipeline = pipeline
        self.cancelled = threading.Event()
        """Set when the client stops the pipeline or the shell/lab goes away."""

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()

    @property
    def closed(self) -> bool:
        """Whether the pipeline has ended, so that an executor can stop producing work nobody reads."""
        with self._shell.cond:
            return self._pipeline.state != PSInvocationState.Running

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep that ends early on cancellation; returns whether the pipeline was cancelled."""
        return self.cancelled.wait(timeout)

    def write(self, value: Any) -> bool:
        """Write one output object: a primitive, a mapping (-> PSCustomObject) or a psrpcore PSObject."""
        wire = _to_wire(value)
        return self._emit(lambda: self._pipeline.write_output(wire))

    def write_object(
        self,
        type_names: Sequence[str],
        adapted: Mapping[str, Any] | None = None,
        extended: Mapping[str, Any] | None = None,
        *,
        to_string: str | None = None,
    ) -> bool:
        """Shortcut for ``write(ps_object(...))``."""
        return self.write(ps_object(type_names, adapted, extended, to_string=to_string))

    def write_error(
        self,
        message: str,
        *,
        category: CategoryLike = "NotSpecified",
        error_id: str | None = None,
        target: Any = None,
        exception_type: str = "System.Management.Automation.RuntimeException",
        activity: str | None = None,
        terminating: bool = False,
    ) -> bool:
        """Write an error record; ``terminating`` ends the pipeline as Failed with this record."""
        record = _error_record(
            message,
            category=category,
            error_id=error_id,
            target=target,
            exception_type=exception_type,
            activity=activity,
        )
        if terminating:
            # ServerPipeline has no public "fail": _change_state emits the PIPELINE_STATE Failed message
            # carrying the record, which pypsrp turns into had_errors plus an entry in streams.error.
            return self._emit(lambda: self._pipeline._change_state(PSInvocationState.Failed, record))
        return self._emit(
            lambda: self._pipeline.write_error(
                record.Exception,
                record.CategoryInfo,
                record.TargetObject,
                record.FullyQualifiedErrorId,
            )
        )

    def fail(self, failure: PipelineFailure) -> bool:
        """End the pipeline with ``failure`` as its terminating error."""
        return self.write_error(
            failure.message,
            category=failure.category,
            error_id=failure.error_id,
            target=failure.target,
            exception_type=failure.exception_type,
            activity=failure.activity,
            terminating=True,
        )

    def write_warning(self, message: str) -> bool:
        return self._emit(lambda: self._pipeline.write_warning(message))

    def write_verbose(self, message: str) -> bool:
        return self._emit(lambda: self._pipeline.write_verbose(message))

    def write_debug(self, message: str) -> bool:
        return self._emit(lambda: self._pipeline.write_debug(message))

    def write_progress(
        self,
        activity: str,
        status: str,
        *,
        activity_id: int = 0,
        percent_complete: int = -1,
        current_operation: str | None = None,
        seconds_remaining: int = -1,
        completed: bool = False,
    ) -> bool:
        record_type = ProgressRecordType.Completed if completed else ProgressRecordType.Processing
        return self._emit(
            lambda: self._pipeline.write_progress(
                activity,
                activity_id,
                status,
                current_operation=current_operation,
                percent_complete=percent_complete,
                record_type=record_type,
                seconds_remaining=seconds_remaining,
            )
        )

    def _emit(self, action: Callable[[], None]) -> bool:
        with self._shell.cond:
            if self._pipeline.state != PSInvocationState.Running:
                return False
            action()
            self._shell.cond.notify_all()
            return True

    def _complete(self) -> None:
        """Called by the server after the executor returned."""
        with self._shell.cond:
            if self._pipeline.state == PSInvocationState.Running:
                self._pipeline.complete()
            self._shell.cond.notify_all()


class Executor(Protocol):
    """Runs one pipeline for a simulated server; called in a worker thread per pipeline.

    ``server`` is the :attr:`HostSpec.fqdn`. Return normally to complete the pipeline, raise
    :class:`PipelineFailure` (or call ``out.write_error(..., terminating=True)``) to fail it. Any other
    exception also fails the pipeline, with the Python exception as message, so executor bugs are visible
    to the client instead of hanging it. For example::

        def executor(server: str, invocation: Invocation, out: PipelineSink) -> None:
            command = invocation.commands[0]
            if command.text == "Get-CsWindowsService":
                out.write_object([NTSERVICE_TYPE], adapted={"Name": "RTCSRV", "Status": "Running"})
            elif command.text == "Stop-CsWindowsService":
                while not out.wait_cancelled(0.1):  # honour the client's stop()
                    out.write_progress("Stopping", "draining calls")
            else:
                raise PipelineFailure(f"The term '{command.text}' is not recognized",
                                      category="ObjectNotFound", error_id="CommandNotFoundException")
    """

    def __call__(self, server: str, invocation: Invocation, out: PipelineSink) -> None: ...


# --------------------------------------------------------------------------------------------------
# WS-Management plumbing
# --------------------------------------------------------------------------------------------------

_NS: Final = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
}

_ACTION_NAMES: Final = {
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create": "Create",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete": "Delete",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get": "Get",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command": "Command",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive": "Receive",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send": "Send",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal": "Signal",
}
_RESPONSE_ACTIONS: Final = {
    "Create": "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
    "Delete": "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
    "Get": "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse",
    "Command": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
    "Receive": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
    "Send": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse",
    "Signal": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse",
}
_FAULT_ACTION: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
_ANONYMOUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
_SHELL_URI: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
_PS_RESOURCE_PREFIX: Final = "http://schemas.microsoft.com/powershell/"
_STATE_DONE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
_STATE_RUNNING: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
_SIGNAL_TERMINATE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
_SIGNAL_CTRL_C: Final = (
    "powershell/signal/ctrl_c",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
)
_SOAP_CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"

# WSManFault codes (HRESULTs) the client recognises.
FAULT_OPERATION_TIMEOUT: Final = 2150858793  # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
FAULT_SHELL_NOT_FOUND: Final = 2150858843  # 0x8033805B, what WinRM answers for an unknown ShellId
_FAULT_NOT_IMPLEMENTED: Final = 2147500033  # 0x80004001 E_NOTIMPL
_FAULT_FAILED: Final = 2147500037  # 0x80004005 E_FAIL

_ENVELOPE_OVERHEAD: Final = 2048
"""Bytes of a Receive reply that are not base64 payload (headers, XML around the stream), rounded up."""

_FRAGMENT_HEADER: Final = 21


class _WsmanFault(Exception):
    """Answered as HTTP 500 with a SOAP fault carrying a WSManFault detail."""

    def __init__(self, code: int, subcode: str, message: str, *, receiver: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.message = message
        self.receiver = receiver


@dataclass
class _Request:
    action_uri: str
    message_id: str
    resource_uri: str
    max_envelope: int
    operation_timeout: float
    selectors: dict[str, str]
    body: ET.Element

    @property
    def action(self) -> str:
        return _ACTION_NAMES.get(self.action_uri, "Other")


_DURATION_RE = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _parse_duration(text: str | None, default: float) -> float:
    if not text:
        return default
    match = _DURATION_RE.match(text.strip())
    if not match:
        return default
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0.0)


def _parse_request(data: bytes) -> _Request:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"request is not XML: {exc}") from exc
    header = root.find("s:Header", _NS)
    body = root.find("s:Body", _NS)
    if header is None or body is None:
        raise ValueError("request is not a SOAP envelope")

    def text(path: str) -> str:
        element = header.find(path, _NS)
        return (element.text or "").strip() if element is not None else ""

    selectors = {
        sel.attrib.get("Name", ""): (sel.text or "").strip()
        for sel in header.findall("w:SelectorSet/w:Selector", _NS)
    }
    try:
        max_envelope = int(text("w:MaxEnvelopeSize") or "153600")
    except ValueError:
        max_envelope = 153600
    return _Request(
        action_uri=text("a:Action"),
        message_id=text("a:MessageID"),
        resource_uri=text("w:ResourceURI"),
        max_envelope=max_envelope,
        operation_timeout=_parse_duration(text("w:OperationTimeout"), 60.0),
        selectors=selectors,
        body=body,
    )


def _envelope(action_uri: str, relates_to: str, body: str) -> bytes:
    namespaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _NS.items())
    return (
        f'<s:Envelope xml:lang="en-US" {namespaces}><s:Header>'
        f"<a:Action>{escape(action_uri)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{_ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault_envelope(fault: _WsmanFault, relates_to: str, machine: str) -> bytes:
    role = "s:Receiver" if fault.receiver else "s:Sender"
    message = escape(fault.message)
    body = (
        f"<s:Fault><s:Code><s:Value>{role}</s:Value><s:Subcode><s:Value>{escape(fault.subcode)}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{message}</s:Text></s:Reason>'
        f"<s:Detail><f:WSManFault Code={quoteattr(str(fault.code))} Machine={quoteattr(machine)}>"
        f"<f:Message>{message}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope(_FAULT_ACTION, relates_to, body)


def _split_fragments(data: bytes) -> Iterator[bytes]:
    """Cut a psrpcore payload into its PSRP fragments (21-byte header, big-endian length at 17..21)."""
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 17 : offset + _FRAGMENT_HEADER], "big")
        end = offset + _FRAGMENT_HEADER + length
        yield data[offset:end]
        offset = end


def _shell_not_found(shell_id: str) -> _WsmanFault:
    return _WsmanFault(
        FAULT_SHELL_NOT_FOUND,
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and try again.",
    )


def _timeout_fault() -> _WsmanFault:
    return _WsmanFault(
        FAULT_OPERATION_TIMEOUT,
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.",
    )


# --------------------------------------------------------------------------------------------------
# Server state
# --------------------------------------------------------------------------------------------------


class _Pipe:
    def __init__(self, shell: _Shell, pipeline_id: uuid.UUID, command_id: str) -> None:
        self.id = pipeline_id
        self.command_id = command_id
        self.ps = ServerPipeline(shell.pool, pipeline_id)
        self.sink = PipelineSink(shell, self.ps)
        self.metadata: Any = None
        self.inputs: list[Any] = []
        self.thread: threading.Thread | None = None

    @property
    def finished(self) -> bool:
        return self.ps.state in (
            PSInvocationState.Completed,
            PSInvocationState.Failed,
            PSInvocationState.Stopped,
        )


class _Shell:
    def __init__(self, host: _Host, shell_id: str, resource_uri: str, pool: ServerRunspacePool) -> None:
        self.host = host
        self.id = shell_id
        self.resource_uri = resource_uri
        self.pool = pool
        self.cond = threading.Condition(threading.RLock())
        self.pipes: dict[uuid.UUID, _Pipe] = {}
        self.outbox: dict[uuid.UUID | None, deque[bytes]] = {}
        self.closed = False
        self.created = time.time()


class _Host:
    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.key = spec.fqdn.lower()
        self.faults = spec.faults
        self.counters = Counters()
        self.lock = threading.Lock()
        self.shells: dict[str, _Shell] = {}

    def shell(self, shell_id: str) -> _Shell:
        with self.lock:
            shell = self.shells.get(shell_id.upper())
        if shell is None:
            raise _shell_not_found(shell_id)
        return shell


def _app_private_data(spec: HostSpec) -> dict[str, Any]:
    protocol = spec.protocol_version
    table: dict[str, Any] = {
        "PSVersion": PSVersion(spec.effective_ps_version),
        "PSRemotingProtocolVersion": PSVersion(protocol),
        "SerializationVersion": PSVersion("1.1.0.1"),
        "WSManStackVersion": PSVersion("2.0" if protocol in ("2.0", "2.1") else "3.0"),
    }
    if PSVersion(spec.effective_ps_version) >= PSVersion("5.1"):
        table["PSEdition"] = "Desktop"
    return {"PSVersionTable": table}


def _new_pool(spec: HostSpec) -> ServerRunspacePool:
    pool = ServerRunspacePool(application_private_data=_app_private_data(spec))
    # ServerRunspacePool has no constructor argument for the protocol version; SESSION_CAPABILITY is built
    # from our_capability, so replacing it before the client's capability arrives is what announces it.
    pool.our_capability = SessionCapability(
        PSVersion=PSVersion("2.0"),
        protocolversion=PSVersion(spec.protocol_version),
        SerializationVersion=PSVersion("1.1.0.1"),
    )
    return pool


# --------------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------------


class _Drop(Exception):
    """Close the connection without a reply."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        lab: LabServer,
        family: socket.AddressFamily,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.address_family = family
        self.lab = lab
        self.ssl_context = ssl_context
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the bound address with getfqdn(), a DNS lookup we do not need.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # The handshake runs in the connection's own thread (see _Handler.setup), not in the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, every reply waits for the client's
    # delayed ACK (~40 ms), which would dominate round-trip benchmarks.
    disable_nagle_algorithm = True
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()
        lab = self.server.lab
        self.conn_auth = ConnectionAuth(
            mode=lab.auth,
            channel_bindings=lab._channel_bindings,
            credential_file=lab._credential_file,
        )

    def do_POST(self) -> None:
        self.server.lab._handle_post(self)

    def _not_allowed(self) -> None:
        self.send_plain(405, b"", headers=[("Allow", "POST")])

    do_GET = _not_allowed
    do_PUT = _not_allowed
    do_DELETE = _not_allowed

    def send_plain(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def drop(self) -> None:
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _check_loopback(address: str) -> tuple[str, socket.AddressFamily]:
    if address == "localhost":
        address = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"the lab binds to a loopback IP address only, not {address!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"the lab binds to loopback only (127.0.0.0/8 or ::1), not {address}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return str(ip), family


class LabServer:
    """The lab's WinRM listener: many simulated servers, one loopback port.

    ``credentials`` is the (``DOMAIN\\user`` or ``user``, password) pair every simulated server accepts.
    With ``auth`` "ntlm" or "negotiate" over http, WSMan message encryption is required like on a default
    WinRM listener (``require_encryption=False`` relaxes that); "basic" works over http only with a client
    that sets ``encryption="never"``. ``https=True`` serves TLS with a throw-away self-signed certificate
    whose PEM path is :attr:`cert_path`.

    ``receive_linger`` is how long a Receive that already has output waits for more before replying, so a
    short command costs one Command and one Receive as on a real server, instead of depending on whether
    the executor finished before the Receive arrived.

    NTLM/Negotiate validation goes through the process-global ``NTLM_USER_FILE`` while the server runs;
    see :mod:`ocsps.lab.auth`.
    """

    def __init__(
        self,
        hosts: Sequence[HostSpec | str],
        *,
        executor: Executor,
        credentials: tuple[str, str],
        auth: AuthMode = "ntlm",
        address: str = "127.0.0.1",
        port: int = 0,
        https: bool = False,
        require_encryption: bool = True,
        receive_linger: float = 0.05,
    ) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        username, password = credentials
        if not username:
            raise ValueError("credentials need a user name")
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port}")
        self._address, self._family = _check_loopback(address)
        self._requested_port = port
        self.auth: AuthMode = auth
        self._username = username
        self._password = password
        self._executor = executor
        self._https = https
        self._require_encryption = require_encryption
        self._linger = max(0.0, receive_linger)
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()
        self._default_host: str | None = None
        for host in hosts:
            self.add_host(host)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stop_requested = threading.Event()
        self._cert_dir: str | None = None
        self._cert_path: str | None = None
        self._channel_bindings: GssChannelBindings | None = None
        self._credential_file: str | None = None
        self._lifecycle = threading.Lock()

    # -- configuration ---------------------------------------------------------------------------

    def add_host(self, host: HostSpec | str) -> HostSpec:
        """Add a simulated server (allowed while running); the first one also answers on ``/wsman``."""
        spec = HostSpec(host) if isinstance(host, str) else host
        entry = _Host(spec)
        with self._hosts_lock:
            if entry.key in self._hosts:
                raise ValueError(f"host {spec.fqdn} is already served")
            self._hosts[entry.key] = entry
            if self._default_host is None:
                self._default_host = entry.key
        return spec

    def remove_host(self, fqdn: str) -> None:
        """Forget a simulated server; its shells are closed and its pipelines cancelled."""
        with self._hosts_lock:
            entry = self._hosts.pop(fqdn.lower(), None)
            if entry is not None and self._default_host == entry.key:
                self._default_host = next(iter(self._hosts), None)
        if entry is None:
            raise KeyError(fqdn)
        self._close_host(entry)

    @property
    def hosts(self) -> list[HostSpec]:
        with self._hosts_lock:
            return [entry.spec for entry in self._hosts.values()]

    def host(self, fqdn: str | None = None) -> HostSpec:
        return self._host(fqdn).spec

    def faults(self, fqdn: str | None = None) -> Faults:
        """The fault knobs of one simulated server (default: the first), mutable at run time."""
        return self._host(fqdn).faults

    def counters(self, fqdn: str | None = None) -> Counters:
        """Request counters of one simulated server (default: the first)."""
        return self._host(fqdn).counters

    def reset_counters(self) -> None:
        with self._hosts_lock:
            entries = list(self._hosts.values())
        for entry in entries:
            entry.counters.reset()

    def open_shells(self, fqdn: str | None = None) -> int:
        """Runspace pools currently open on a simulated server, to check that clients clean up."""
        entry = self._host(fqdn)
        with entry.lock:
            return len(entry.shells)

    def _host(self, fqdn: str | None) -> _Host:
        with self._hosts_lock:
            key = fqdn.lower() if fqdn is not None else self._default_host
            entry = self._hosts.get(key) if key is not None else None
        if entry is None:
            raise KeyError(f"no simulated host {fqdn!r}")
        return entry

    # -- addresses -------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._address

    @property
    def port(self) -> int:
        """The bound port (the requested one until :meth:`start`; 0 means "pick one at start")."""
        if self._httpd is not None:
            return int(self._httpd.server_address[1])
        return self._requested_port

    @property
    def scheme(self) -> str:
        return "https" if self._https else "http"

    @property
    def cert_path(self) -> str | None:
        """PEM file of the self-signed certificate when serving https (exists while running)."""
        return self._cert_path

    def path(self, fqdn: str | None = None) -> str:
        """The URL path (without leading slash) pypsrp's ``WSMan(path=...)`` needs for a host."""
        return f"wsman/{self._host(fqdn).spec.fqdn}"

    def url(self, fqdn: str | None = None) -> str:
        host = f"[{self._address}]" if self._family == socket.AF_INET6 else self._address
        return f"{self.scheme}://{host}:{self.port}/{self.path(fqdn)}"

    def client_kwargs(self, fqdn: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``pypsrp.wsman.WSMan`` that reach ``fqdn`` with the lab credentials."""
        kwargs: dict[str, Any] = {
            "server": self._address,
            "port": self.port,
            "path": self.path(fqdn),
            "ssl": self._https,
            "auth": self.auth,
            "username": self._username,
            "password": self._password,
            "no_proxy": True,
        }
        if self.auth == "basic" and not self._https:
            kwargs["encryption"] = "never"
        if self._https and self._cert_path:
            kwargs["cert_validation"] = self._cert_path
        return kwargs

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LabServer:
        """Listen and serve in a background thread; returns once the socket accepts connections."""
        with self._lifecycle:
            if self._httpd is not None:
                return self
            self._stopping.clear()
            self._stop_requested.clear()
            ssl_context = self._make_tls() if self._https else None
            try:
                httpd = _HTTPServer((self._address, self._requested_port), self, self._family, ssl_context)
            except BaseException:
                self._cleanup_cert()
                raise
            if self.auth != "basic":
                try:
                    self._credential_file = CredentialStore.shared().register(
                        self, self._username, self._password
                    )
                except BaseException:
                    httpd.server_close()
                    self._cleanup_cert()
                    raise
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"ocsps-lab-{self.port}",
                daemon=True,
            )
            self._thread.start()
            log.info("lab listening on %s://%s:%d", self.scheme, self._address, self.port)
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: cancel pipelines, wake blocked Receives, close every connection, unbind."""
        with self._lifecycle:
            httpd, thread = self._httpd, self._thread
            if httpd is None:
                return
            self._stopping.set()
            self._stop_requested.set()
            with self._hosts_lock:
                entries = list(self._hosts.values())
            workers: list[threading.Thread] = []
            for entry in entries:
                workers.extend(self._close_host(entry))
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
            if thread is not None:
                thread.join(timeout)
            deadline = time.monotonic() + min(timeout, 1.0)
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            if self.auth != "basic":
                CredentialStore.shared().unregister(self)
                self._credential_file = None
            self._cleanup_cert()
            self._httpd = None
            self._thread = None
            log.info("lab stopped")

    def serve_forever(self, *, handle_signals: bool = True) -> None:
        """Run in the foreground until SIGINT/SIGTERM (or :meth:`stop` from another thread)."""
        self.start()
        previous: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():

            def _request_stop(signum: int, frame: types.FrameType | None) -> None:
                self._stop_requested.set()

            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, _request_stop)
        try:
            while not self._stop_requested.wait(0.2):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def _close_host(self, entry: _Host) -> list[threading.Thread]:
        with entry.lock:
            shells = list(entry.shells.values())
            entry.shells.clear()
        workers: list[threading.Thread] = []
        for shell in shells:
            workers.extend(self._close_shell(shell))
        return workers

    # -- TLS ---------------------------------------------------------------------------------------

    def _make_tls(self) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        with self._hosts_lock:
            names = [entry.spec.fqdn for entry in self._hosts.values()]
        common_name = names[0] if names else "ocsps-lab"
        alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
        alt_names.append(x509.DNSName("localhost"))
        alt_names.append(x509.IPAddress(ipaddress.ip_address(self._address)))
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self._cert_dir = tempfile.mkdtemp(prefix="ocsps-lab-tls-")
        self._cert_path = os.path.join(self._cert_dir, "cert.pem")
        key_path = os.path.join(self._cert_dir, "key.pem")
        with open(self._cert_path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        # RFC 5929 tls-server-end-point: what pypsrp binds NTLM to over https.
        digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
        self._channel_bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + digest)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert_path, key_path)
        return context

    def _cleanup_cert(self) -> None:
        if self._cert_dir is not None:
            shutil.rmtree(self._cert_dir, ignore_errors=True)
        self._cert_dir = None
        self._cert_path = None
        self._channel_bindings = None

    # -- request handling ------------------------------------------------------------------------

    def _host_for_path(self, raw_path: str) -> _Host | None:
        path = raw_path.split("?", 1)[0].strip("/")
        parts = path.split("/")
        if not parts or parts[0].lower() != "wsman" or len(parts) > 2:
            return None
        with self._hosts_lock:
            key = self._default_host if len(parts) == 1 or not parts[1] else parts[1].lower()
            return self._hosts.get(key) if key is not None else None

    def _handle_post(self, handler: _Handler) -> None:
        body = self._read_body(handler)
        if body is None:
            return
        host = self._host_for_path(handler.path)
        if host is None:
            handler.send_plain(404, b"")
            return
        host.counters.incr(REQUESTS)
        latency = host.faults.current_latency()
        if latency and self._stopping.wait(latency):
            handler.drop()
            return
        if self._stopping.is_set():
            handler.drop()
            return

        auth = handler.conn_auth
        reply_headers: list[tuple[str, str]] = []
        if self.auth == "basic":
            authz = handler.headers.get("Authorization", "")
            if not authz or not check_basic(authz, self._username, self._password):
                self._unauthorized(handler, host, auth.challenge_scheme)
                return
        else:
            authz = handler.headers.get("Authorization", "")
            token = parse_token(authz) if authz else None
            if token is not None:
                scheme, in_token = token
                host.counters.incr(AUTH_LEGS)
                try:
                    complete, out_token = auth.step(scheme, in_token)
                except Exception as exc:  # bad token, unknown user, wrong password: all a plain 401
                    log.debug("authentication failed: %s", exc)
                    auth.reset()
                    self._unauthorized(handler, host, auth.challenge_scheme)
                    return
                if not complete:
                    encoded = base64.b64encode(out_token or b"").decode()
                    self._unauthorized(handler, host, f"{scheme} {encoded}")
                    return
                if not principal_matches(auth.principal, self._username):
                    log.debug("authenticated %r; this lab accepts %r only", auth.principal, self._username)
                    auth.reset()
                    self._unauthorized(handler, host, auth.challenge_scheme)
                    return
                auth.authenticated_for = host.key
                if out_token:
                    final = base64.b64encode(out_token).decode()
                    reply_headers.append(("WWW-Authenticate", f"{scheme} {final}"))
                if not body:
                    handler.send_plain(200, b"", headers=reply_headers)
                    return
            elif auth.authenticated_for != host.key:
                self._unauthorized(handler, host, auth.challenge_scheme)
                return

        encrypted = is_encrypted(handler.headers.get("Content-Type", ""))
        if encrypted:
            if self.auth == "basic":
                handler.send_plain(400, b"Basic authentication cannot carry encrypted messages")
                return
            try:
                soap = auth.unwrap(body)
            except DecryptionError as exc:
                log.debug("%s: %s", host.spec.fqdn, exc)
                handler.send_plain(400, str(exc).encode())
                return
            host.counters.incr(ENCRYPTED)
        else:
            needs_encryption = self.auth != "basic" and not self._https and self._require_encryption
            if needs_encryption and body:
                # A default WinRM listener (AllowUnencrypted=false) refuses clear-text SOAP this way.
                self._unauthorized(handler, host, auth.challenge_scheme)
                return
            soap = body

        def send(status: int, payload: bytes) -> None:
            if encrypted:
                content_type, wire = auth.wrap(payload)
            else:
                content_type, wire = _SOAP_CONTENT_TYPE, payload
            handler.send_plain(status, wire, content_type=content_type, headers=reply_headers)

        try:
            request = _parse_request(soap)
        except ValueError as exc:
            handler.send_plain(400, str(exc).encode())
            return
        action = request.action
        host.counters.incr(action)
        fault = host.faults.consume(action) if action in ACTIONS else FaultKind.NONE
        if fault is FaultKind.DROP:
            host.counters.incr(DROPPED)
            handler.drop()
            return
        if fault is FaultKind.HTTP_503:
            host.counters.incr(HTTP_ERRORS)
            handler.send_plain(503, b"Service Unavailable", content_type="text/plain", headers=reply_headers)
            return
        if fault is FaultKind.HTTP_500:
            host.counters.incr(HTTP_ERRORS)
            injected = _WsmanFault(_FAULT_FAILED, "w:InternalError", "Internal error injected by the lab.")
            send(500, _fault_envelope(injected, request.message_id, host.spec.fqdn))
            return

        try:
            status, payload = 200, self._dispatch(host, request)
        except _Drop:
            handler.drop()
            return
        except _WsmanFault as exc:
            if exc.code == FAULT_OPERATION_TIMEOUT:
                host.counters.incr(TIMEOUTS)
            status, payload = 500, _fault_envelope(exc, request.message_id, host.spec.fqdn)
        except Exception as exc:
            log.exception("%s: %s failed", host.spec.fqdn, action)
            failure = _WsmanFault(_FAULT_FAILED, "w:InternalError", f"{type(exc).__name__}: {exc}")
            status, payload = 500, _fault_envelope(failure, request.message_id, host.spec.fqdn)
        if fault is FaultKind.DROP_AFTER:
            host.counters.incr(DROPPED)
            handler.drop()
            return
        send(status, payload)

    def _read_body(self, handler: _Handler) -> bytes | None:
        if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
            handler.send_plain(411, b"")
            handler.drop()
            return None
        try:
            length = int(handler.headers.get("Content-Length", "0") or "0")
        except ValueError:
            handler.send_plain(400, b"bad Content-Length")
            handler.drop()
            return None
        return handler.rfile.read(length) if length > 0 else b""

    def _unauthorized(self, handler: _Handler, host: _Host, challenge: str) -> None:
        host.counters.incr(UNAUTHORIZED)
        handler.send_plain(401, b"", headers=[("WWW-Authenticate", challenge)])

    def _dispatch(self, host: _Host, request: _Request) -> bytes:
        action = request.action
        if action == "Create":
            body = self._create(host, request)
        elif action == "Command":
            body = self._command(host, request)
        elif action == "Receive":
            body = self._receive(host, request)
        elif action == "Send":
            body = self._send(host, request)
        elif action == "Signal":
            body = self._signal(host, request)
        elif action == "Delete":
            body = self._delete(host, request)
        elif action == "Get":
            body = self._get(host, request)
        else:
            raise _WsmanFault(
                _FAULT_NOT_IMPLEMENTED,
                "a:ActionNotSupported",
                f"The ocsps lab does not implement the action {request.action_uri}.",
                receiver=False,
            )
        return _envelope(_RESPONSE_ACTIONS[action], request.message_id, body)

    # -- actions -----------------------------------------------------------------------------------

    def _create(self, host: _Host, request: _Request) -> str:
        if not request.resource_uri.startswith(_PS_RESOURCE_PREFIX):
            raise _WsmanFault(
                _FAULT_NOT_IMPLEMENTED,
                "w:DestinationUnreachable",
                f"The ocsps lab serves PowerShell shells only, not {request.resource_uri}.",
                receiver=False,
            )
        shell_el = request.body.find("rsp:Shell", _NS)
        creation = shell_el.find("pwsh:creationXml", _NS) if shell_el is not None else None
        if shell_el is None or creation is None or not (creation.text or "").strip():
            raise _WsmanFault(_FAULT_FAILED, "w:InvalidParameter", "no creationXml", receiver=False)
        shell_id = (shell_el.attrib.get("ShellId") or str(uuid.uuid4())).upper()
        data = _b64(creation.text or "")
        shell = _Shell(host, shell_id, request.resource_uri, _new_pool(host.spec))
        with shell.cond:
            shell.pool.receive_data(PSRPPayload(data, StreamType.default, None))
            self._process_events(host, shell)
        with host.lock:
            if shell_id in host.shells:
                # A client re-sending Create after a lost reply must not replace (and leak) the live shell.
                raise _WsmanFault(_FAULT_FAILED, "w:AlreadyExists", f"Shell {shell_id} already exists.")
            host.shells[shell_id] = shell
        selector = f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        return (
            f"<x:ResourceCreated><a:Address>{escape(self.url(host.spec.fqdn))}</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{escape(request.resource_uri)}</w:ResourceURI>"
            f"{selector}</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{escape(request.resource_uri)}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(self._username)}</rsp:Owner><rsp:ClientIP>{self._address}</rsp:ClientIP>"
            "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
            "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
        )

    def _shell_for(self, host: _Host, request: _Request) -> _Shell:
        shell_id = request.selectors.get("ShellId", "")
        if not shell_id:
            raise _WsmanFault(_FAULT_FAILED, "w:InvalidSelectors", "The request has no ShellId selector.")
        return host.shell(shell_id)

    def _command(self, host: _Host, request: _Request) -> str:
        shell = self._shell_for(host, request)
        line = request.body.find("rsp:CommandLine", _NS)
        if line is None:
            raise _WsmanFault(_FAULT_FAILED, "w:InvalidParameter", "no CommandLine", receiver=False)
        command_id = (line.attrib.get("CommandId") or str(uuid.uuid4())).upper()
        pipeline_id = _uuid(command_id)
        data = b"".join(_b64(arg.text or "") for arg in line.findall("rsp:Arguments", _NS))
        with shell.cond:
            if shell.closed:
                raise _shell_not_found(shell.id)
            if pipeline_id in shell.pipes:
                raise _WsmanFault(_FAULT_FAILED, "w:AlreadyExists", f"Command {command_id} already exists.")
            # The ServerPipeline must exist before psrpcore sees its CreatePipeline message.
            shell.pipes[pipeline_id] = _Pipe(shell, pipeline_id, command_id)
            if data:
                shell.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
                self._process_events(host, shell)
        return f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"

    def _send(self, host: _Host, request: _Request) -> str:
        shell = self._shell_for(host, request)
        send = request.body.find("rsp:Send", _NS)
        streams = send.findall("rsp:Stream", _NS) if send is not None else []
        with shell.cond:
            if shell.closed:
                raise _shell_not_found(shell.id)
            for stream in streams:
                data = _b64(stream.text or "")
                if not data:
                    continue
                command_id = stream.attrib.get("CommandId")
                pipeline_id = _uuid(command_id) if command_id else None
                kind = StreamType.prompt_response if stream.attrib.get("Name") == "pr" else StreamType.default
                shell.pool.receive_data(PSRPPayload(data, kind, pipeline_id))
            self._process_events(host, shell)
        return "<rsp:SendResponse/>"

    def _receive(self, host: _Host, request: _Request) -> str:
        shell = self._shell_for(host, request)
        receive = request.body.find("rsp:Receive", _NS)
        desired = receive.find("rsp:DesiredStream", _NS) if receive is not None else None
        command_id = desired.attrib.get("CommandId") if desired is not None else None
        target = _uuid(command_id) if command_id else None
        raw_budget = max(256, (request.max_envelope - _ENVELOPE_OVERHEAD) * 3 // 4)
        deadline = time.monotonic() + max(0.0, request.operation_timeout)
        linger_until: float | None = None

        with shell.cond:
            while True:
                if self._stopping.is_set():
                    raise _Drop()
                if shell.closed:
                    raise _shell_not_found(shell.id)
                pipe = shell.pipes.get(target) if target is not None else None
                if target is not None and pipe is None:
                    raise _WsmanFault(
                        FAULT_SHELL_NOT_FOUND,
                        "w:InvalidSelectors",
                        f"The command {command_id} was not found in shell {shell.id}.",
                    )
                stuck = pipe is not None and host.faults.is_stuck()
                if not stuck:
                    self._pump(shell, raw_budget)
                    queue = shell.outbox.get(target)
                    finished = pipe is not None and pipe.finished
                    if queue:
                        now = time.monotonic()
                        if linger_until is None:
                            linger_until = now + self._linger
                        full = sum(len(fragment) for fragment in queue) >= raw_budget
                        if pipe is None or finished or full or now >= linger_until:
                            return self._receive_reply(shell, target, command_id, queue, raw_budget, finished)
                    elif finished:
                        return self._receive_reply(shell, target, command_id, deque(), raw_budget, True)
                now = time.monotonic()
                if now >= deadline:
                    raise _timeout_fault()
                wake = deadline if linger_until is None or stuck else min(deadline, linger_until)
                shell.cond.wait(max(0.001, wake - now))

    def _receive_reply(
        self,
        shell: _Shell,
        target: uuid.UUID | None,
        command_id: str | None,
        queue: deque[bytes],
        raw_budget: int,
        finished: bool,
    ) -> str:
        chunks: list[bytes] = []
        size = 0
        while queue and (not chunks or size + len(queue[0]) <= raw_budget):
            fragment = queue.popleft()
            chunks.append(fragment)
            size += len(fragment)
        command_attr = f" CommandId={quoteattr(command_id)}" if command_id else ""
        parts = ["<rsp:ReceiveResponse>"]
        if chunks:
            data = base64.b64encode(b"".join(chunks)).decode()
            parts.append(f'<rsp:Stream Name="stdout"{command_attr}>{data}</rsp:Stream>')
        if target is not None:
            done = finished and not queue
            state = _STATE_DONE if done else _STATE_RUNNING
            parts.append(f'<rsp:CommandState{command_attr} State="{state}"/>')
        parts.append("</rsp:ReceiveResponse>")
        return "".join(parts)

    def _signal(self, host: _Host, request: _Request) -> str:
        shell = self._shell_for(host, request)
        signal_el = request.body.find("rsp:Signal", _NS)
        if signal_el is None:
            raise _WsmanFault(_FAULT_FAILED, "w:InvalidParameter", "Signal without body.", receiver=False)
        command_id = signal_el.attrib.get("CommandId", "")
        code_el = signal_el.find("rsp:Code", _NS)
        code = (code_el.text or "").strip() if code_el is not None else ""
        terminate = code.lower() == _SIGNAL_TERMINATE
        if not terminate and code not in _SIGNAL_CTRL_C:
            raise _WsmanFault(_FAULT_NOT_IMPLEMENTED, "w:InvalidParameter", f"Unsupported signal {code}.")
        with shell.cond:
            pipe = shell.pipes.get(_uuid(command_id)) if command_id else None
            if pipe is None:
                if terminate:
                    # Closing a pipeline twice (pypsrp stop() then close()) is harmless.
                    return "<rsp:SignalResponse/>"
                raise _WsmanFault(
                    FAULT_SHELL_NOT_FOUND,
                    "w:InvalidSelectors",
                    f"The command {command_id} was not found in shell {shell.id}.",
                )
            self._stop_pipe(pipe)
            if terminate:
                self._close_pipe(shell, pipe)
            shell.cond.notify_all()
        return "<rsp:SignalResponse/>"

    def _delete(self, host: _Host, request: _Request) -> str:
        shell = self._shell_for(host, request)
        with host.lock:
            host.shells.pop(shell.id, None)
        self._close_shell(shell)
        return ""

    def _get(self, host: _Host, request: _Request) -> str:
        if request.resource_uri == _SHELL_URI or request.resource_uri.startswith(_PS_RESOURCE_PREFIX):
            shell = self._shell_for(host, request)
            return (
                f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId>"
                f"<rsp:ResourceUri>{escape(shell.resource_uri)}</rsp:ResourceUri>"
                f"<rsp:Owner>{escape(self._username)}</rsp:Owner><rsp:State>Connected</rsp:State></rsp:Shell>"
            )
        if request.resource_uri.rstrip("/").endswith("/config"):
            kb = host.spec.effective_max_envelope_kb
            return f"<cfg:Config><cfg:MaxEnvelopeSizekb>{kb}</cfg:MaxEnvelopeSizekb></cfg:Config>"
        raise _WsmanFault(
            _FAULT_NOT_IMPLEMENTED,
            "w:DestinationUnreachable",
            f"The ocsps lab cannot Get {request.resource_uri}.",
            receiver=False,
        )

    # -- psrpcore glue (caller holds shell.cond) ------------------------------------------------

    def _process_events(self, host: _Host, shell: _Shell) -> None:
        pool = shell.pool
        while True:
            event = pool.next_event()
            if event is None:
                break
            if isinstance(event, CreatePipelineEvent):
                pipe = shell.pipes.get(event.pipeline_id)
                if pipe is None:
                    continue
                pipe.metadata = event.pipeline
                if pipe.metadata.no_input:
                    self._start_pipe(host, shell, pipe)
            elif isinstance(event, PipelineInputEvent):
                pipe = shell.pipes.get(event.pipeline_id)
                if pipe is not None:
                    pipe.inputs.append(event.data)
            elif isinstance(event, EndOfPipelineInputEvent):
                pipe = shell.pipes.get(event.pipeline_id)
                if pipe is not None and pipe.metadata is not None and pipe.thread is None:
                    self._start_pipe(host, shell, pipe)
            elif isinstance(event, GetCommandMetadataEvent):
                pipe = shell.pipes.get(event.pipeline_id)
                if pipe is not None:
                    pipe.ps._change_state(PSInvocationState.Running, emit=False)
                    pipe.sink.write_error(
                        "GetCommandMetadata is not supported by the ocsps lab.",
                        category="NotImplemented",
                        error_id="LabNotImplemented",
                        terminating=True,
                    )
            elif isinstance(event, (SetMaxRunspacesEvent, SetMinRunspacesEvent, ResetRunspaceStateEvent)):
                pool.runspace_availability_response(event.ci, True)
            elif isinstance(event, GetAvailableRunspacesEvent):
                pool.runspace_availability_response(event.ci, max(1, pool.max_runspaces))
        shell.cond.notify_all()

    def _start_pipe(self, host: _Host, shell: _Shell, pipe: _Pipe) -> None:
        # A real server does not send a Running PipelineState; emitting one would cost short commands an
        # extra Receive round trip, so the state changes silently.
        pipe.ps._change_state(PSInvocationState.Running, emit=False)
        metadata = pipe.metadata
        commands = tuple(
            CommandCall(
                text=str(cmd.command_text),
                is_script=bool(cmd.is_script),
                parameters=tuple(
                    (None if name is None else str(name), value) for name, value in cmd.parameters
                ),
                end_of_statement=bool(cmd.end_of_statement),
            )
            for cmd in metadata.commands
        )
        invocation = Invocation(
            commands=commands,
            input=tuple(pipe.inputs),
            shell_id=shell.id,
            command_id=pipe.command_id,
            protocol_version=host.spec.protocol_version,
            ps_version=host.spec.effective_ps_version,
        )
        thread = threading.Thread(
            target=self._run_executor,
            args=(host, pipe, invocation),
            name=f"ocsps-lab-pipeline-{pipe.command_id}",
            daemon=True,
        )
        pipe.thread = thread
        thread.start()

    def _run_executor(self, host: _Host, pipe: _Pipe, invocation: Invocation) -> None:
        sink = pipe.sink
        try:
            self._executor(host.spec.fqdn, invocation, sink)
        except PipelineFailure as failure:
            sink.fail(failure)
        except Exception as exc:
            log.exception("%s: executor failed for %s", host.spec.fqdn, pipe.command_id)
            sink.fail(
                PipelineFailure(
                    f"ocsps lab executor raised {type(exc).__name__}: {exc}",
                    error_id="LabExecutorError",
                )
            )
        finally:
            sink._complete()

    def _pump(self, shell: _Shell, raw_budget: int) -> None:
        """Move everything psrpcore queued into per-target fragment queues.

        psrpcore keeps one send buffer for the whole pool; a Receive for one pipeline must not get another
        pipeline's messages, and fragments are cut no larger than what one reply may carry.
        """
        pool = shell.pool
        while True:
            payload = pool.data_to_send(raw_budget)
            if payload is None:
                return
            target = payload.pipeline_id
            if target is not None and target not in shell.pipes:
                continue
            queue = shell.outbox.setdefault(target, deque())
            queue.extend(_split_fragments(payload.data))

    def _stop_pipe(self, pipe: _Pipe) -> None:
        pipe.sink.cancelled.set()
        state = pipe.ps.state
        if state == PSInvocationState.NotStarted:
            pipe.ps._change_state(PSInvocationState.Running, emit=False)
            state = PSInvocationState.Running
        if state in (PSInvocationState.Running, PSInvocationState.Stopping):
            pipe.ps.stop()

    def _close_pipe(self, shell: _Shell, pipe: _Pipe) -> None:
        pipe.ps.close()
        shell.pipes.pop(pipe.id, None)
        shell.outbox.pop(pipe.id, None)

    def _close_shell(self, shell: _Shell) -> list[threading.Thread]:
        workers: list[threading.Thread] = []
        with shell.cond:
            if shell.closed:
                return workers
            for pipe in list(shell.pipes.values()):
                self._stop_pipe(pipe)
                self._close_pipe(shell, pipe)
                if pipe.thread is not None:
                    workers.append(pipe.thread)
            if shell.pool.state in (RunspacePoolState.Opened, RunspacePoolState.Closing):
                shell.pool.close()
            shell.closed = True
            shell.outbox.clear()
            shell.cond.notify_all()
        return workers


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=False)
    except binascii.Error as exc:
        fault = _WsmanFault(_FAULT_FAILED, "w:InvalidParameter", f"invalid base64: {exc}", receiver=False)
        raise fault from exc


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _WsmanFault(
            _FAULT_FAILED, "w:InvalidParameter", f"{value!r} is not a PSRP command id.", receiver=False
        ) from None
