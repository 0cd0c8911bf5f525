"""The audit trail: one JSON line per state-changing call, in the operator's data directory.

A change board wants to know who did what, where and with what result. Lines never carry a password:
only parameters that were bound to scripts, and those never include credentials; anything shaped like a
credential (``user:password@`` in a URL, ``DOMAIN\\user:password``) is redacted before it is written.

The order matters: a command that changes state calls ``require_writable`` first, which writes an intent
record. If that fails, nothing is sent (exit 2): a change nobody can account for afterwards is worse than a
change not made. After that, a record that cannot be written is reported as an error but does not turn a
change the server made into a "failed" report: the report must say what happened on the server.

The file is created ``0600`` (its directory ``0700``): it names operators, hosts and what they did, which is
nobody else's business on a shared admin host.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from ocsps.errors import UsageError
from ocsps.redact import redact, redact_value

ENV_AUDIT_LOG = "OCSPS_AUDIT_LOG"
_lock = threading.Lock()
_simulation = False
_change_id = ""
_warned: set[str] = set()
log = logging.getLogger("ocsps.audit")

CHANGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
"""A change ticket id as change-management tools issue them (CHG-1042, RFC/2026/17): it ends up in file
names, reports and audit lines, so nothing that could be read as a path, markup or code gets in."""

TAIL_LIMIT = 4 * 1024 * 1024
"""``audit show`` reads at most this much from the end of the log: enough for thousands of entries."""


class AuditUnavailable(UsageError):
    """The audit log cannot be written, so no change is sent."""


def audit_path(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    if environ.get(ENV_AUDIT_LOG):
        return Path(environ[ENV_AUDIT_LOG])
    from platformdirs import user_data_dir

    return Path(user_data_dir("ocsps", appauthor=False)) / "audit.jsonl"


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def _why(exc: BaseException) -> str:
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    return getattr(exc, "strerror", None) or exc.__class__.__name__


def _read_at(fd: int, length: int, offset: int) -> bytes:
    """``os.pread`` where it exists (POSIX); seek and read elsewhere (Windows)."""
    pread = getattr(os, "pread", None)
    if pread is not None:
        data: bytes = pread(fd, length, offset)
        return data
    os.lseek(fd, offset, os.SEEK_SET)
    chunks = []
    while length > 0:
        chunk = os.read(fd, length)
        if not chunk:
            break
        chunks.append(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def _append(target: Path, line: str) -> None:
    """Append one line with one write; start a new line first if the file ends mid-line.

    A log cut mid-line (a full disk, a killed process) would otherwise swallow the next record into the
    broken one. ``O_APPEND`` keeps concurrent writers from overwriting each other.
    """
    if not target.parent.exists():
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(
        target,
        os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0),
        0o600,
    )
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "it is a directory")
        if not stat.S_ISREG(info.st_mode):  # /dev/null, a FIFO: nothing is kept, or a write may block
            raise OSError(22, "not a regular file")
        data = line.encode("utf-8")
        if info.st_size > 0 and _read_at(fd, 1, info.st_size - 1) != b"\n":
            _warn_once(
                f"partial:{target}",
                f"audit log {target} ended in the middle of a line (cut short earlier); "
                "the new record starts on a line of its own",
            )
            data = b"\n" + data
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(28, f"short write ({written} of {len(data)} bytes)")
    finally:
        os.close(fd)


@contextlib.contextmanager
def simulated() -> Iterator[None]:
    """Mark every record written inside the block as a lab rehearsal (``"simulation": true``).

    The lab's servers bear production-like names (med01.contoso.com): a record that does not say it was a
    rehearsal would read, in the same log, as a change made to a real server. A process-wide flag rather
    than a context variable, because records are written from the worker threads of a fleet run.
    """
    global _simulation
    previous, _simulation = _simulation, True
    try:
        yield
    finally:
        _simulation = previous


def check_change_id(value: str) -> str:
    """The ticket id unchanged, or a ``ValueError`` with the one line an operator needs."""
    if value and not CHANGE_ID.match(value):
        raise ValueError("a change id takes letters, digits and . _ : / - (at most 64), e.g. CHG-1042")
    return value


@contextlib.contextmanager
def change(change_id: str) -> Iterator[None]:
    """Stamp every record written inside the block with the change ticket it was made under.

    The board's post-implementation report gathers a change by this id (``ocsps report``); stamping in one
    place means no record of the change can be written without it. Process-wide like ``simulated``, for the
    same reason: fleet workers write from their own threads.
    """
    global _change_id
    previous, _change_id = _change_id, check_change_id(change_id)
    try:
        yield
    finally:
        _change_id = previous


def current_change_id() -> str:
    """The ticket id records are stamped with right now ("" outside ``change``).

    A change-board script written under ``--change-id`` names the same ticket in its header as the audit
    lines of the run, without every command passing the id along by hand.
    """
    return _change_id


def _line(
    *,
    host: str,
    action: str,
    parameters: Mapping[str, object],
    outcome: str,
    duration: float,
    detail: str,
    body_sha256: str,
) -> str:
    document = {
        "time": datetime.now(UTC).isoformat(),
        "operator": redact(_operator()),
        "host": redact(host),
        "action": action,
        "parameters": {
            k: redact_value(v if isinstance(v, str | int | bool | list) else str(v))
            for k, v in parameters.items()
        },
        "outcome": redact(outcome),
        "duration_seconds": round(duration, 3),
        "detail": redact(detail),
        "body_sha256": body_sha256,
    }
    if _simulation:
        document["simulation"] = True
    if _change_id:
        document["change_id"] = _change_id
    return json.dumps(document, ensure_ascii=False) + "\n"


def require_writable(command: str, hosts: Sequence[str], *, path: Path | None = None) -> None:
    """Write the intent record of a state-changing command; refuse the command if that is impossible.

    Called before anything is sent, so that every change that reaches a server has a line in the log.
    """
    target = path or audit_path()
    line = _line(
        host=hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts",
        action=command,
        parameters={"hosts": list(hosts)},
        outcome="starting",
        duration=0.0,
        detail="intent: recorded before anything is sent",
        body_sha256="",
    )
    try:
        with _lock:
            _append(target, line)
    except (OSError, ValueError) as exc:
        raise AuditUnavailable(
            f"cannot write the audit log {target}: {_why(exc)}; nothing was sent",
            hint=f"fix the file or point {ENV_AUDIT_LOG} at a writable file; changes are not made unaudited",
        ) from None


def warn_if_unwritable(path: Path | None = None) -> None:
    """Once per process, warn that the audit log could not take a record (reads go on; changes would not).

    Nothing is written: a read-only command leaves no trace in the log.
    """
    target = path or audit_path()
    problem = ""
    try:
        if target.exists():
            if target.is_dir():
                problem = "it is a directory"
            elif not target.is_file():
                problem = "it is not a regular file"
            elif not os.access(target, os.W_OK):
                problem = "it is not writable"
        else:
            parent = target.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                problem = f"{parent} does not allow creating it"
    except OSError as exc:
        problem = _why(exc)
    if problem:
        _warn_once(
            f"unwritable:{target}",
            f"the audit log {target} cannot be written ({problem}): reads go on, changes will be refused",
        )


def record(
    *,
    host: str,
    action: str,
    parameters: Mapping[str, object],
    outcome: str,
    duration: float,
    detail: str = "",
    body_sha256: str = "",
    path: Path | None = None,
) -> bool:
    """Append one line; a failure is logged as an error (with the record), never raised.

    By the time an outcome is recorded the server has acted: raising here would turn a change that happened
    into a reported failure. ``require_writable`` already refused to start when the log was unusable.
    """
    line = _line(
        host=host,
        action=action,
        parameters=parameters,
        outcome=outcome,
        duration=duration,
        detail=detail,
        body_sha256=body_sha256,
    )
    target = path or audit_path()
    try:
        with _lock:
            _append(target, line)
    except (OSError, ValueError) as exc:
        log.error("cannot write the audit log %s (%s); the record was: %s", target, _why(exc), line.strip())
        return False
    return True


def decision_recorder(host: str, action: str, parameters: Mapping[str, object]) -> Callable[[str], None]:
    """The ``on_decision`` callback every caller of a state change passes: it audits each decision taken
    after a lost reply (what the re-read showed, whether the change was sent again).

    One place for the record's shape, so the command line, the Ansible modules and library users leave
    the same lines, the ones ``ocsps report`` reads (``outcome`` starting with ``decided:``).
    """
    fixed = dict(parameters)

    def decided(note: str) -> None:
        record(
            host=host,
            action=action,
            parameters=fixed,
            outcome=f"decided: {note}",
            duration=0.0,
            detail="re-read after an unknown outcome",
        )

    return decided


class _Rendered(Protocol):
    """What a record needs of a rendered script (``ocsps.powershell.script.RenderedScript``)."""

    @property
    def action(self) -> str: ...

    @property
    def bound_parameters(self) -> Mapping[str, object]: ...

    @property
    def body_sha256(self) -> str: ...


Recorder = Callable[[_Rendered, object, str, float], None]
"""A session's audit callback: (rendered script, run result or None, outcome, seconds)."""


