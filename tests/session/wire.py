"""The lab's WSMan request handling, in process, behind the ``responses`` library.

pypsrp sends its real HTTP requests; ``responses`` hands each one to :class:`WireLab`, which feeds method,
path, headers and body to the lab's own request handler (``LabServer._handle_post``, the code that serves
loopback sockets) through a stand-in for the socket handler, and returns its status, headers and body.
So every reply is a genuine WSMan/PSRP message built by psrpcore's server side, yet no socket is opened,
and a test can record, replace or break any single exchange.

Basic auth with ``encryption="never"`` keeps the wire readable: every request can be decoded to see which
WSMan action it is, which command it targets and which signal it carries.
"""

from __future__ import annotations

import dataclasses
import email.message
import io
import json
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import RemoteDisconnected
from typing import Any

import requests
import responses
from urllib3.exceptions import ProtocolError

from ocsps.catalog import ActionParam, Product
from ocsps.lab.auth import ConnectionAuth
from ocsps.lab.engine import LabEngine
from ocsps.lab.topology import load_topology
from ocsps.lab.wsman import CommandCall, HostSpec, Invocation, LabServer, PipelineFailure, PipelineSink
from ocsps.powershell.script import RenderedScript
from ocsps.remote.session import ServerSession
from ocsps.remote.settings import ConnectionSettings

USER = "LAB\\admin"
PASSWORD = "Wire-Passw0rd"
ADDRESS = "127.0.0.1"
PORT = 5985
HOST = "med01.contoso.com"
"""A Skype for Business 2015 Mediation server of the default lab topology."""

_NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
SIGNAL_CTRL_C = ("powershell/signal/ctrl_c", "powershell/signal/crtl_c")
"""The PowerShell stop signal; MS-PSRP spells it ``crtl_c`` and pypsrp releases differ on the spelling."""
PROBE = re.compile(r"^# probe=([a-z-]+)\s*$", re.MULTILINE)
MODULE_IMPORT = "# ocsps:action=module-import"


@dataclass(frozen=True)
class Exchange:
    """One WSMan request as the server saw it, and what it answered."""

    action: str
    command_id: str | None
    signal: str | None
    status: int | None
    timeout: Any
    """The ``timeout`` pypsrp gave requests for this request (connect, read)."""


