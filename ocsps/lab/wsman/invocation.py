"""What an executor is given (one pipeline as the client sent it) and how it ends one with an error.

The listener knows nothing about PowerShell: it hands each pipeline to an executor
(:class:`~ocsps.lab.wsman.executor.Executor`). These types are what it is given, kept apart from the transport
so an executor can be written and tested without a listener.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psrpcore.types import ErrorCategory


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