def recorder(
    host: str, *, detail: str = "", summarized: Sequence[str] = (), change_id: str | None = None
) -> Recorder:
    """The audit callback of one server's session, the same for the command line, the Ansible modules
    and a library user, so their records of one change read alike in ``ocsps report``.

    ``detail`` goes on every record (the connection's transport warnings: a change made over an unchecked
    or clear-text channel must say so where it is recorded). Parameters named in ``summarized`` (an
    operator's own script) are logged as ``<name>Lines``, a line count, never their text. ``change_id``
    stamps each record with that ticket (checked now: ``ValueError``); ``None`` leaves the ticket of the
    surrounding ``change`` block.
    """
    if change_id is not None:
        check_change_id(change_id)
    hidden = tuple(summarized)

    def record_call(rendered: _Rendered, result: object, outcome: str, duration: float) -> None:
        parameters = dict(rendered.bound_parameters)
        for name in hidden:
            value = parameters.pop(name, None)
            if isinstance(value, list | tuple):
                parameters[f"{name}Lines"] = len(value)
        stamp = contextlib.nullcontext() if change_id is None else change(change_id)
        with stamp:
            record(
                host=host,
                action=rendered.action,
                parameters=parameters,
                outcome=outcome,
                duration=duration,
                detail=detail,
                body_sha256=rendered.body_sha256,
            )

    return record_call

