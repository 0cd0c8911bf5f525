"""The WSMan Shell resource as WinRM serves it to PowerShell: Create, Command, Send, Receive, Signal...

Each action reads its request, changes the shell's state under the shell's lock and answers with the SOAP
body WinRM would send. PSRP itself (what the base64 streams mean) is psrpcore's business, reached through
:mod:`ocsps.lab.wsman.psrp`.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

from psrpcore import PSRPPayload, StreamType

from ocsps.lab.wsman.executor import Executor
from ocsps.lab.wsman.psrp import (
    close_pipe,
    close_shell,
    new_pool,
    opens_pool_state,
    pipeline_id_in,
    process_events,
    pump,
    spec_call_ids,
    start_pipe,
    stop_pipe,
)
from ocsps.lab.wsman.soap import (
    ENVELOPE_OVERHEAD,
    FAULT_FAILED,
    FAULT_NOT_IMPLEMENTED,
    NS,
    PS_RESOURCE_PREFIX,
    RESPONSE_ACTIONS,
    SHELL_URI,
    SIGNAL_CTRL_C,
    SIGNAL_TERMINATE,
    STATE_DONE,
    Request,
    WsmanFault,
    command_uuid,
    decode_b64,
    envelope,
    shell_not_found,
    timeout_fault,
    too_many_commands,
    unknown_command,
)
from ocsps.lab.wsman.state import Host, Pipe, Shell


class Drop(Exception):
    """Close the connection without a reply."""


class ShellService:
    """Answers the WSMan actions of PowerShell shells for every simulated server of one listener.

    ``owner`` and ``client_ip`` are what a Create reply reports; ``url`` gives a host's endpoint address.
    ``stopping`` is set when the listener shuts down, so blocked Receives give up at once. ``linger`` is how
    long a Receive that already has output waits for more before replying (see :class:`LabServer`).
    """

    def __init__(
        self,
        executor: Executor,
        *,
        owner: str,
        client_ip: str,
        url: Callable[[str], str],
        stopping: threading.Event,
        linger: float,
    ) -> None:
        self._executor = executor
        self._owner = owner
        self._client_ip = client_ip
        self._url = url
        self._stopping = stopping
        self._linger = linger

    def dispatch(self, host: Host, request: Request) -> bytes:
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
            raise WsmanFault(
                FAULT_NOT_IMPLEMENTED,
                "a:ActionNotSupported",
                f"The ocsps lab does not implement the action {request.action_uri}.",
                receiver=False,
            )
        return envelope(RESPONSE_ACTIONS[action], request.message_id, body)

    def _create(self, host: Host, request: Request) -> str:
        if not request.resource_uri.startswith(PS_RESOURCE_PREFIX):
            raise WsmanFault(
                FAULT_NOT_IMPLEMENTED,
                "w:DestinationUnreachable",
                f"The ocsps lab serves PowerShell shells only, not {request.resource_uri}.",
                receiver=False,
            )
        shell_el = request.body.find("rsp:Shell", NS)
        creation = shell_el.find("pwsh:creationXml", NS) if shell_el is not None else None
        if shell_el is None or creation is None or not (creation.text or "").strip():
            raise WsmanFault(FAULT_FAILED, "w:InvalidParameter", "no creationXml", receiver=False)
        # WinRM 2.0 (PowerShell 2.0 hosts) names the shell itself; later WinRM keeps the client's ShellId.
        client_id = shell_el.attrib.get("ShellId")
        legacy = host.spec.server_assigns_ids
        shell_id = (str(uuid.uuid4()) if legacy or not client_id else client_id).upper()
        data = decode_b64(creation.text or "")
        shell = Shell(host, shell_id, request.resource_uri, new_pool(host.spec))
        with shell.cond:
            shell.pool.receive_data(PSRPPayload(data, StreamType.default, None))
            self._process(host, shell)
        with host.lock:
            if shell_id in host.shells:
                # A client re-sending Create after a lost reply must not replace (and leak) the live shell.
                raise WsmanFault(FAULT_FAILED, "w:AlreadyExists", f"Shell {shell_id} already exists.")
            host.shells[shell_id] = shell
        selector = f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        created = (
            f"<x:ResourceCreated><a:Address>{escape(self._url(host.spec.fqdn))}</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{escape(request.resource_uri)}</w:ResourceURI>"
            f"{selector}</a:ReferenceParameters></x:ResourceCreated>"
        )
        if legacy:
            return created  # WinRM 2.0 answers with the reference only, no rsp:Shell description
        return created + (
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{escape(request.resource_uri)}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(self._owner)}</rsp:Owner><rsp:ClientIP>{self._client_ip}</rsp:ClientIP>"
            "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
            "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
        )

    def _shell_for(self, host: Host, request: Request) -> Shell:
        shell_id = request.selectors.get("ShellId", "")
        if not shell_id:
            raise WsmanFault(FAULT_FAILED, "w:InvalidSelectors", "The request has no ShellId selector.")
        return host.shell(shell_id)

    def _command(self, host: Host, request: Request) -> str:
        shell = self._shell_for(host, request)
        line = request.body.find("rsp:CommandLine", NS)
        if line is None:
            raise WsmanFault(FAULT_FAILED, "w:InvalidParameter", "no CommandLine", receiver=False)
        client_id = line.attrib.get("CommandId")
        data = b"".join(decode_b64(arg.text or "") for arg in line.findall("rsp:Arguments", NS))
        # The PSRP pipeline id is the client's; the WSMan CommandId is the client's too, except on WinRM 2.0
        # (PowerShell 2.0 hosts), which names every command itself.
        pipeline_id = pipeline_id_in(data) or (command_uuid(client_id) if client_id else uuid.uuid4())
        if host.spec.server_assigns_ids or not client_id:
            command_id = str(uuid.uuid4()).upper()
        else:
            command_id = client_id.upper()
        with shell.cond:
            if shell.closed:
                raise shell_not_found(shell.id)
            if pipeline_id in shell.pipes or command_id in shell.commands:
                raise WsmanFault(FAULT_FAILED, "w:AlreadyExists", f"Command {command_id} already exists.")
            if len(shell.pipes) >= host.spec.max_commands_per_shell:
                # Commands count until the client terminates them (Signal terminate), finished or not.
                raise too_many_commands()
            # The ServerPipeline must exist before psrpcore sees its CreatePipeline message.
            pipe = Pipe(shell, pipeline_id, command_id)
            shell.pipes[pipeline_id] = pipe
            shell.commands[command_id] = pipe
            if data:
                shell.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
                self._process(host, shell)
        return f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"

    def _send(self, host: Host, request: Request) -> str:
        shell = self._shell_for(host, request)
        send = request.body.find("rsp:Send", NS)
        streams = send.findall("rsp:Stream", NS) if send is not None else []
        with shell.cond:
            if shell.closed:
                raise shell_not_found(shell.id)
            for stream in streams:
                data = decode_b64(stream.text or "")
                if not data:
                    continue
                command_id = stream.attrib.get("CommandId")
                pipeline_id = self._pipe(shell, command_id).id if command_id else None
                if pipeline_id is None:
                    data = spec_call_ids(data)
                kind = StreamType.prompt_response if stream.attrib.get("Name") == "pr" else StreamType.default
                shell.pool.receive_data(PSRPPayload(data, kind, pipeline_id))
            self._process(host, shell)
        return "<rsp:SendResponse/>"

    def _receive(self, host: Host, request: Request) -> str:
        shell = self._shell_for(host, request)
        receive = request.body.find("rsp:Receive", NS)
        desired = receive.find("rsp:DesiredStream", NS) if receive is not None else None
        command_id = desired.attrib.get("CommandId") if desired is not None else None
        raw_budget = max(256, (request.max_envelope - ENVELOPE_OVERHEAD) * 3 // 4)
        deadline = time.monotonic() + max(0.0, request.operation_timeout)
        linger_until: float | None = None

        with shell.cond:
            while True:
                if self._stopping.is_set():
                    raise Drop()
                if shell.closed:
                    raise shell_not_found(shell.id)
                pipe = self._pipe(shell, command_id) if command_id else None
                target = pipe.id if pipe is not None else None
                stuck = pipe is not None and host.faults.is_stuck()
                if not stuck:
                    pump(shell, raw_budget)
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
                    raise timeout_fault()
                wake = deadline if linger_until is None or stuck else min(deadline, linger_until)
                shell.cond.wait(max(0.001, wake - now))

    def _receive_reply(
        self,
        shell: Shell,
        target: uuid.UUID | None,
        command_id: str | None,
        queue: deque[bytes],
        raw_budget: int,
        finished: bool,
    ) -> str:
        command_attr = f" CommandId={quoteattr(command_id)}" if command_id else ""
        parts = ["<rsp:ReceiveResponse>"]
        size = 0
        while queue and (size == 0 or size + len(queue[0]) <= raw_budget):
            if size and target is None and opens_pool_state(queue[0]):
                # A real server answers the capability exchange first and reports the pool Opened in the
                # next Receive (opening the runspace takes a moment): every recorded session does so.
                break
            # One rsp:Stream per PSRP fragment, as WinRM sends them.
            fragment = queue.popleft()
            size += len(fragment)
            data = base64.b64encode(fragment).decode()
            parts.append(f'<rsp:Stream Name="stdout"{command_attr}>{data}</rsp:Stream>')
        if target is not None and finished and not queue:
            # WinRM reports a command's state only once it is done, with the exit code PowerShell sets.
            parts.append(
                f'<rsp:CommandState{command_attr} State="{STATE_DONE}"><rsp:ExitCode>0</rsp:ExitCode>'
                "</rsp:CommandState>"
            )
        parts.append("</rsp:ReceiveResponse>")
        return "".join(parts)

    @staticmethod
    def _pipe(shell: Shell, command_id: str) -> Pipe:
        pipe = shell.commands.get(command_id.upper())
        if pipe is None:
            raise unknown_command()
        return pipe

    def _signal(self, host: Host, request: Request) -> str:
        shell = self._shell_for(host, request)
        signal_el = request.body.find("rsp:Signal", NS)
        if signal_el is None:
            raise WsmanFault(FAULT_FAILED, "w:InvalidParameter", "Signal without body.", receiver=False)
        command_id = signal_el.attrib.get("CommandId", "")
        code_el = signal_el.find("rsp:Code", NS)
        code = (code_el.text or "").strip() if code_el is not None else ""
        terminate = code.lower() == SIGNAL_TERMINATE
        if not terminate and code not in SIGNAL_CTRL_C:
            raise WsmanFault(FAULT_NOT_IMPLEMENTED, "w:InvalidParameter", f"Unsupported signal {code}.")
        with shell.cond:
            pipe = shell.commands.get(command_id.upper()) if command_id else None
            if pipe is None:
                if terminate:
                    # Closing a pipeline twice (pypsrp stop() then close()) is harmless.
                    return "<rsp:SignalResponse/>"
                raise unknown_command()
            stop_pipe(pipe)
            if terminate:
                close_pipe(shell, pipe)
            shell.cond.notify_all()
        return "<rsp:SignalResponse/>"

    def _delete(self, host: Host, request: Request) -> str:
        shell = self._shell_for(host, request)
        with host.lock:
            host.shells.pop(shell.id, None)
        close_shell(shell)
        return ""

    def _get(self, host: Host, request: Request) -> str:
        if request.resource_uri == SHELL_URI or request.resource_uri.startswith(PS_RESOURCE_PREFIX):
            shell = self._shell_for(host, request)
            return (
                f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId>"
                f"<rsp:ResourceUri>{escape(shell.resource_uri)}</rsp:ResourceUri>"
                f"<rsp:Owner>{escape(self._owner)}</rsp:Owner><rsp:State>Connected</rsp:State></rsp:Shell>"
            )
        if request.resource_uri.rstrip("/").endswith("/config"):
            kb = host.spec.effective_max_envelope_kb
            return f"<cfg:Config><cfg:MaxEnvelopeSizekb>{kb}</cfg:MaxEnvelopeSizekb></cfg:Config>"
        raise WsmanFault(
            FAULT_NOT_IMPLEMENTED,
            "w:DestinationUnreachable",
            f"The ocsps lab cannot Get {request.resource_uri}.",
            receiver=False,
        )

    def _process(self, host: Host, shell: Shell) -> None:
        executor = self._executor
        process_events(shell, lambda pipe: start_pipe(host.spec, shell, pipe, executor))
