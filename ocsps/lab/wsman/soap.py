"""WS-Management SOAP as WinRM speaks it: reading requests, building replies and faults.

Pure functions over bytes and XML; no state. The shapes matter to pypsrp: every reply echoes the request's
MessageID in ``wsa:RelatesTo``, and a fault is an HTTP 500 whose ``WSManFault`` carries the HRESULT code
pypsrp dispatches on.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape, quoteattr

NS: Final = {
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

ACTION_NAMES: Final = {
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create": "Create",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete": "Delete",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get": "Get",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command": "Command",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive": "Receive",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send": "Send",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal": "Signal",
}
RESPONSE_ACTIONS: Final = {
    "Create": "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
    "Delete": "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
    "Get": "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse",
    "Command": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
    "Receive": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
    "Send": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse",
    "Signal": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse",
}
FAULT_ACTION: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
_ANONYMOUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
SHELL_URI: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
PS_RESOURCE_PREFIX: Final = "http://schemas.microsoft.com/powershell/"
STATE_DONE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
STATE_RUNNING: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
SIGNAL_TERMINATE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
SIGNAL_CTRL_C: Final = (
    "powershell/signal/ctrl_c",
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
)
SOAP_CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"

# WSManFault codes (HRESULTs) the client recognises.
FAULT_OPERATION_TIMEOUT: Final = 2150858793  # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
FAULT_SHELL_NOT_FOUND: Final = 2150858843  # 0x8033805B, what WinRM answers for an unknown ShellId
FAULT_MAX_COMMANDS_PER_SHELL: Final = 2150859241
"""0x803381E9 ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL_PPQ (Windows SDK winerror.h): the per-plugin quota
``MaxConcurrentCommandsPerShell``; its text and ``w:InternalError`` subcode are quoted from a real Windows
Server 2012 R2 reply in https://github.com/jborean93/pypsrp/issues/148."""
FAULT_NOT_IMPLEMENTED: Final = 2147500033  # 0x80004001 E_NOTIMPL
FAULT_FAILED: Final = 2147500037  # 0x80004005 E_FAIL

ENVELOPE_OVERHEAD: Final = 2048
"""Bytes of a Receive reply that are not base64 payload (headers, XML around the stream), rounded up."""


class WsmanFault(Exception):
    """Answered as HTTP 500 with a SOAP fault carrying a WSManFault detail."""

    def __init__(
        self,
        code: int,
        subcode: str,
        message: str,
        *,
        receiver: bool = True,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.message = message
        """The WSManFault message (what the shell provider says)."""
        self.receiver = receiver
        self.reason = reason or message
        """The SOAP Reason (what the WS-Management service says); the message when not given."""
        self.detail = detail
        """A ``w:FaultDetail`` URI, when WinRM sends one."""


@dataclass
class Request:
    action_uri: str
    message_id: str
    resource_uri: str
    max_envelope: int
    operation_timeout: float
    selectors: dict[str, str]
    body: ET.Element

    @property
    def action(self) -> str:
        return ACTION_NAMES.get(self.action_uri, "Other")


_DURATION_RE = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _parse_duration(text: str | None, default: float) -> float:
    if not text:
        return default
    match = _DURATION_RE.match(text.strip())
    if not match:
        return default
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0.0)


def parse_request(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"request is not XML: {exc}") from exc
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise ValueError("request is not a SOAP envelope")

    def text(path: str) -> str:
        element = header.find(path, NS)
        return (element.text or "").strip() if element is not None else ""

    selectors = {
        sel.attrib.get("Name", ""): (sel.text or "").strip()
        for sel in header.findall("w:SelectorSet/w:Selector", NS)
    }
    try:
        max_envelope = int(text("w:MaxEnvelopeSize") or "153600")
    except ValueError:
        max_envelope = 153600
    return Request(
        action_uri=text("a:Action"),
        message_id=text("a:MessageID"),
        resource_uri=text("w:ResourceURI"),
        max_envelope=max_envelope,
        operation_timeout=_parse_duration(text("w:OperationTimeout"), 60.0),
        selectors=selectors,
        body=body,
    )


def envelope(action_uri: str, relates_to: str, body: str) -> bytes:
    namespaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items())
    return (
        f'<s:Envelope xml:lang="en-US" {namespaces}><s:Header>'
        f"<a:Action>{escape(action_uri)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{_ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault_envelope(fault: WsmanFault, relates_to: str, machine: str) -> bytes:
    role = "s:Receiver" if fault.receiver else "s:Sender"
    detail = f"<w:FaultDetail>{escape(fault.detail)}</w:FaultDetail>" if fault.detail else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{role}</s:Value><s:Subcode><s:Value>{escape(fault.subcode)}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        f"<s:Detail>{detail}<f:WSManFault Code={quoteattr(str(fault.code))} Machine={quoteattr(machine)}>"
        f"<f:Message>{escape(fault.message)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(FAULT_ACTION, relates_to, body)


_INVALID_SELECTORS_REASON: Final = (
    "The WS-Management service cannot process the request because the request contained invalid selectors "
    "for the resource. "
)
_UNEXPECTED_SELECTORS: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"


def shell_not_found(shell_id: str) -> WsmanFault:
    """What WinRM answers for a ShellId it does not know (a client error: ``s:Sender``)."""
    return WsmanFault(
        FAULT_SHELL_NOT_FOUND,
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and try again.",
        receiver=False,
        reason=_INVALID_SELECTORS_REASON,
        detail=_UNEXPECTED_SELECTORS,
    )


def unknown_command() -> WsmanFault:
    """What WinRM answers for a CommandId the shell does not hold (texts from a recorded real reply)."""
    return WsmanFault(
        FAULT_SHELL_NOT_FOUND,
        "w:InvalidSelectors",
        "The Windows Remote Shell received a request to perform an operation on a command identifier that "
        "does not exist. Either the command has completed execution or the client specified an invalid "
        "command identifier. ",
        receiver=False,
        reason=_INVALID_SELECTORS_REASON,
        detail=_UNEXPECTED_SELECTORS,
    )


def too_many_commands() -> WsmanFault:
    return WsmanFault(
        FAULT_MAX_COMMANDS_PER_SHELL,
        "w:InternalError",
        "The WS-Management service cannot process the request. The maximum number of concurrent commands per "
        "shell has been exceeded. Retry the request later or raise the Maximum Commands per Shell quota.",
    )


def timeout_fault() -> WsmanFault:
    return WsmanFault(
        FAULT_OPERATION_TIMEOUT,
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.",
    )


def decode_b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=False)
    except binascii.Error as exc:
        fault = WsmanFault(FAULT_FAILED, "w:InvalidParameter", f"invalid base64: {exc}", receiver=False)
        raise fault from exc


def command_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise WsmanFault(
            FAULT_FAILED, "w:InvalidParameter", f"{value!r} is not a PSRP command id.", receiver=False
        ) from None
