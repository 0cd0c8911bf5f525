"""The one thing the listener asks of the code that plays PowerShell: run this pipeline, write here."""

from __future__ import annotations

from typing import Protocol

from ocsps.lab.wsman.invocation import Invocation
from ocsps.lab.wsman.sink import PipelineSink


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
