"""Reading WinRM exchanges down to what a client can observe: SOAP action or fault, PSRP messages, states.

Both sides of a comparison go through :func:`observe`, the recorded real reply and the lab's, so what is
compared is exactly what this module extracts: ids, timestamps, addresses and host names are left out.
"""

from __future__ import annotations

import base64
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from psrpcore.types import PSRPMessageType

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
}

_FIELDS = {
    PSRPMessageType.SessionCapability: ("protocolversion", "SerializationVersion"),
    PSRPMessageType.RunspacePoolState: ("RunspaceState",),
    PSRPMessageType.PipelineState: ("PipelineState", "FullyQualifiedErrorId", "ErrorCategory_Category"),
    PSRPMessageType.ErrorRecord: ("FullyQualifiedErrorId", "ErrorCategory_Category"),
    PSRPMessageType.RunspaceAvailability: ("SetMinMaxRunspacesResponse",),
}
"""What is compared inside each PSRP message type (other messages are compared by type only)."""


@dataclass(frozen=True)
class Message:
    """One PSRP message: its type, the fields worth comparing, and its CLIXML for replaying."""

    type: PSRPMessageType
    fields: tuple[tuple[str, str], ...]
    xml: str

    def field(self, name: str) -> str | None:
        return dict(self.fields).get(name)

    def __str__(self) -> str:
        details = " ".join(f"{k}={v}" for k, v in self.fields)
        return f"{self.type.name}({details})" if details else self.type.name


@dataclass
class Observation:
    """What a client sees in one reply."""

    action: str
    """Response action name (``CreateResponse``...) or ``Fault``."""
    fault: tuple[str, str, str] | None = None
    """(role, subcode, WSManFault code) of a fault."""
    messages: list[Message] = field(default_factory=list)
    command_state: tuple[str, str | None] | None = None
    """(state name, exit code) when the reply carries a CommandState."""
    shell_id: str | None = None
    command_id: str | None = None
    describes_shell: bool = False
    """Whether a Create reply also describes the shell (``rsp:Shell``) besides the reference to it."""
    streams: int = 0


class Defragmenter:
    """Reassembles PSRP messages from fragments, which may span several rsp:Stream elements or replies."""

    def __init__(self) -> None:
        self._parts: dict[int, bytes] = {}

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        offset = 0
        while offset + 21 <= len(data):
            object_id = struct.unpack(">Q", data[offset : offset + 8])[0]
            flags = data[offset + 16]
            length = struct.unpack(">I", data[offset + 17 : offset + 21])[0]
            chunk = data[offset + 21 : offset + 21 + length]
            offset += 21 + length
            self._parts[object_id] = (b"" if flags & 1 else self._parts.get(object_id, b"")) + chunk
            if flags & 2:
                out.append(_message(self._parts.pop(object_id)))
        return out


def _message(raw: bytes) -> Message:
    kind = PSRPMessageType(struct.unpack("<I", raw[4:8])[0])
    xml = raw[40:].removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    fields: list[tuple[str, str]] = []
    for name in _FIELDS.get(kind, ()):
        match = re.search(rf'N="{name}"[^>]*>([^<]*)<', xml)
        if match:
            fields.append((name, match.group(1)))
    if kind is PSRPMessageType.ApplicationPrivateData:
        # PSVersionTable is a dictionary: <En><S N="Key">PSVersion</S><Version N="Value">5.1...</Version></En>
        for key in ("PSVersion", "PSRemotingProtocolVersion"):
            match = re.search(rf'<S N="Key">{key}</S><[^>]*N="Value"[^>]*>([^<]*)<', xml)
            if match:
                fields.append((key, ".".join(match.group(1).split(".")[:2])))
    return Message(kind, tuple(fields), xml)


def action_of(envelope: str) -> str:
    root = ET.fromstring(envelope)
    return (root.findtext("s:Header/a:Action", namespaces=NS) or "").rsplit("/", 1)[-1]


def observe(envelope: bytes | str, defrag: Defragmenter) -> Observation:
    root = ET.fromstring(envelope)
    body = root.find("s:Body", NS)
    assert body is not None
    fault = body.find("s:Fault", NS)
    if fault is not None:
        detail = fault.find(".//f:WSManFault", NS)
        return Observation(
            "Fault",
            fault=(
                fault.findtext("s:Code/s:Value", namespaces=NS) or "",
                fault.findtext("s:Code/s:Subcode/s:Value", namespaces=NS) or "",
                detail.attrib.get("Code", "") if detail is not None else "",
            ),
        )
    obs = Observation(action_of(envelope if isinstance(envelope, str) else envelope.decode()))
    selector = body.find("x:ResourceCreated/a:ReferenceParameters/w:SelectorSet/w:Selector", NS)
    if selector is not None:
        obs.shell_id = (selector.text or "").upper()
        obs.describes_shell = body.find("rsp:Shell", NS) is not None
    command = body.findtext("rsp:CommandResponse/rsp:CommandId", namespaces=NS)
    if command:
        obs.command_id = command.upper()
    for stream in body.findall("rsp:ReceiveResponse/rsp:Stream", NS):
        obs.streams += 1
        obs.messages.extend(defrag.feed(base64.b64decode(stream.text or "")))
    state = body.find("rsp:ReceiveResponse/rsp:CommandState", NS)
    if state is not None:
        obs.command_state = (
            state.attrib.get("State", "").rsplit("/", 1)[-1],
            state.findtext("rsp:ExitCode", namespaces=NS),
        )
    return obs


def request_messages(envelope: str, defrag: Defragmenter) -> list[Message]:
    """PSRP messages a client request carries (Create, Command, Send)."""
    body = ET.fromstring(envelope).find("s:Body", NS)
    assert body is not None
    out: list[Message] = []
    for element in body.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag in ("creationXml", "Arguments", "Stream") and element.text:
            out.extend(defrag.feed(base64.b64decode(element.text)))
    return out