class _Handler:
    """Just enough of ``BaseHTTPRequestHandler`` for ``LabServer._handle_post``."""

    def __init__(self, lab: LabServer, path: str, headers: Mapping[str, str], body: bytes) -> None:
        self.path = path
        self.headers = email.message.Message()
        for name, value in headers.items():
            self.headers[name] = value
        del self.headers["Content-Length"]
        self.headers["Content-Length"] = str(len(body))
        self.rfile = io.BytesIO(body)
        self.conn_auth = ConnectionAuth(mode=lab.auth)
        self.reply: tuple[int, dict[str, str], bytes] | None = None

    def send_plain(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        reply_headers = dict(headers)
        if content_type:
            reply_headers["Content-Type"] = content_type
        self.reply = (status, reply_headers, body)

    def drop(self) -> None:
        self.reply = None


@dataclass(frozen=True)
class Request:
    """The fields of a WSMan request that tests look at."""

    action: str
    message_id: str = ""
    shell_id: str = ""
    command_id: str | None = None
    signal: str | None = None


def describe(body: bytes) -> Request:
    """Decode a SOAP request enough to tell which action it is and what it targets."""
    if not body:
        return Request("")
    root = ET.fromstring(body)
    action = root.findtext("s:Header/a:Action", default="", namespaces=_NS).rsplit("/", 1)[-1]
    message_id = root.findtext("s:Header/a:MessageID", default="", namespaces=_NS)
    shell_id = ""
    for selector in root.findall("s:Header/w:SelectorSet/w:Selector", _NS):
        if selector.attrib.get("Name") == "ShellId":
            shell_id = selector.text or ""
    command_id: str | None = None
    signal: str | None = None
    for path in ("s:Body/rsp:Signal", "s:Body/rsp:Receive/rsp:DesiredStream", "s:Body/rsp:CommandLine"):
        element = root.find(path, _NS)
        if element is not None:
            command_id = element.attrib.get("CommandId")
            if path.endswith("Signal"):
                signal = element.findtext("rsp:Code", namespaces=_NS)
            break
    return Request(action, message_id, shell_id, command_id, signal)


Reply = tuple[int, dict[str, str], bytes]
Override = Callable[[Request, requests.PreparedRequest], "Reply | None"]
"""Given a request, a reply to send instead of the lab's (or raise, as requests would), or None."""


class WireLab:
    """A default-topology lab answering pypsrp through ``responses`` (see the module docstring)."""

    def __init__(self, executor: Probes | None = None) -> None:
        self.topology = load_topology()
        self.executor = executor or Probes(LabEngine(self.topology))
        hosts = [
            HostSpec(s.fqdn, protocol_version=s.product.psrp_protocol, ps_version=s.product.powershell)
            for s in self.topology.servers
        ]
        self.server = LabServer(
            hosts,
            executor=self.executor,
            credentials=(USER, PASSWORD),
            auth="basic",
            address=ADDRESS,
            port=PORT,
        )
        self.exchanges: list[Exchange] = []
        self.overrides: list[Override] = []
        self.persistent: list[Override] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what a test uses
    def settings(self, host: str = HOST, **overrides: Any) -> ConnectionSettings:
        values: dict[str, Any] = {
            "host": host,
            "connect_address": ADDRESS,
            "port": PORT,
            "ssl": False,
            "path": self.server.path(host),
            "auth": "basic",
            "username": USER,
            "password": PASSWORD,
            "encryption": "never",
            "no_proxy": True,
            "product": self.product(host).id,
        }
        values.update(overrides)
        return ConnectionSettings(**values)

    def product(self, host: str = HOST) -> Product:
        return self.topology.server(host).product

    def session(
        self, host: str = HOST, *, settings: Mapping[str, Any] | None = None, **options: Any
    ) -> ServerSession:
        options.setdefault("retry_backoff", 0.01)
        return ServerSession(self.settings(host, **(settings or {})), self.product(host), **options)

    def actions(self) -> list[str]:
        with self._lock:
            return [e.action for e in self.exchanges]

    def count(self, action: str) -> int:
        return self.actions().count(action)

    def signals(self) -> list[tuple[str, str]]:
        """(command id, signal code) of every Signal sent, in order, upper- and lower-cased for comparing."""
        with self._lock:
            return [
                ((e.command_id or "").upper(), (e.signal or "").lower())
                for e in self.exchanges
                if e.action == "Signal"
            ]

    def commands(self) -> list[str]:
        """Command ids of every Command sent, upper-cased as the server keys them."""
        with self._lock:
            return [(e.command_id or "").upper() for e in self.exchanges if e.action == "Command"]

    def open_shells(self, host: str = HOST) -> int:
        return self.server.open_shells(host)

    # ------------------------------------------------------------------ responses plumbing
    @contextmanager
    def active(self) -> Iterator[responses.RequestsMock]:
        """Route pypsrp's requests to this lab for the duration of the block."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_callback(responses.POST, re.compile(rf"http://{re.escape(ADDRESS)}:{PORT}/.*"), self)
            try:
                yield mock
            finally:
                for spec in self.server.hosts:  # cancels pipelines still running on the server side
                    self.server.remove_host(spec.fqdn)

    def fail_once(self, action: str, fault: Override) -> None:
        """Let ``fault`` answer the next request of ``action`` (and only that one)."""

        def once(request: Request, prepared: requests.PreparedRequest) -> Reply | None:
            if request.action != action or once not in self.overrides:
                return None
            self.overrides.remove(once)
            return fault(request, prepared)

        self.overrides.append(once)

    def answer_after(self, action: str, fault: Override) -> None:
        """Let the server process every request of ``action``, then answer ``fault`` instead of its reply."""

        def after(request: Request, prepared: requests.PreparedRequest) -> Reply | None:
            if request.action != action:
                return None
            raw = prepared.body
            body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b""
            path = urllib.parse.urlsplit(prepared.url or "").path
            headers = {name: str(value) for name, value in prepared.headers.items()}
            self.server._handle_post(_Handler(self.server, path, headers, body))  # type: ignore[arg-type]
            return fault(request, prepared)

        self.persistent.append(after)

    def armed(self) -> int:
        """Overrides not consumed yet (a fault case must have met the request it was armed for)."""
        return len(self.overrides)

    def __call__(self, request: requests.PreparedRequest) -> Reply:
        raw = request.body
        body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b""
        seen = describe(body)
        reply: Reply | None = None
        try:
            for override in [*self.overrides, *self.persistent]:
                reply = override(seen, request)
                if reply is not None:
                    break
            if reply is None:
                path = urllib.parse.urlsplit(request.url or "").path
                headers = {name: str(value) for name, value in request.headers.items()}
                handler = _Handler(self.server, path, headers, body)
                self.server._handle_post(handler)  # type: ignore[arg-type]
                reply = handler.reply
        finally:
            timeout = getattr(request, "req_kwargs", {}).get("timeout")
            status = None if reply is None else reply[0]
            with self._lock:
                self.exchanges.append(Exchange(seen.action, seen.command_id, seen.signal, status, timeout))
        if reply is None:
            raise requests.exceptions.ConnectionError(
                ProtocolError(
                    "Connection aborted.", RemoteDisconnected("Remote end closed connection without response")
                ),
                request=request,
            )
        return reply


# ---------------------------------------------------------------------- the server side's behaviours


class Probes:
    """The lab engine for ocsps templates, plus scripted behaviours selected by a ``# probe=<name>`` line.

    Every invocation is recorded, so tests can check what the server was asked to run.
    """

    def __init__(self, engine: LabEngine) -> None:
        self.engine = engine
        self.invocations: list[Invocation] = []
        self.cancelled = threading.Event()
        self._lock = threading.Lock()

    def scripts(self) -> list[str]:
        """The script text of each pipeline run (every statement of it, one after the other)."""
        with self._lock:
            return ["\n".join(c.text for c in inv.commands if c.is_script) for inv in self.invocations]

    def __call__(self, server: str, invocation: Invocation, out: PipelineSink) -> None:
        with self._lock:
            self.invocations.append(invocation)
        first = invocation.commands[0] if invocation.commands else None
        if len(invocation.commands) > 1 and first is not None and MODULE_IMPORT in first.text:
            # The first pipeline of a pool imports the product module as its first statement.
            self.engine(server, dataclasses.replace(invocation, commands=invocation.commands[:1]), out)
            invocation = dataclasses.replace(invocation, commands=invocation.commands[1:])
        match = PROBE.search(invocation.script or "")
        if match is None:
            self.engine(server, invocation, out)
            return
        getattr(self, "_" + match.group(1).replace("-", "_"))(invocation.commands[0], out)

    def _echo(self, command: CommandCall, out: PipelineSink) -> None:
        out.write({name: value for name, value in command.parameters if name is not None})

    def _nonterminating_errors(self, command: CommandCall, out: PipelineSink) -> None:
        out.write("before")
        out.write_error(
            "Cannot find any service with service name 'RTCNOPE'.",
            category="ObjectNotFound",
            error_id="NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
            target="RTCNOPE",
            exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
        )
        out.write_error(
            "Access is denied.\r\nThe account is not a CsAdministrator.",
            category="PermissionDenied",
            error_id="AccessDenied,Microsoft.Rtc.Management.GetCsWindowsServiceCmdlet",
            target="med01.contoso.com",
        )
        out.write("after")

    def _terminating_error(self, command: CommandCall, out: PipelineSink) -> None:
        out.write("partial")
        raise PipelineFailure(
            "Service 'Mediation (RTCMEDSRV)' cannot be stopped due to the following error.",
            category="InvalidOperation",
            error_id="CouldNotStopService,Microsoft.PowerShell.Commands.StopServiceCommand",
            target="RTCMEDSRV",
        )

    def _streams(self, command: CommandCall, out: PipelineSink) -> None:
        out.write_warning(
            "Unable to read performance counters: the user is not in Performance Monitor Users."
        )
        out.write_verbose("Performing the operation Stop-CsWindowsService on target RTCMEDSRV.")
        out.write_debug("graceful stop requested")
        for percent in (0, 50, 100):
            out.write_progress("Draining RTCMEDSRV", f"{percent}% of calls ended", percent_complete=percent)
        out.write_progress("Waiting", "no estimate")
        out.write("done")

    def _emit(self, command: CommandCall, out: PipelineSink) -> None:
        """Write the object a parser case describes (JSON in the ``Case`` parameter)."""
        from tests.session.server_objects import server_object

        out.write(server_object(json.loads(str(command.get("Case")))))

    def _hang(self, command: CommandCall, out: PipelineSink) -> None:
        if out.wait_cancelled(60):
            self.cancelled.set()


def probe(
    name: str,
    product: Product,
    *,
    changes_state: bool = False,
    params: Mapping[str, str] | None = None,
) -> RenderedScript:
    """A rendered script whose body selects one of :class:`Probes`' behaviours; ``params`` are bound."""
    values = dict(params or {})
    return RenderedScript(
        action=f"probe-{name}",
        product=product,
        params=tuple(ActionParam(key, "string", "probe value") for key in values),
        body=f"# probe={name}\n'probe'\n",
        values=values,
        changes_state=changes_state,
    )
