"""The bridge between WSMan shells and psrpcore's server side (``ServerRunspacePool`` / ``ServerPipeline``).

psrpcore parses and builds PSRP messages but does no I/O: this module feeds it what the client sent, turns
its events into pipelines handed to the executor, and moves what it wants to send into per-command queues of
whole fragments. Every function here expects the caller to hold ``shell.cond``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    GetCommandMetadataEvent,
    PipelineInputEvent,
    ResetRunspaceStateEvent,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
)
from psrpcore.types import PSInvocationState, PSRPMessageType, PSVersion, RunspacePoolState, SessionCapability

from ocsps.lab.wsman.executor import Executor
from ocsps.lab.wsman.hosts import HostSpec
from ocsps.lab.wsman.invocation import CommandCall, Invocation, PipelineFailure
from ocsps.lab.wsman.state import Pipe, Shell

log = logging.getLogger("ocsps.lab.wsman")

FRAGMENT_HEADER: Final = 21
"""Bytes before a PSRP fragment's data: object id, fragment id, flags, big-endian length at 17..21."""


def split_fragments(data: bytes) -> Iterator[bytes]:
    """Cut a psrpcore payload into its PSRP fragments, so a reply never splits one across Receives."""
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 17 : offset + FRAGMENT_HEADER], "big")
        end = offset + FRAGMENT_HEADER + length
        yield data[offset:end]
        offset = end


def opens_pool_state(fragment: bytes) -> bool:
    """Whether a fragment starts a RUNSPACEPOOL_STATE message."""
    if len(fragment) < FRAGMENT_HEADER + 8 or not fragment[16] & 0x1:
        return False
    kind = int.from_bytes(fragment[FRAGMENT_HEADER + 4 : FRAGMENT_HEADER + 8], "little")
    return kind == PSRPMessageType.RunspacePoolState.value


def pipeline_id_in(data: bytes) -> uuid.UUID | None:
    """The PSRP pipeline id of the first message in ``data`` (a Command's arguments), if there is one."""
    if len(data) < FRAGMENT_HEADER + 40 or not data[16] & 0x1:  # not the start of a message
        return None
    message = data[FRAGMENT_HEADER:]
    pipeline_id = uuid.UUID(bytes_le=bytes(message[24:40]))
    return None if pipeline_id.int == 0 else pipeline_id


_SPEC_CALL_ID: Final = b'<I64 N="CI">'
_PSRPCORE_CALL_ID: Final = b'<I64 N="ci">'


def spec_call_ids(data: bytes) -> bytes:
    """Let psrpcore read the call id of SET_MAX/MIN_RUNSPACES as MS-PSRP 2.2.2.8/2.2.2.9 spell it.

    The specification (and pypsrp) name the property ``CI``; psrpcore 0.3 looks up ``ci`` only and fails on
    the message. Both spellings have the same length, so fragment lengths stay valid. Applied to pool-level
    data only, where no user object travels.
    """
    return data.replace(_SPEC_CALL_ID, _PSRPCORE_CALL_ID)


def app_private_data(spec: HostSpec) -> dict[str, Any]:
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


def new_pool(spec: HostSpec) -> ServerRunspacePool:
    pool = ServerRunspacePool(application_private_data=app_private_data(spec))
    # ServerRunspacePool has no constructor argument for the protocol version; SESSION_CAPABILITY is built
    # from our_capability, so replacing it before the client's capability arrives is what announces it.
    pool.our_capability = SessionCapability(
        PSVersion=PSVersion("2.0"),
        protocolversion=PSVersion(spec.protocol_version),
        SerializationVersion=PSVersion("1.1.0.1"),
    )
    return pool


