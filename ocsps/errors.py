"""One exception hierarchy, so that callers catch ``OcspsError`` and the CLI maps each kind to an exit code.

Messages are one line that names the host and the cause: an administrator reads them in a maintenance
window, and a traceback from requests or pypsrp tells them nothing about what to do next.

The hierarchy::

    OcspsError
    ├── UsageError                 2  bad input, nothing sent
    ├── ConnectError               3  could not reach the server; nothing of the call ran
    │   ├── AuthenticationError    3
    │   └── RetriesExhausted       3  a read kept failing on fresh sessions, then gave up
    ├── OutcomeUnknown             3  a change was in flight when the connection failed
    ├── TimeoutExceeded            4
    ├── OperationFailed            1
    └── RemoteError                1

``OutcomeUnknown`` is deliberately *not* a ``ConnectError``: code that retries on ``ConnectError`` (a
natural thing to write) must never resend a change that may already have run.
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

    def still_running(self, what: str, service: str, *, certain: bool = True) -> str:
        """This error's line, plus that ``what`` (e.g. "the drain") of ``service`` goes on on the server
        (or may, when the request's outcome is unknown) and how to watch it: for a watch that gave up
        while the server kept working."""
        where = f"--host {self.host} " if self.host else ""
        goes_on = "goes on" if certain else "may be going on"
        return (
            f"{self.message}; {what} of {service} {goes_on} on the server: watch it with "
            f"'ocsps status {where}-s {service}'"
        )


class UsageError(OcspsError):
    """Bad input: nothing was sent to any server."""

    exit_code = 2


class ConnectError(OcspsError):
    """The server could not be reached (DNS, refused, TLS, proxy, broken transport)."""

    exit_code = 3


class AuthenticationError(ConnectError):
    """The server was reached but refused the credentials."""


class RetriesExhausted(ConnectError):
    """A read failed on fresh session after fresh session until its deadline or attempt limit.

    Only reads are retried, so nothing new ran on the server; but whatever was asked of the server before
    (a graceful stop, a failover) goes on there whether or not ocsps keeps watching. ``attempts`` is the
    number of tries; :meth:`OcspsError.still_running` words that for an operator.
    """

    def __init__(
        self, message: str, *, host: str | None = None, hint: str | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message, host=host, hint=hint)
        self.attempts = attempts


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


class OutcomeUnknown(OcspsError):
    """The connection failed while a state-changing call was in flight: it may or may not have run.

    Such a call is never repeated blindly; the caller re-reads the server's state and decides. It is not
    a ``ConnectError``, so ``except ConnectError: retry`` cannot resend the change by accident; its exit
    code is still 3 (the connection failed).
    """

    exit_code = 3


class Cancelled(OcspsError):
    """The caller's cancel event was set before the call was sent: nothing was sent by this call."""

    exit_code = 130