@dataclass(frozen=True)
class Entry:
    """One line of the log: its fields, or why it could not be read."""

    fields: Mapping[str, object]
    corrupt: str = ""
    raw: str = ""


def read_entries(last: int, path: Path | None = None) -> list[Entry]:
    """The newest ``last`` lines, each parsed or flagged; a log that cannot be read is a ``UsageError``.

    Only the end of the log is read (at most ``TAIL_LIMIT`` bytes): a long log shows as fast as a new one.
    """
    target = path or audit_path()
    try:
        fd = os.open(
            target,
            os.O_RDONLY
            | getattr(os, "O_NONBLOCK", 0)
            | getattr(os, "O_NOCTTY", 0)
            | getattr(os, "O_BINARY", 0),
        )
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"cannot read the audit log {target}: {_why(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise UsageError(f"cannot read the audit log {target}: it is {kind}")
        start = max(0, info.st_size - TAIL_LIMIT)
        data = _read_at(fd, info.st_size - start, start)
    except OSError as exc:
        raise UsageError(f"cannot read the audit log {target}: {_why(exc)}") from None
    finally:
        os.close(fd)
    raw_lines = data.split(b"\n")
    if start > 0:
        raw_lines = raw_lines[1:]  # the first one is probably a fragment
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    entries: list[Entry] = []
    for raw in raw_lines[-last:]:
        entries.append(_parse_line(raw))
    return entries


def iter_entries(path: Path | None = None) -> Iterator[Entry]:
    """Every line of the log, oldest first, parsed or flagged; streamed, so a year of records fits.

    ``read_entries`` shows the tail; a report on a change made weeks ago needs the whole file. A log that
    does not exist yields nothing; one that cannot be read is a ``UsageError``.
    """
    target = path or audit_path()
    try:
        fd = os.open(
            target,
            os.O_RDONLY
            | getattr(os, "O_NONBLOCK", 0)
            | getattr(os, "O_NOCTTY", 0)
            | getattr(os, "O_BINARY", 0),
        )
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot read the audit log {target}: {_why(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise UsageError(f"cannot read the audit log {target}: {_why(exc)}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise UsageError(f"cannot read the audit log {target}: it is {kind}")
    with os.fdopen(fd, "rb") as handle:
        try:
            for raw in handle:
                raw = raw.rstrip(b"\r\n")
                if raw:
                    yield _parse_line(raw)
        except OSError as exc:
            raise UsageError(f"cannot read the audit log {target}: {_why(exc)}") from None


def _parse_line(raw: bytes) -> Entry:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Entry({}, f"not UTF-8 (byte {exc.start})", raw.decode("utf-8", "backslashreplace")[:200])
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return Entry({}, "not a JSON record (cut short or edited)", text[:200])
    if not isinstance(value, dict):
        return Entry({}, "not a JSON object", text[:200])
    return Entry(value)
