"""LcsCmdOutcome: everything one LcsCmd.exe run left behind, and the verdict drawn from it.

LcsCmd's exit codes and log layout are not documented. The seed procedure says a deactivation step is
done only when every task in the log reads Success, so the verdict needs positive evidence from both
sides: exit code 0, a log that could be read, at least one task, and every task Success. Anything less
is a failure with a reason the administrator can act on; building an outcome never raises because the
log is bad, so that the runner can always report what happened.

Template properties: ComputerName, ExitCode, StdOut, StdErr, LogPath, LogText. StdOut/StdErr/LogText may
arrive as a list of lines (native command output, Get-Content) or, for LogText, as bytes
(``[IO.File]::ReadAllBytes``) in any encoding :func:`ocsps.results.lcscmd_log.decode_log` understands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ocsps.results.base import ParseError, PropertyReader, freeze, host_name, no_extra
from ocsps.results.lcscmd_log import LcsCmdLog, LcsCmdTask, LogFormat, parse_lcscmd_log

__all__ = ["LcsCmdOutcome", "parse_lcscmd_outcome"]

KIND = "LcsCmdOutcome"


@dataclass(frozen=True)
class LcsCmdOutcome:
    """Exit code, console output and the parsed log of one LcsCmd run.

    ``exit_code`` is None when the process produced none (it was stopped, or never started).
    ``log_text`` is None when the log was not read; ``log_error`` holds the reason the log could not be
    parsed. Build instances with :meth:`create` or :func:`parse_lcscmd_outcome` so the log is parsed
    the same way everywhere.
    """

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    log_path: str | None = None
    log_text: str | None = None
    tasks: tuple[LcsCmdTask, ...] = ()
    log_format: LogFormat | None = None
    log_error: str | None = None
    computer: str | None = None
    extra: Mapping[str, object] = field(default_factory=no_extra, hash=False)
    failure_reason: str | None = field(init=False, compare=False, repr=False)
    """Why this run does not count as a success, or None if it does."""
    succeeded: bool = field(init=False, compare=False, repr=False)
    """True only for exit code 0 and a readable log with at least one task, every task Success."""

    def __post_init__(self) -> None:
        reason = self._failure_reason()
        object.__setattr__(self, "failure_reason", reason)
        object.__setattr__(self, "succeeded", reason is None)

    @classmethod
    def create(
        cls,
        *,
        exit_code: int | None,
        stdout: str = "",
        stderr: str = "",
        log_path: str | None = None,
        log: str | bytes | None = None,
        computer: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> LcsCmdOutcome:
        """Parse ``log`` (leniently) and assemble the outcome; never raises because of the log."""
        parsed: LcsCmdLog | None = None if log is None else parse_lcscmd_log(log, strict=False)
        return cls(
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            log_path=log_path,
            log_text=None if parsed is None else parsed.raw,
            tasks=() if parsed is None else parsed.tasks,
            log_format=None if parsed is None else parsed.format,
            log_error=None if parsed is None else parsed.error,
            computer=computer,
            extra=freeze(extra),
        )

    @property
    def failed_tasks(self) -> tuple[LcsCmdTask, ...]:
        return tuple(task for task in self.tasks if not task.succeeded)

    def _failure_reason(self) -> str | None:
        if self.exit_code is None:
            return "LcsCmd returned no exit code"
        if self.exit_code != 0:
            return f"LcsCmd exited with code {self.exit_code}"
        if self.log_text is None:
            return "the LcsCmd log was not read"
        if self.log_error is not None:
            return f"the LcsCmd log is unreadable: {self.log_error}"
        if not self.tasks:
            return "the LcsCmd log lists no tasks"
        failed = self.failed_tasks
        if failed:
            shown = "; ".join(f"{task.name}: {task.result or 'no result'}" for task in failed[:5])
            more = f" (+{len(failed) - 5} more)" if len(failed) > 5 else ""
            return f"{len(failed)} of {len(self.tasks)} tasks did not report Success: {shown}{more}"
        return None


def parse_lcscmd_outcome(obj: object) -> LcsCmdOutcome:
    """Build an :class:`LcsCmdOutcome` from template output.

    Reads: ExitCode (required to be present; null means "no exit code"), StdOut, StdErr, LogPath,
    LogText (null or absent: the log was not read), ComputerName or PSComputerName.
    """
    reader = PropertyReader(obj, KIND)
    if not reader.has("ExitCode"):
        raise ParseError(KIND, "ExitCode", "is missing")
    exit_code = reader.integer("ExitCode")
    log_found = reader.lookup("LogText")
    log: str | bytes | None = None
    if log_found is not None and log_found[1] is not None:
        value = log_found[1]
        log = bytes(value) if isinstance(value, bytes | bytearray) else reader.multiline("LogText")
    return LcsCmdOutcome.create(
        exit_code=exit_code,
        stdout=reader.multiline("StdOut") or "",
        stderr=reader.multiline("StdErr") or "",
        log_path=reader.text("LogPath"),
        log=log,
        computer=host_name(reader.text("ComputerName", "PSComputerName")),
        extra=reader.extra(),
    )
