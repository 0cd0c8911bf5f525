"""The WSMan resources a simulated server holds: its shells (runspace pools) and commands (pipelines).

psrpcore objects are not thread-safe, so each shell has one lock: a condition variable that also wakes the
Receives waiting for output. Everything in a shell is touched with ``shell.cond`` held.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Any

from psrpcore import ServerPipeline, ServerRunspacePool
from psrpcore.types import PSInvocationState

from ocsps.lab.faults import Counters
from ocsps.lab.wsman.hosts import HostSpec
from ocsps.lab.wsman.sink import PipelineSink
from ocsps.lab.wsman.soap import shell_not_found


class Pipe:
    """One WSMan command: a PSRP pipeline whose id is the CommandId."""

    def __init__(self, shell: Shell, pipeline_id: uuid.UUID, command_id: str) -> None:
        self.id = pipeline_id
        self.command_id = command_id
        self.ps = ServerPipeline(shell.pool, pipeline_id)
        self.sink = PipelineSink(shell.cond, self.ps)
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


class Shell:
    """One WSMan shell: a PSRP runspace pool and the commands it holds until they are terminated."""

    def __init__(self, host: Host, shell_id: str, resource_uri: str, pool: ServerRunspacePool) -> None:
        self.host = host
        self.id = shell_id
        self.resource_uri = resource_uri
        self.pool = pool
        self.cond = threading.Condition(threading.RLock())
        self.pipes: dict[uuid.UUID, Pipe] = {}
        """Commands by PSRP pipeline id (what psrpcore addresses)."""
        self.commands: dict[str, Pipe] = {}
        """The same commands by WSMan CommandId, upper-cased (what the client addresses)."""
        self.outbox: dict[uuid.UUID | None, deque[bytes]] = {}
        self.closed = False
        self.ran_pipeline = False
        """Whether a pipeline has run in this pool (what ResetRunspaceState needs)."""
        self.created = time.time()


class Host:
    """One simulated server: its spec, fault knobs, counters and open shells."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.key = spec.fqdn.lower()
        self.faults = spec.faults
        self.counters = Counters()
        self.lock = threading.Lock()
        self.shells: dict[str, Shell] = {}

    def shell(self, shell_id: str) -> Shell:
        with self.lock:
            shell = self.shells.get(shell_id.upper())
        if shell is None:
            raise shell_not_found(shell_id)
        return shell
