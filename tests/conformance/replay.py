"""Replay a recorded client's requests against the lab, in process, and pair each reply with the real one.

The lab is driven through its own request handler (no socket, Basic auth, clear text), exactly like a WinRM
client would drive it. What a pipeline outputs is not the lab's business here (it simulates Skype for Business
cmdlets, not the scripts of the recordings), so a :class:`ReplayExecutor` writes, through the ordinary
:class:`~ocsps.lab.wsman.PipelineSink`, the records the real server produced, one recorded Receive's worth at
a time, released just before the client asks. Everything else (fragments, messages, states, faults, ids, how
output is split across Receives) is the lab's own.
"""

from __future__ import annotations

import base64
import email.message
import io
import re
import threading
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psrpcore.types import PSRPMessageType, deserialize

from ocsps.lab.auth import ConnectionAuth
from ocsps.lab.wsman import HostSpec, Invocation, LabServer, PipelineFailure, PipelineSink
from tests.conformance.recordings import Exchange, Recording
from tests.conformance.wire import NS, Defragmenter, Message, Observation, action_of, observe

USER = "LAB\\admin"
PASSWORD = "Replay-Passw0rd"
WAIT = 10.0
"""Upper bound for hand-offs between the replaying thread and the executor; never reached when all is well."""
_AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class _Handler:
    """The part of an HTTP request handler the lab's endpoint uses."""

    def __init__(self, lab: LabServer, body: bytes) -> None:
        self.path = "/wsman"
        self.headers = email.message.Message()
        self.headers["Content-Type"] = "application/soap+xml;charset=UTF-8"
        self.headers["Content-Length"] = str(len(body))
        self.headers["Authorization"] = _AUTHORIZATION
        self.rfile = io.BytesIO(body)
        self.conn_auth = ConnectionAuth(mode=lab.auth)
        self.reply: tuple[int, bytes] | None = None

    def send_plain(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.reply = (status, body)

    def drop(self) -> None:
        self.reply = None


# ------------------------------------------------------------------------------------------ the executor
def _text(xml: str, name: str) -> str:
    match = re.search(rf'N="{name}"[^>]*>([^<]*)<', xml)
    return match.group(1) if match else ""


def _value(xml: str) -> Any:
    try:
        return deserialize(ET.fromstring(xml), None)  # type: ignore[arg-type]
    except Exception:
        return xml


def _emit(message: Message, out: PipelineSink) -> None:
    xml = message.xml
    kind = message.type
    if kind is PSRPMessageType.PipelineOutput:
        out.write(_value(xml))
    elif kind is PSRPMessageType.ErrorRecord:
        out.write_error(
            _text(xml, "ErrorDetails_Message") or _text(xml, "Message") or "error",
            category=int(message.field("ErrorCategory_Category") or 0),
            error_id=message.field("FullyQualifiedErrorId"),
        )
    elif kind is PSRPMessageType.WarningRecord:
        out.write_warning(_text(xml, "InformationalRecord_Message"))
    elif kind is PSRPMessageType.VerboseRecord:
        out.write_verbose(_text(xml, "InformationalRecord_Message"))
    elif kind is PSRPMessageType.DebugRecord:
        out.write_debug(_text(xml, "InformationalRecord_Message"))
    elif kind is PSRPMessageType.ProgressRecord:
        out.write_progress(_text(xml, "Activity") or "activity", _text(xml, "StatusDescription") or "status")
    elif kind is PSRPMessageType.InformationRecord:
        out.write_information(_text(xml, "MessageData") or "information", _text(xml, "Source"))
    elif kind is PSRPMessageType.PipelineState:
        if message.field("PipelineState") == "5":
            raise PipelineFailure(
                _text(xml, "ErrorDetails_Message") or _text(xml, "Message") or "failed",
                category=int(message.field("ErrorCategory_Category") or 0),
                error_id=message.field("FullyQualifiedErrorId"),
            )
        out.complete()
    else:
        raise AssertionError(f"the replay executor cannot reproduce {kind.name}")


@dataclass
class _Script:
    batches: deque[list[Message]]
    released: int = 0
    written: int = 0
    claimed: bool = False


class ReplayExecutor:
    """Writes the recorded output of each pipeline, one batch per release."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._scripts: dict[str, _Script] = {}

    def plan(self, command_id: str, batches: list[list[Message]]) -> None:
        """What the next pipeline run under ``command_id`` writes (a reused id gets a new plan)."""
        with self._cond:
            self._scripts[command_id.upper()] = _Script(deque(batches))
            self._cond.notify_all()

    def release(self, command_id: str) -> None:
        """Let the pipeline write its next batch, and wait until it has (so one Receive can take it all)."""
        with self._cond:
            script = self._scripts[command_id.upper()]
            script.released += 1
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: script.written >= script.released, WAIT):
                raise AssertionError(f"pipeline {command_id} did not write its recorded output")

    def __call__(self, server: str, invocation: Invocation, out: PipelineSink) -> None:
        key = invocation.command_id.upper()
        with self._cond:
            ready = self._cond.wait_for(lambda: key in self._scripts and not self._scripts[key].claimed, WAIT)
            if not ready:
                raise AssertionError(f"no recorded output for command {key}")
            script = self._scripts[key]
            script.claimed = True
        while True:
            with self._cond:
                while script.released <= script.written:
                    if out.is_cancelled:
                        return
                    self._cond.wait(0.05)
                batch = script.batches.popleft() if script.batches else []
            try:
                for message in batch:
                    _emit(message, out)
            finally:
                with self._cond:
                    script.written += 1
                    self._cond.notify_all()
            if not script.batches:
                return


# ------------------------------------------------------------------------------------------ the replay
@dataclass
class Step:
    """One recorded exchange and what the lab answered to the same request."""

    index: int
    request: str
    recorded: Observation
    lab: Observation | None
    note: str = ""


@dataclass
class Replay:
    recording: Recording
    spec: HostSpec
    steps: list[Step] = field(default_factory=list)
    _per_command: tuple[dict[str, Any], ...] = ()

    def run(self) -> list[Step]:
        executor = ReplayExecutor()
        lab = LabServer([self.spec], executor=executor, credentials=(USER, PASSWORD), auth="basic")
        ids: dict[str, str] = {}
        recorded_defrag: dict[str, Defragmenter] = {}
        lab_defrag: dict[str, Defragmenter] = {}
        backlog: dict[str, deque[Message]] = {}
        last_state: dict[str, tuple[str, str | None] | None] = {}
        self._per_command = (recorded_defrag, lab_defrag, backlog, last_state)
        batches = self.recording.batches()
        try:
            for index, exchange in enumerate(self.recording.exchanges):
                request = _rewrite(exchange.request, ids)
                action = exchange.action
                target = exchange.target(ids)
                recorded = observe(
                    exchange.response, recorded_defrag.setdefault(target or "", Defragmenter())
                )
                if action == "Receive" and recorded.action != "Fault":
                    key = target or ""
                    if target and recorded.messages:
                        executor.release(ids.get(target, target))
                    lab_obs, note = self._receive(
                        lab, request, key, recorded, lab_defrag, backlog, last_state
                    )
                else:
                    timeout = "PT0.5S" if action == "Receive" else None
                    lab_obs = self._send(
                        lab, request, lab_defrag.setdefault(target or "", Defragmenter()), timeout
                    )
                    note = ""
                self.steps.append(Step(index, action, recorded, lab_obs, note))
                self._learn(index, exchange, recorded, lab_obs, ids, executor, batches)
        finally:
            for spec in lab.hosts:
                lab.remove_host(spec.fqdn)
        return self.steps

    def _receive(
        self,
        lab: LabServer,
        request: str,
        key: str,
        recorded: Observation,
        lab_defrag: dict[str, Defragmenter],
        backlog: dict[str, deque[Message]],
        last_state: dict[str, tuple[str, str | None] | None],
    ) -> tuple[Observation | None, str]:
        """The lab's counterpart of a recorded Receive: as many messages, however the lab splits them."""
        pending = backlog.setdefault(key, deque())
        defrag = lab_defrag.setdefault(key, Defragmenter())
        asked = 0
        merged = Observation("ReceiveResponse")
        while len(pending) < len(recorded.messages) or (recorded.command_state and not last_state.get(key)):
            if last_state.get(key) or asked >= 4:
                break
            obs = self._send(lab, request, defrag, "PT2S")
            asked += 1
            if obs.action == "Fault":
                merged = obs
                break
            pending.extend(obs.messages)
            merged.streams += obs.streams
            if obs.command_state is not None:
                last_state[key] = obs.command_state
        if merged.action != "Fault":
            merged.messages = [pending.popleft() for _ in range(min(len(pending), len(recorded.messages)))]
            if not pending:
                merged.command_state = last_state.get(key)
        note = ""
        if asked == 0:
            note = "the lab had already sent these in its previous reply"
        elif asked > 1:
            note = f"the lab needed {asked} Receives"
        return merged, note

    def _send(self, lab: LabServer, request: str, defrag: Defragmenter, timeout: str | None) -> Observation:
        if timeout is not None:
            request = re.sub(r"(<[\w:]*OperationTimeout[^>]*>)[^<]*(<)", rf"\g<1>{timeout}\g<2>", request)
        handler = _Handler(lab, request.encode())
        lab._handle_post(handler)
        assert handler.reply is not None, "the lab dropped the connection"
        status, body = handler.reply
        assert status in (200, 500), f"HTTP {status}: {body[:200]!r}"
        return observe(body, defrag)

    def _learn(
        self,
        index: int,
        exchange: Exchange,
        recorded: Observation,
        lab_obs: Observation | None,
        ids: dict[str, str],
        executor: ReplayExecutor,
        batches: dict[int, list[list[Message]]],
    ) -> None:
        """Map the ids the real server gave to those the lab gave, and plan each new pipeline's output."""
        if lab_obs is None:
            return
        if recorded.shell_id and lab_obs.shell_id:
            ids[recorded.shell_id] = lab_obs.shell_id
        if recorded.command_id and lab_obs.command_id:
            ids[recorded.command_id] = lab_obs.command_id
            for table in self._per_command:  # a reused CommandId starts afresh
                table.pop(recorded.command_id, None)
            executor.plan(lab_obs.command_id, batches.get(index, []))


def _rewrite(request: str, ids: dict[str, str]) -> str:
    for old, new in ids.items():
        if old != new:
            request = re.sub(re.escape(old), new, request, flags=re.IGNORECASE)
    return request


def client_named(exchange: Exchange, attribute: str) -> str | None:
    """The id a client proposed in a Create (ShellId) or Command (CommandId) request."""
    body = ET.fromstring(exchange.request).find("s:Body", NS)
    assert body is not None
    for element in body.iter():
        if attribute in element.attrib:
            return element.attrib[attribute].upper()
    return None


__all__ = ["Replay", "ReplayExecutor", "Step", "action_of", "client_named"]
