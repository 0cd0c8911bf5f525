"""A WinRM endpoint on loopback that the unmodified pypsrp client can talk to.

No Windows machine exists where ocsps is developed and tested, yet the code under test must meet the
real protocol stack: HTTP keep-alive, NTLM/Negotiate with WSMan message encryption, WS-Management SOAP
and PSRP fragments. This package is that stack on the server side. It serves many simulated servers on
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
* the ``ServerPipeline`` (id = the client's PSRP pipeline id) exists before its CreatePipeline message is
  fed; the WSMan CommandId is the client's too, except on WinRM 2.0 (PowerShell 2.0 hosts), which names
  shells and commands itself;
* on Delete, pipelines are stopped and closed before the pool;
* psrpcore objects are not thread-safe, so each shell has one lock (a condition variable that also wakes
  waiting Receives).

The PSRP protocol version announced in SESSION_CAPABILITY comes from :class:`HostSpec`: "2.1" for a
PowerShell 2.0 product makes pypsrp limit itself exactly as against a real PowerShell 2.0 host. Where the
lab's replies were checked against exchanges recorded from real servers is told in ``docs/lab.md``.

Where each concern lives: :mod:`~ocsps.lab.wsman.http` (sockets, HTTP/1.1, TLS in
:mod:`~ocsps.lab.wsman.tls`), :mod:`~ocsps.lab.wsman.gate` (routing, authentication, encryption, injected
faults), :mod:`~ocsps.lab.wsman.soap` (WS-Management envelopes and faults), :mod:`~ocsps.lab.wsman.shells`
and :mod:`~ocsps.lab.wsman.state` (WSMan shells and commands), :mod:`~ocsps.lab.wsman.psrp` (the psrpcore
bridge), :mod:`~ocsps.lab.wsman.executor`, :mod:`~ocsps.lab.wsman.invocation` and
:mod:`~ocsps.lab.wsman.sink` (what an executor is given and writes to), and
:mod:`~ocsps.lab.wsman.server` (the listener that ties them together).
"""

from __future__ import annotations

from ocsps.lab.faults import Counters, Faults
from ocsps.lab.wsman.executor import Executor
from ocsps.lab.wsman.hosts import DEFAULT_MAX_COMMANDS_PER_SHELL, HostSpec
from ocsps.lab.wsman.invocation import CommandCall, Invocation, PipelineFailure
from ocsps.lab.wsman.server import LabServer
from ocsps.lab.wsman.sink import PipelineSink, ps_object
from ocsps.lab.wsman.soap import FAULT_OPERATION_TIMEOUT, FAULT_SHELL_NOT_FOUND

__all__ = [
    "DEFAULT_MAX_COMMANDS_PER_SHELL",
    "FAULT_OPERATION_TIMEOUT",
    "FAULT_SHELL_NOT_FOUND",
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
