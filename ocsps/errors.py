"""One exception hierarchy, so that callers catch ``OcspsError`` and the CLI maps each kind to an exit code.

Messages are one line that names the host and the cause: an administrator reads them in a maintenance
window, and a traceback from requests or pypsrp tells them nothing about what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass


class OcspsError(Exception):
    """Base of every error ocsps raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, host: str | None = None, hint: str | None = None) -> None:
        self.host = host
        self.hint = hint
        super().__init__(message)

    @property
    def message(self) -> str:
        text = str(self.args[0]) if self.args else ""
        return f"{self.host}: {text}" if self.host and not text.startswith(f"{self.host}:") else text


class UsageError(OcspsError):
    """Bad input: nothing was sent to any server."""

    exit_code = 2


class ConnectError(OcspsError):
    """The server could not be reached (DNS, refused, TLS, proxy, broken transport)."""

    exit_code = 3


class AuthenticationError(ConnectError):
    """The server was reached but refused the credentials."""


class TimeoutExceeded(OcspsError):
    """An operation hit its deadline; the state reached so far is reported by the caller."""

    exit_code = 4


class OperationFailed(OcspsError):
    """The operation ran and did not reach its goal (a service that will not stop, a failed LcsCmd task)."""

    exit_code = 1


@dataclass(frozen=True)
class ErrorRecord:
    """A PowerShell ErrorRecord reduced to what an administrator needs to act on it."""

    message: str
    category: str = ""
    fully_qualified_error_id: str = ""
    target: str = ""
    script_position: str = ""


class RemoteError(OcspsError):
    """PowerShell on the server reported one or more error records."""

    exit_code = 1

    def __init__(
        self, records: list[ErrorRecord], *, host: str | None = None, hint: str | None = None
    ) -> None:
        self.records = records
        first = records[0] if records else ErrorRecord("unknown remote error")
        extra = f" (+{len(records) - 1} more)" if len(records) > 1 else ""
        detail = f" [{first.fully_qualified_error_id}]" if first.fully_qualified_error_id else ""
        super().__init__(f"{first.message}{detail}{extra}", host=host, hint=hint)

    def __reduce__(self) -> tuple[type[RemoteError], tuple[list[ErrorRecord]], dict[str, object]]:
        """Rebuilt from its records, so that a copy or a pickle (``dataclasses.asdict``) works."""
        return (type(self), (self.records,), dict(self.__dict__))


class OutcomeUnknown(ConnectError):
    """The connection failed while a state-changing call was in flight: it may or may not have run.

    Such a call is never repeated blindly; the caller re-reads the server's state and decides.
    """


class Cancelled(OcspsError):
    """The caller's cancel event was set before the call was sent: nothing was sent by this call."""

    exit_code = 130