def process_events(shell: Shell, start: Callable[[Pipe], None]) -> None:
    """Act on everything psrpcore parsed; ``start`` runs a pipeline whose commands (and input) are known."""
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
                start(pipe)
        elif isinstance(event, PipelineInputEvent):
            pipe = shell.pipes.get(event.pipeline_id)
            if pipe is not None:
                pipe.inputs.append(event.data)
        elif isinstance(event, EndOfPipelineInputEvent):
            pipe = shell.pipes.get(event.pipeline_id)
            if pipe is not None and pipe.metadata is not None and pipe.thread is None:
                start(pipe)
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
        elif isinstance(event, SetMaxRunspacesEvent):
            # As RunspacePool.SetMaxRunspaces: never below the minimum (nor below one).
            pool.runspace_availability_response(event.ci, event.count >= max(1, pool.min_runspaces))
        elif isinstance(event, SetMinRunspacesEvent):
            # As RunspacePool.SetMinRunspaces: at least one, never above the maximum.
            pool.runspace_availability_response(event.ci, 1 <= event.count <= pool.max_runspaces)
        elif isinstance(event, ResetRunspaceStateEvent):
            # A real server resets the runspace its pipelines ran in: with none run yet (or several
            # runspaces) it refuses. Inferred from two recorded exchanges, one of each.
            pool.runspace_availability_response(event.ci, shell.ran_pipeline and pool.max_runspaces == 1)
        elif isinstance(event, GetAvailableRunspacesEvent):
            pool.runspace_availability_response(event.ci, max(1, pool.max_runspaces))
    shell.cond.notify_all()


def start_pipe(spec: HostSpec, shell: Shell, pipe: Pipe, executor: Executor) -> None:
    """Hand a pipeline to the executor in its own thread."""
    # A real server does not send a Running PipelineState; emitting one would cost short commands an
    # extra Receive round trip, so the state changes silently.
    pipe.ps._change_state(PSInvocationState.Running, emit=False)
    shell.ran_pipeline = True
    commands = tuple(
        CommandCall(
            text=str(cmd.command_text),
            is_script=bool(cmd.is_script),
            parameters=tuple((None if name is None else str(name), value) for name, value in cmd.parameters),
            end_of_statement=bool(cmd.end_of_statement),
        )
        for cmd in pipe.metadata.commands
    )
    invocation = Invocation(
        commands=commands,
        input=tuple(pipe.inputs),
        shell_id=shell.id,
        command_id=pipe.command_id,
        protocol_version=spec.protocol_version,
        ps_version=spec.effective_ps_version,
    )
    thread = threading.Thread(
        target=_run_executor,
        args=(executor, spec.fqdn, pipe, invocation),
        name=f"ocsps-lab-pipeline-{pipe.command_id}",
        daemon=True,
    )
    pipe.thread = thread
    thread.start()


def _run_executor(executor: Executor, fqdn: str, pipe: Pipe, invocation: Invocation) -> None:
    sink = pipe.sink
    try:
        executor(fqdn, invocation, sink)
    except PipelineFailure as failure:
        sink.fail(failure)
    except Exception as exc:
        log.exception("%s: executor failed for %s", fqdn, pipe.command_id)
        sink.fail(
            PipelineFailure(
                f"ocsps lab executor raised {type(exc).__name__}: {exc}",
                error_id="LabExecutorError",
            )
        )
    finally:
        sink.complete()


def pump(shell: Shell, raw_budget: int) -> None:
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
        queue.extend(split_fragments(payload.data))


def stop_pipe(pipe: Pipe) -> None:
    pipe.sink.cancelled.set()
    state = pipe.ps.state
    if state == PSInvocationState.NotStarted:
        pipe.ps._change_state(PSInvocationState.Running, emit=False)
        state = PSInvocationState.Running
    if state in (PSInvocationState.Running, PSInvocationState.Stopping):
        pipe.ps.stop()


def close_pipe(shell: Shell, pipe: Pipe) -> None:
    pipe.ps.close()
    shell.pipes.pop(pipe.id, None)
    shell.commands.pop(pipe.command_id, None)
    shell.outbox.pop(pipe.id, None)


def close_shell(shell: Shell) -> list[threading.Thread]:
    """Stop and close every pipeline, then the pool (in that order); returns the executor threads."""
    workers: list[threading.Thread] = []
    with shell.cond:
        if shell.closed:
            return workers
        for pipe in list(shell.pipes.values()):
            stop_pipe(pipe)
            close_pipe(shell, pipe)
            if pipe.thread is not None:
                workers.append(pipe.thread)
        if shell.pool.state in (RunspacePoolState.Opened, RunspacePoolState.Closing):
            shell.pool.close()
        shell.closed = True
        shell.outbox.clear()
        shell.cond.notify_all()
    return workers
