"""One PowerShell Remoting session per server: open once, run many rendered scripts, close.

pypsrp's ``Client.execute_ps`` opens a new runspace pool per call and returns text; an administrator's
drain poll would then pay pool creation (and NTLM) on every poll. Here one ``RunspacePool`` serves every
call of an invocation, the product module is imported once (as the first statement of the first pipeline,
so a cold call costs one pipeline, not two), every pipeline is closed (a shell otherwise runs out of
commands), and each call has a deadline pypsrp itself does not offer: it bounds opening the pool, the
authentication handshake, every request and the teardown, because a request the server never answers
would otherwise hold the caller for a whole read timeout.

Faults are translated into ``ocsps.errors``: a one-line message naming the host, never a traceback from
requests or pypsrp. Read-only calls are retried with backoff inside their deadline, on a fresh
authenticated session (an NTLM-sealed session cannot continue on a new TCP connection); a bare HTTP 500
from an intermediary counts as transient like a 503. State-changing calls are never repeated: a lost
connection raises ``OutcomeUnknown`` and the caller re-reads state.
Closing is bounded (``CLOSE_TIMEOUT`` per request) and never raises, because it runs on error paths, often
against the very server that just failed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ocsps.catalog import Product
from ocsps.errors import (
    AuthenticationError,
    Cancelled,
    ConnectError,
    ErrorRecord,
    OcspsError,
    OutcomeUnknown,
    RemoteError,
    RetriesExhausted,
    TimeoutExceeded,
)
from ocsps.powershell.script import RenderedScript, render_module_import
from ocsps.remote.settings import ConnectionSettings

log = logging.getLogger("ocsps.remote")

CLOSE_TIMEOUT: Final = 5.0
"""Seconds any one request of a session's teardown may take: closing a session to a server that stopped
answering must not hold the operator (or the next host of a rolling restart) for a full read timeout."""

TEARDOWN_GRACE: Final = 1.0
"""Seconds a teardown request (stopping a pipeline, deleting the shell) may still take once the call's
deadline has passed: releasing the server's resources is worth a second, not a read timeout."""

MAX_READ_ATTEMPTS: Final = 6
"""Attempts of one read (the first included) before it gives up even with time left: a server that fails
six fresh sessions in a row is not coming back within one call."""

REOPEN_BACKOFF_MAX: Final = 5.0
"""Longest pause before reopening a session the server keeps breaking (the pause doubles each time)."""

FAULT_ACCESS_DENIED: Final = 5
"""WSManFault code ERROR_ACCESS_DENIED: authenticated, but not allowed to open a PowerShell shell."""
FAULT_SHELL_NOT_FOUND: Final = 2150858843
"""0x8033805B: the shell is gone (WinRM restarted, or the shell idled out); a new pool fixes it."""
FAULT_INTERNAL_ERROR: Final = 2147500037
"""0x80004005 E_FAIL: WinRM's HTTP 500 for an internal error; nothing ran, so a fresh session may pass."""
QUOTA_FAULTS: Final = frozenset(
    {
        2150859173,  # 0x803381A5 ERROR_WSMAN_QUOTA_MAX_SHELLS
        2150859174,  # 0x803381A6 ERROR_WSMAN_QUOTA_MAX_OPERATIONS
        2150859175,  # 0x803381A7 ERROR_WSMAN_QUOTA_USER
        2150859176,  # 0x803381A8 ERROR_WSMAN_QUOTA_SYSTEM
        2150859179,  # 0x803381AB ERROR_WSMAN_QUOTA_MAX_SHELLUSERS
        2150859236,  # 0x803381E4 ERROR_WSMAN_QUOTA_MAX_SHELLS_PPQ
        2150859237,  # 0x803381E5 ERROR_WSMAN_QUOTA_MAX_USERS_PPQ
        2150859238,  # 0x803381E6 ERROR_WSMAN_QUOTA_MAX_PLUGINSHELLS_PPQ
        2150859239,  # 0x803381E7 ERROR_WSMAN_QUOTA_MAX_PLUGINOPERATIONS_PPQ
        2150859240,  # 0x803381E8 ERROR_WSMAN_QUOTA_MAX_OPERATIONS_USER_PPQ
        2150859241,  # 0x803381E9 ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL_PPQ
        2150859242,  # 0x803381EA ERROR_WSMAN_QUOTA_MIN_REQUIREMENT_NOT_AVAILABLE_PPQ
    }
)
"""WinRM quota faults (wsmerror.h). Retrying at once only meets the same quota, so they are not retried."""

# System.Management.Automation.ErrorCategory, by value.
ERROR_CATEGORIES = (
    "NotSpecified OpenError CloseError DeviceError DeadlockDetected InvalidArgument InvalidData "
    "InvalidOperation InvalidResult InvalidType MetadataError NotImplemented NotInstalled "
    "ObjectNotFound OperationStopped OperationTimeout SyntaxError ParserError PermissionDenied "
    "ResourceBusy ResourceExists ResourceUnavailable ReadError WriteError FromStdErr SecurityError "
    "ProtocolError ConnectionError AuthenticationError LimitsExceeded QuotaExceeded NotEnabled"
).split()


@dataclass(frozen=True)
class Progress:
    """One remote progress record (``Write-Progress``), for a progress bar; ``percent`` is -1 when unknown."""

    host: str
    activity: str
    status: str
    percent: int


@dataclass(frozen=True)
class RunResult:
    """What one call returned: output objects, error records (non-terminating ones included), warnings.

    Error records do not raise by themselves, because a caller may want the output next to them;
    ``raise_for_errors()`` turns them into a ``RemoteError``. ``attempts`` counts retries on a fresh
    session; ``body_sha256`` ties the call to the script a change board approved.
    """

    host: str
    action: str
    output: tuple[Any, ...]
    errors: tuple[ErrorRecord, ...] = ()
    warnings: tuple[str, ...] = ()
    duration: float = 0.0
    attempts: int = 1
    body_sha256: str = ""

    def raise_for_errors(self) -> RunResult:
        if self.errors:
            raise RemoteError(list(self.errors), host=self.host)
        return self


@dataclass
class SessionStats:
    """Counts a benchmark or a report can show: how much work one session did."""

    pools_opened: int = 0
    calls: int = 0
    retries: int = 0
    transports_renewed: int = 0
    """Times a pool went on over a new authenticated connection after releasing a pipeline failed."""
    timings: list[float] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]
OutputCallback = Callable[[Any], None]
"""Receives each output object of a streamed call as it arrives (see ``ServerSession.stream``)."""
AuditCallback = Callable[[RenderedScript, "RunResult | None", str, float], None]


def error_record(record: Any) -> ErrorRecord:
    """A pypsrp ErrorRecord (or anything shaped like one) reduced to the fields an operator acts on."""
    message = ""
    exception = getattr(record, "exception", None)
    if exception is not None:
        props = getattr(exception, "adapted_properties", {}) or {}
        message = str(props.get("Message") or "")
    message = message or str(getattr(record, "details_message", "") or "") or str(record)
    category_value = getattr(record, "category", None)
    if isinstance(category_value, int) and 0 <= category_value < len(ERROR_CATEGORIES):
        category = ERROR_CATEGORIES[category_value]
    else:
        category = str(category_value or "")
    target = getattr(record, "target_name", None) or getattr(record, "target_object", None) or ""
    position = ""
    info = getattr(record, "invocation_info", None)
    if info is not None:
        position = str((getattr(info, "adapted_properties", {}) or {}).get("PositionMessage") or "")
    return ErrorRecord(
        message=" ".join(message.split()),
        category=category,
        fully_qualified_error_id=str(getattr(record, "fq_error", "") or ""),
        target=str(target),
        script_position=position,
    )


def _one_line(text: object, limit: int = 200) -> str:
    """Server-supplied text made safe for a one-line message: no line breaks or controls, bounded length."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps.

    requests nests urllib3 errors that nest the socket or ssl error that tells what really happened (a
    certificate that does not verify, a name that does not resolve, a refused port), in ``__cause__``,
    ``reason`` or ``args`` depending on the layer; matching types there is sturdier than matching text.
    """
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < 32:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(nested, BaseException):
                pending.append(nested)


def classify_fault(exc: BaseException, host: str) -> OcspsError:
    """Map transport and protocol exceptions to one-line, typed errors naming ``host``."""
    return _classify(exc, host)[0]


def _classify(exc: BaseException, host: str) -> tuple[OcspsError, bool]:
    """The typed error for ``exc``, and whether a fresh session might get past it (for the retry policy)."""
    import requests
    from pypsrp.exceptions import AuthenticationError as PsrpAuthError
    from pypsrp.exceptions import (
        InvalidPipelineStateError,
        InvalidRunspacePoolStateError,
        WinRMError,
        WinRMTransportError,
        WSManFaultError,
    )

    if isinstance(exc, OcspsError):
        return exc, False
    if isinstance(exc, PsrpAuthError):
        return (
            AuthenticationError(
                "the server refused the credentials (HTTP 401)",
                host=host,
                hint="check the username, the password and the auth method",
            ),
            False,
        )
    if isinstance(exc, WSManFaultError):
        http = exc.__context__
        if exc.code is None and not exc.reason and isinstance(http, WinRMTransportError):
            return _http_status(int(http.code), host)  # an XML (XHTML) body that is not a SOAP fault
        return _wsman_fault(exc.code, exc.reason, host)
    if isinstance(exc, WinRMTransportError):
        return _http_status(int(exc.code), host)
    if isinstance(exc, InvalidRunspacePoolStateError | InvalidPipelineStateError):
        return ConnectError("the remote session ended unexpectedly", host=host), True

    chain = list(_chain(exc))
    unverified = next((e for e in chain if isinstance(e, ssl.SSLCertVerificationError)), None)
    if unverified is not None:
        why = _one_line(unverified.verify_message or unverified.reason or "", 120)
        return (
            ConnectError(
                f"TLS failed: the server certificate could not be verified ({why})",
                host=host,
                hint="give the issuing CA with --ca-bundle (turning validation off is possible but unsafe)",
            ),
            False,
        )
    mismatch = next((e for e in chain if e.__class__.__name__ == "CertificateError"), None)
    if mismatch is not None:  # urllib3's own host name check (the name asked for is not on the certificate)
        return (
            ConnectError(
                f"TLS failed: the server certificate could not be verified (it does not name {host})",
                host=host,
                hint="connect with the name on the server's certificate (--host); connect_address only "
                "says where to dial",
            ),
            False,
        )
    if any(isinstance(e, ssl.SSLEOFError | ssl.SSLZeroReturnError) for e in chain):
        return ConnectError("the connection dropped (TLS closed mid-request)", host=host), True
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None or any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        openssl_reason = getattr(tls, "reason", None)
        reason = f" ({_one_line(openssl_reason, 60)})" if openssl_reason else ""
        return (
            ConnectError(
                f"TLS handshake failed{reason}",
                host=host,
                hint="check ssl and port (WinRM listens for https on 5986, http on 5985); a Windows Server "
                "2008 host may need TLS 1.2 enabled",
            ),
            False,
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return ConnectError("the proxy refused or failed the connection", host=host), False
    if any(_unresolved(e) for e in chain):
        return ConnectError("the host name does not resolve (DNS)", host=host), False
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return (
            ConnectError(
                "connection refused",
                host=host,
                hint="is WinRM listening on that port? (winrm quickconfig; 5986 https, 5985 http)",
            ),
            False,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectError("connection timed out (no answer from the host or a firewall)", host=host), False
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return ConnectError("the server did not answer in time (read timeout)", host=host), True
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return ConnectError("the connection dropped", host=host), True
    if isinstance(exc, ConnectionError):
        return ConnectError("the connection dropped", host=host), True
    if isinstance(exc, requests.exceptions.RequestException):
        return ConnectError(f"HTTP request failed ({exc.__class__.__name__})", host=host), False
    if isinstance(exc, ET.ParseError):
        return ConnectError("the server answered with something that is not XML", host=host), False
    if isinstance(exc, WinRMError):
        detail = _one_line(exc, 120)
        return ConnectError(f"the server's answer could not be understood ({detail})", host=host), False
    log.debug("%s: unclassified failure", host, exc_info=exc)
    name = exc.__class__.__name__
    return ConnectError(f"the server's answer could not be understood ({name})", host=host), False


def _unresolved(exc: BaseException) -> bool:
    if isinstance(exc, socket.gaierror) or exc.__class__.__name__ == "NameResolutionError":
        return True
    text = str(exc)
    return any(
        s in text for s in ("Name or service not known", "getaddrinfo failed", "nodename nor servname")
    )


def _wsman_fault(code: object, reason: object, host: str) -> tuple[OcspsError, bool]:
    why = _one_line(reason or "", 160)
    if code == FAULT_ACCESS_DENIED:
        return (
            AuthenticationError(
                "access denied: the account may not open a PowerShell Remoting session here",
                host=host,
                hint="it needs to be a local Administrator or in Remote Management Users",
            ),
            False,
        )
    if code in QUOTA_FAULTS:
        return (
            ConnectError(
                f"WinRM quota reached (fault {code}): {why}",
                host=host,
                hint="close other sessions to this server, or raise its WinRM quotas (MaxShellsPerUser, "
                "MaxConcurrentOperationsPerUser)",
            ),
            False,
        )
    if code == FAULT_SHELL_NOT_FOUND:
        return ConnectError(
            "the remote shell is gone (WinRM restarted or the shell timed out)", host=host
        ), True
    if code == FAULT_INTERNAL_ERROR:
        return ConnectError(f"WinRM internal error (HTTP 500, fault {code}): {why}", host=host), True
    return ConnectError(f"WS-Management fault {code}: {why}", host=host), False


def _http_status(code: int, host: str) -> tuple[OcspsError, bool]:
    """An HTTP error whose body is not a WS-Management fault (a proxy, a load balancer, a broken listener)."""
    if code == 401:
        return AuthenticationError("the server refused the credentials (HTTP 401)", host=host), False
    if code in (502, 503, 504):
        return ConnectError(f"WinRM answered HTTP {code} (unavailable or restarting)", host=host), True
    if code == 500:
        # A proxy, a load balancer or a listener in trouble; WinRM's own 500s carry a SOAP fault. Nothing
        # says the request ran, so a read may try again on a fresh session (a change never is).
        return ConnectError("WinRM answered HTTP 500 without a WS-Management fault", host=host), True
    if code == 404:
        return (
            ConnectError(
                "no WinRM listener at that URL (HTTP 404)", host=host, hint="check the port and path"
            ),
            False,
        )
    return ConnectError(f"WinRM answered HTTP {code} without a WS-Management fault", host=host), False


class _Fault(Exception):
    """A classified failure inside the session, carried to the retry policy in ``ServerSession._run``.

    ``sent`` says whether the action itself may have reached the server; only then is a state-changing
    call's outcome unknown.
    """

    def __init__(self, error: OcspsError, *, transient: bool, sent: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.transient = transient
        self.sent = sent


class StreamStopped(Cancelled):
    """The caller's cancel stopped a streamed call under way: its pipeline was stopped on the server.

    Unlike a plain ``Cancelled``, the call was sent: what it did before the stop stands.
    """


class _CallbackFailed(Exception):
    """The caller's output callback raised: the pipeline is stopped and the callback's error goes on."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _DeadlineReached(Exception):
    """Raised before a request is sent when the call has no time left for it (nothing was sent)."""


class ServerSession:
    """A session to one server. Use as a context manager; not safe to share between threads."""

    def __init__(
        self,
        settings: ConnectionSettings,
        product: Product,
        *,
        default_timeout: float = 120.0,
        on_progress: ProgressCallback | None = None,
        retry_backoff: float = 0.25,
        audit: AuditCallback | None = None,
    ) -> None:
        self.settings = settings
        self.product = product
        self.default_timeout = default_timeout
        self.on_progress = on_progress
        self.retry_backoff = retry_backoff
        self.audit = audit
        self.stats = SessionStats()
        self._wsman: Any = None
        self._pool: Any = None
        self._broken = False
        self._imported = False
        self._finished: Any = None
        """The last pipeline, answered but not yet released: released before the next Command, or ended
        with the shell when the session closes (the Signal then costs nothing: one cold call is one
        request cheaper, and at most one finished pipeline is ever left open on the shell)."""
        self._deadline: float | None = None
        self._budget: float | None = None
        self._teardown = False
        self._stream: tuple[OutputCallback | None, threading.Event | None] = (None, None)
        """The output callback and cancel event of the streamed call under way (see ``stream``)."""
        self._breaks = 0
        self._broke_at = 0.0
        self._warned_reopen = False
        self._warned_clear = False
        self.warn_transport = True
        """Log ``settings.transport_warnings()`` when the session opens (a caller that said them already,
        like the command line, turns this off)."""

    @property
    def host(self) -> str:
        return self.settings.host

    # ------------------------------------------------------------------ deadline
    def _request_limit(self) -> float | None:
        """Seconds the next HTTP request may take (connect and read), or None for the transport's own.

        Read by the transport before every request, authentication legs included. Teardown requests get
        at most ``CLOSE_TIMEOUT`` and at least ``TEARDOWN_GRACE``, so a call ends close to its deadline
        even when the server stalls while the session is being released.
        """
        now = time.monotonic()
        if self._teardown:
            left = CLOSE_TIMEOUT if self._deadline is None else self._deadline - now
            return min(CLOSE_TIMEOUT, max(left, TEARDOWN_GRACE))
        if self._deadline is None:
            return None
        return self._deadline - now

    def _new_wsman(self) -> Any:
        self.settings.check_installed()  # a missing auth package is a usage error, not the server's fault
        kwargs = _wsman_kwargs(self.settings)
        return _wsman_class()(self._request_limit, self.settings.tls_server_name, **kwargs)

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> ServerSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def open(self, *, timeout: float | None = None, import_module: bool = False) -> None:
        """Open the runspace pool, unless already open.

        Raises only ``ocsps.errors`` types. Opening sends no action, so a transient fault (HTTP 503 while
        WinRM restarts, a dropped connection) is retried with backoff within ``timeout`` (default
        ``default_timeout``), which also bounds every request of the handshake. The product module is
        imported by the first call, in the same pipeline; ``import_module`` imports it now instead, in a
        pipeline of its own, for a caller that wants a module that does not load to fail here
        (``RemoteError``) rather than in its first call.
        """
        budget = self.default_timeout if timeout is None else timeout
        outer, outer_budget = self._deadline, self._budget
        deadline = time.monotonic() + budget if outer is None else outer
        self._deadline, self._budget = deadline, budget if outer is None else outer_budget
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._open()
                    if import_module and not self._imported:
                        self._import_module()
                    return
                except _Fault as fault:
                    self._back_off(fault, attempt, deadline, "opening the session")
        finally:
            self._deadline, self._budget = outer, outer_budget

    def _import_module(self) -> None:
        assert self._deadline is not None
        left = self._deadline - time.monotonic()
        script = render_module_import(self.product)
        try:
            self._invoke(script, {}, left, "module-import", with_import=False).raise_for_errors()
        except _Fault as fault:
            self.close()
            raise _Fault(fault.error, transient=fault.transient, sent=False) from None
        except Exception:
            self.close()
            raise
        self._imported = True

    def _open(self) -> None:
        if self._pool is not None and not self._broken:
            return
        if self._broken:
            self.close()
        self._pause_before_reopening()
        self._warn_clear_text()
        from pypsrp.powershell import RunspacePool

        try:
            wsman = self._new_wsman()
            pool = RunspacePool(wsman, configuration_name=self._configuration_uri())
        except Exception as exc:  # pypsrp refusing its arguments: nothing was sent
            error, _ = _classify(exc, self.host)
            raise _Fault(error, transient=False, sent=False) from None
        self._wsman, self._pool, self._finished = wsman, pool, None
        try:
            pool.open()
        except Exception as exc:  # every transport/protocol failure becomes a typed error
            self._broken = True  # the shell may exist on the server although the pool never opened
            self.close()
            raise self._fault(exc, what="opening the session", sent=False) from None
        self.stats.pools_opened += 1
        self._imported = False

    def _pause_before_reopening(self) -> None:
        """Back off when the server keeps breaking sessions, and say so once.

        A server that leaves every session unusable would otherwise make each call open a new pool (an
        authentication handshake and a shell each time) at full speed, silently. The pause doubles with
        each broken pool in a row (up to ``REOPEN_BACKOFF_MAX``); time already spent since the last break
        (a retry's own backoff) counts towards it.
        """
        if self._breaks < 2:
            return
        if not self._warned_reopen:
            self._warned_reopen = True
            log.warning(
                "%s: the server keeps breaking the remote session; reopening it each time, with a pause",
                self.host,
            )
        wanted = min(self.retry_backoff * (2 ** (self._breaks - 2)), REOPEN_BACKOFF_MAX)
        pause = wanted - (time.monotonic() - self._broke_at)
        if self._deadline is not None:
            pause = min(pause, self._deadline - time.monotonic())
        if pause > 0:
            time.sleep(pause)

    def _warn_clear_text(self) -> None:
        """Say on every run that the connection is not protected; once per session, before it opens."""
        if self._warned_clear or not self.warn_transport:
            return
        self._warned_clear = True
        for text in self.settings.transport_warnings():
            log.warning("%s: %s", self.host, text)

    def _configuration_uri(self) -> str:
        name = self.settings.configuration_name
        return name if name.startswith("http") else f"http://schemas.microsoft.com/powershell/{name}"

    def close(self) -> None:
        """Delete the pool's shell on the server and drop the connection; never raises.

        Every request made here is bounded by ``CLOSE_TIMEOUT`` (and, inside a call, by what is left of
        its deadline plus ``TEARDOWN_GRACE``). After a broken connection the shell is deleted over a new
        authenticated connection: an NTLM-sealed context dies with its TCP connection, and a shell left
        behind counts against the user's WinRM shell quota until it idles out.
        """
        pool, wsman, broken = self._pool, self._wsman, self._broken
        self._finished = None  # deleting the shell ends it
        if pool is not None and broken:
            self._breaks += 1
            self._broke_at = time.monotonic()
        self._pool = self._wsman = None
        self._broken = False
        self._imported = False
        teardown, self._teardown = self._teardown, True
        try:
            if pool is not None and broken:
                self._delete_shell_afresh(pool)
            elif pool is not None:
                _shorten_timeouts(wsman)
                self._close_pool(pool)
        except Exception as exc:  # whatever state pypsrp was left in, closing goes on
            log.debug("%s: releasing the session failed: %s", self.host, exc.__class__.__name__)
        finally:
            if wsman is not None:
                self._close_transport(wsman)
            self._teardown = teardown

    def _close_pool(self, pool: Any) -> None:
        try:
            pool.close()
            pool.shell.close()  # a pool the server declared broken still has a shell to delete
        except Exception as exc:  # closing a broken session must not hide the real error
            log.debug("%s: closing the runspace pool failed: %s", self.host, exc.__class__.__name__)

    def _delete_shell_afresh(self, pool: Any) -> None:
        if not getattr(pool.shell, "opened", False):
            return
        try:
            fresh = self._new_wsman()
        except Exception as exc:
            log.debug("%s: no transport to delete the shell: %s", self.host, exc.__class__.__name__)
            return
        _shorten_timeouts(fresh)
        pool.shell.wsman = fresh
        try:
            self._close_pool(pool)
        finally:
            self._close_transport(fresh)

    def _close_transport(self, wsman: Any) -> None:
        try:
            wsman.close()
        except Exception as exc:
            log.debug("%s: closing the transport failed: %s", self.host, exc.__class__.__name__)

    def _renew_transport(self) -> None:
        """Go on with the same pool over a new authenticated connection.

        Used when releasing a finished pipeline failed: the answer is in hand and the shell is most
        likely fine, but the connection may be gone, and with it the NTLM or Kerberos sealing context
        (the next request over it would be undecipherable to the server). A new transport costs one
        handshake; a new pool would cost a handshake, a shell and the module import. If the shell is in
        fact gone, the next call meets "shell not found" and is retried on a fresh session.
        """
        pool, old = self._pool, self._wsman
        if pool is None:
            return
        try:
            fresh = self._new_wsman()
            fresh.update_max_payload_size(old.max_envelope_size)
        except Exception as exc:
            log.debug("%s: no new transport: %s", self.host, exc.__class__.__name__)
            self._broken = True
            return
        pool.connection = fresh
        pool.shell.wsman = fresh
        self._wsman = fresh
        self.stats.transports_renewed += 1
        if old is not None:
            self._close_transport(old)

    # ------------------------------------------------------------------ running
    def run(self, rendered: RenderedScript, *, timeout: float | None = None) -> RunResult:
        """Run a rendered action; values are bound as parameters, never pasted into the script.

        ``timeout`` (default ``default_timeout``) is the overall deadline of the call: opening the pool,
        the authentication handshake, every request, every retry and the release of the pipeline. A read
        that meets a transient fault (dropped connection, HTTP 500 or 503, shell gone) is retried with
        backoff on a fresh session inside that deadline (at most ``MAX_READ_ATTEMPTS`` times; then
        ``RetriesExhausted``); a state-changing action is never sent twice, and a fault after it may have
        reached the server raises ``OutcomeUnknown``. A call out of time raises ``TimeoutExceeded``.

        State-changing actions are reported to ``audit`` with their outcome, whatever it is.
        """
        outer, self._stream = self._stream, (None, None)
        try:
            return self._audited(rendered, timeout)
        finally:
            self._stream = outer

    def stream(
        self,
        rendered: RenderedScript,
        on_output: OutputCallback,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run a long pipeline and hand each output object to ``on_output`` as it arrives.

        A watch that writes a status every poll then costs one Receive per update instead of a pipeline
        (Command, Receive, Signal) per poll. Everything ``run`` promises holds: the deadline ``timeout``
        bounds the whole call (the pipeline is stopped when it passes), the pipeline is released (Signal
        terminate) however the call ends, a read is retried on a fresh session (its objects are then
        delivered again from the start), a change is never sent twice. ``cancel`` is looked at before the
        call is sent (``Cancelled``, nothing sent) and after every Receive: the pipeline is then stopped
        and ``StreamStopped`` raised. Ctrl-C (``KeyboardInterrupt``) stops the pipeline too, then goes on.
        An exception from ``on_output`` stops the pipeline and is raised as it is. The returned result
        holds every object, as ``run`` would.
        """
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{rendered.action}: cancelled; nothing was sent", host=self.host)
        outer, self._stream = self._stream, (on_output, cancel)
        try:
            return self._audited(rendered, timeout)
        finally:
            self._stream = outer

    def _audited(self, rendered: RenderedScript, timeout: float | None) -> RunResult:
        if not rendered.changes_state or self.audit is None:
            return self._run(rendered, timeout)
        started = time.monotonic()
        try:
            result = self._run(rendered, timeout)
        except OutcomeUnknown as exc:
            self.audit(rendered, None, f"unknown: {exc.message}", time.monotonic() - started)
            raise
        except StreamStopped as exc:
            self.audit(rendered, None, f"stopped while running: {exc.message}", time.monotonic() - started)
            raise
        except OcspsError as exc:
            self.audit(rendered, None, f"failed: {exc.message}", time.monotonic() - started)
            raise
        outcome = "failed: " + result.errors[0].message if result.errors else "ok"
        self.audit(rendered, result, outcome, time.monotonic() - started)
        return result

    def _run(self, rendered: RenderedScript, timeout: float | None) -> RunResult:
        if rendered.product.id != self.product.id:
            raise OcspsError(
                f"script rendered for {rendered.product.id}, session is {self.product.id}", host=self.host
            )
        budget = self.default_timeout if timeout is None else timeout
        outer, outer_budget = self._deadline, self._budget
        deadline = time.monotonic() + budget
        self._deadline = deadline if outer is None else min(deadline, outer)
        self._budget = budget if outer is None else outer_budget
        try:
            return self._attempts(rendered, budget)
        finally:
            self._deadline, self._budget = outer, outer_budget

    def _attempts(self, rendered: RenderedScript, budget: float) -> RunResult:
        assert self._deadline is not None
        on_output, cancel = self._stream
        deadline = self._deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                self._open()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutExceeded(f"{rendered.action}: no time left to run", host=self.host)
                result = self._invoke(
                    rendered.script,
                    rendered.bound_parameters,
                    remaining,
                    rendered.action,
                    allowed=budget,
                    on_output=on_output,
                    cancel=cancel,
                )
                return RunResult(
                    host=result.host,
                    action=result.action,
                    output=result.output,
                    errors=result.errors,
                    warnings=result.warnings,
                    duration=result.duration,
                    attempts=attempt,
                    body_sha256=rendered.body_sha256,
                )
            except _Fault as fault:
                self.close()  # a fresh authenticated session next time
                if rendered.changes_state and fault.sent:
                    raise OutcomeUnknown(
                        f"{rendered.action}: {fault.error.args[0]}; it may or may not have run",
                        host=self.host,
                        hint="re-read the service state before trying again",
                    ) from None
                if isinstance(fault.error, TimeoutExceeded):
                    raise fault.error from None
                if attempt >= MAX_READ_ATTEMPTS and fault.transient:
                    raise RetriesExhausted(
                        f"{rendered.action}: {fault.error.args[0]} ({attempt} attempts on fresh sessions)",
                        host=self.host,
                        attempts=attempt,
                    ) from None
                self._back_off(fault, attempt, deadline, rendered.action)

    def _fault(self, exc: BaseException, *, what: str, sent: bool, allowed: float | None = None) -> _Fault:
        """The ``_Fault`` for a failure; once the deadline has passed it is a timeout, whatever broke."""
        if isinstance(exc, _DeadlineReached) or self._expired():
            allowed = self._budget if allowed is None else allowed
            limit = f" within {allowed:g}s" if allowed is not None else ""
            error: OcspsError = TimeoutExceeded(f"{what} did not finish{limit} (deadline)", host=self.host)
            # A request cut short by the deadline may have reached the server; one never sent did not.
            return _Fault(error, transient=False, sent=sent and not isinstance(exc, _DeadlineReached))
        error, transient = _classify(exc, self.host)
        return _Fault(error, transient=transient, sent=sent)

    def _back_off(self, fault: _Fault, attempt: int, deadline: float, what: str) -> None:
        """Wait before another attempt, or raise the fault's error when it is not worth one."""
        if not fault.transient:
            raise fault.error from None
        pause = self.retry_backoff * (2 ** (attempt - 1))
        if time.monotonic() + pause >= deadline:
            raise RetriesExhausted(
                f"{fault.error.args[0]} (gave up {what} after {attempt} attempts: deadline)",
                host=self.host,
                hint=fault.error.hint,
                attempts=attempt,
            ) from None
        self.stats.retries += 1
        log.info("%s: %s; retrying %s in %.2fs", self.host, fault.error.args[0], what, pause)
        time.sleep(pause)

    def _invoke(
        self,
        script: str,
        parameters: Mapping[str, object],
        budget: float,
        action: str,
        *,
        allowed: float | None = None,
        with_import: bool = True,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run one pipeline within ``budget`` seconds; ``allowed`` is the caller's whole deadline, as told.

        The first pipeline of a pool imports the product module as its first statement: one pipeline for
        a cold call instead of two. The import is idempotent on the server (it checks for the cmdlets
        first), so a call retried on the same pool may carry it again harmlessly.
        """
        from pypsrp.complex_objects import PSInvocationState
        from pypsrp.exceptions import AuthenticationError as PsrpAuthError
        from pypsrp.exceptions import WSManFaultError
        from pypsrp.powershell import PowerShell

        started = time.monotonic()
        deadline = started + budget
        limit = budget if allowed is None else allowed
        self._release_finished()
        ps = PowerShell(self._pool)
        importing = with_import and not self._imported
        if importing:
            ps.add_script(render_module_import(self.product))
            ps.add_statement()
        ps.add_script(script)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        seen_progress = 0
        delivered = 0
        refused = False
        try:
            try:
                ps.begin_invoke()
            except (WSManFaultError, PsrpAuthError):
                refused = True  # the server answered the Command with a refusal: nothing started
                raise
            while ps.state == PSInvocationState.RUNNING:
                if cancel is not None and cancel.is_set():
                    self._stop(ps)
                    raise StreamStopped(f"{action}: stopped on request while running", host=self.host)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._stop(ps)
                    raise TimeoutExceeded(
                        f"{action} did not finish within {limit:g}s (stopped)", host=self.host
                    )
                wait = max(1, min(int(self.settings.operation_timeout), int(remaining) or 1))
                try:
                    ps.poll_invoke(timeout=wait)
                except Exception as exc:
                    if not (self._expired() and _timed_out(exc)):
                        raise
                    # The deadline cut a Receive short: the command still runs on the server. Stop it
                    # over a new connection (the timed-out one, and its sealing context, are gone).
                    self._renew_transport()
                    self._stop(ps)
                    raise TimeoutExceeded(
                        f"{action} did not finish within {limit:g}s (stopped)", host=self.host
                    ) from None
                seen_progress = self._report_progress(ps, seen_progress)
                delivered = _deliver(ps, delivered, on_output)
            delivered = _deliver(ps, delivered, on_output)
        except OcspsError:
            raise
        except _CallbackFailed as failed:
            if ps.state == PSInvocationState.RUNNING:
                self._stop(ps)
            raise failed.error from None
        except KeyboardInterrupt:
            # Ctrl-C may have cut a request short: stop the pipeline over a new connection, then go on.
            self._renew_transport()
            if ps.state == PSInvocationState.RUNNING:
                self._stop(ps)
            raise
        except Exception as exc:
            self._broken = True
            raise self._fault(exc, what=action, sent=not refused, allowed=limit) from None
        finally:
            self._close_pipeline(ps)
        duration = time.monotonic() - started
        self.stats.calls += 1
        self.stats.timings.append(duration)
        warnings = tuple(str(getattr(w, "message", w)) for w in ps.streams.warning)
        for text in warnings:
            log.warning("%s: %s", self.host, text)
        for record in ps.streams.verbose:
            log.info("%s: %s", self.host, getattr(record, "message", record))
        for debug in ps.streams.debug:
            log.debug("%s: %s", self.host, getattr(debug, "message", debug))
        errors = tuple(error_record(e) for e in ps.streams.error)
        if ps.had_errors and not errors:
            errors = (ErrorRecord(f"{action} failed on the server without an error record"),)
        if importing and not errors:
            self._imported = True
        if not self._broken:
            self._breaks = 0
        return RunResult(self.host, action, tuple(ps.output), errors, warnings, duration)

    def _report_progress(self, ps: Any, seen: int) -> int:
        """Hand new progress records to ``on_progress``.

        A failing callback (a progress bar) is logged and ignored: the call in flight may be a change, and
        a display problem must neither abort it nor be mistaken for a fault of the server.
        """
        records = ps.streams.progress
        if self.on_progress is not None:
            for record in records[seen:]:
                percent = getattr(record, "percent_complete", None)
                progress = Progress(
                    self.host,
                    str(getattr(record, "activity", "") or ""),
                    str(getattr(record, "description", "") or ""),
                    -1 if percent is None else int(percent),
                )
                try:
                    self.on_progress(progress)
                except Exception:
                    log.warning("%s: the progress callback failed", self.host, exc_info=True)
        return len(records)

    def _stop(self, ps: Any) -> None:
        teardown, self._teardown = self._teardown, True
        try:
            ps.stop()
        except Exception as exc:
            self._broken = True  # the stop signal never arrived: do not trust this pool again
            log.debug("%s: stopping the pipeline failed: %s", self.host, exc.__class__.__name__)
        finally:
            self._teardown = teardown

    def _close_pipeline(self, ps: Any) -> None:
        """Mark a finished command for release; it is released before the next one (``_release_finished``).

        A WinRM shell refuses new commands after ``MaxConcurrentCommandsPerShell`` unterminated ones, so
        every pipeline is released; deferring the Signal to the next Command keeps at most one open and
        lets the shell's Delete end the last one of a session for free.
        """
        from pypsrp.complex_objects import PSInvocationState

        if self._broken:
            return  # the pool goes away with its shell; no request on a connection known to be broken
        if ps.state in (PSInvocationState.COMPLETED, PSInvocationState.FAILED, PSInvocationState.STOPPED):
            self._finished = ps

    def _release_finished(self) -> None:
        """Release the previous command on the server; a failure here must not cost the call about to start.

        Nor the pool: the previous output is in hand, so the session goes on over a new connection (see
        ``_renew_transport``) instead of being thrown away and reopened.
        """
        ps, self._finished = self._finished, None
        if ps is None or self._broken:
            return
        teardown, self._teardown = self._teardown, True
        try:
            ps.close()
        except Exception as exc:
            log.debug("%s: releasing the pipeline failed: %s", self.host, exc.__class__.__name__)
            self._renew_transport()
        finally:
            self._teardown = teardown


def _deliver(ps: Any, delivered: int, on_output: OutputCallback | None) -> int:
    """Hand the output objects that arrived since the last call to ``on_output``; how many were handed."""
    if on_output is None:
        return delivered
    output = ps.output
    while delivered < len(output):
        item = output[delivered]
        delivered += 1
        try:
            on_output(item)
        except BaseException as exc:
            raise _CallbackFailed(exc) from None
    return delivered


def _wsman_kwargs(settings: ConnectionSettings) -> dict[str, Any]:
    """``settings.wsman_kwargs()``, with an NTLM password in the form NTLM authenticates with.

    pyspnego derives NTLM's LM and NT one-way functions of the password for every connection; the LM one
    alone (DES in pure Python) was about a tenth of the client's CPU time per host in a fan-out. It also
    takes the password as those two values (``LM:NT`` in hex), so they are worked out once per password
    and handed over instead: the NTLM messages are the same. Only for ``ntlm``: with ``negotiate`` the
    password may be needed for Kerberos.
    """
    kwargs = settings.wsman_kwargs()
    password = kwargs.get("password")
    if kwargs.get("auth") == "ntlm" and isinstance(password, str):
        kwargs["password"] = ntlm_one_way(password)
    return kwargs


def ntlm_one_way(password: str) -> str:
    """``password`` as ``"<LM hash>:<NT hash>"`` in hex (MS-NLMP LMOWFv1 and NTOWFv1), a form pyspnego
    accepts wherever it takes a password; the password itself if it is already in that form or pyspnego
    no longer offers the functions. Masked in output like the password (``ocsps.redact``)."""
    key = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
    with _ONE_WAY_LOCK:
        known = _ONE_WAY.get(key)
    if known is not None:
        return known
    try:
        from spnego._ntlm_raw.crypto import is_ntlm_hash, lmowfv1, ntowfv1
    except ImportError:  # moved in a later pyspnego: the plain password still works, only slower
        return password
    if is_ntlm_hash(password):
        return password
    derived = f"{lmowfv1(password).hex()}:{ntowfv1(password).hex()}"
    from ocsps.redact import register_secret

    register_secret(derived)
    with _ONE_WAY_LOCK:
        if len(_ONE_WAY) >= 16:
            _ONE_WAY.clear()
        _ONE_WAY[key] = derived
    return derived


_ONE_WAY: dict[bytes, str] = {}
_ONE_WAY_LOCK = threading.Lock()


@functools.cache
def _wsman_class() -> type[Any]:
    """pypsrp's ``WSMan``, minus its own retries of a Receive that timed out, plus the caller's deadline.

    pypsrp resends such a Receive up to five times, sleeping up to a minute between tries: that outlives
    any deadline the caller set, and output the server already sent with a lost reply is silently gone.
    Here the read timeout surfaces at once and ``ServerSession``'s policy decides: a read is run again on
    a fresh session inside its deadline, a change is reported as ``OutcomeUnknown``.

    Over https the certificate is validated (and SNI sent) for ``tls_name``, the host the administrator
    named, whatever address is dialled.

    Every HTTP request (authentication legs included) is bounded by ``limit()``: the connect and read
    timeouts shrink to what is left of the call's deadline, and a request with no time left is not sent
    (``_DeadlineReached``). pypsrp reads no deadline of its own, so without this a request the server
    never answers holds the caller for a whole read timeout whatever ``timeout`` the call was given.
    """
    import xml.etree.ElementTree as ElementTree

    from pypsrp.exceptions import WinRMError
    from pypsrp.wsman import NAMESPACES, WSMan, WSManAction

    class DeadlineWSMan(WSMan):
        def __init__(self, limit: Callable[[], float | None], tls_name: str | None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            transport = self.transport
            original = transport.send
            build = transport._build_session

            def build_session() -> Any:
                session: Any = build()
                # pypsrp has just read the proxy and CA bundle variables into the session (its proxies
                # and verify); left trusting the environment, requests would scan every variable again
                # on each request of the session (twice, for the proxy and for NO_PROXY), to reach the
                # same answer: about 5 % of the client's CPU time per host in a fan-out, more with a
                # larger environment.
                session.trust_env = False
                if tls_name is not None:
                    # Check the certificate (and send SNI) for the server the administrator named, not
                    # the address dialled: connect_address only says where to find it.
                    pool_kw = session.get_adapter("https://").poolmanager.connection_pool_kw
                    pool_kw["server_hostname"] = tls_name
                    pool_kw["assert_hostname"] = tls_name
                return session

            transport._build_session = build_session  # type: ignore[method-assign]

            def send(message: bytes, *, retries_on_read_timeout: int = 0, timeout: Any = None) -> bytes:
                left = limit()
                if left is not None:
                    if left <= 0:
                        raise _DeadlineReached()
                    own = (transport.connection_timeout, transport.read_timeout)
                    base = own if timeout is None else timeout
                    pair = base if isinstance(base, tuple) else (base, base)
                    timeout = (min(float(pair[0]), left), min(float(pair[1]), left))
                return bytes(original(message, retries_on_read_timeout=0, timeout=timeout))

            transport.send = send  # type: ignore[method-assign]

        def receive(
            self,
            resource_uri: str,
            resource: ElementTree.Element,
            option_set: Any = None,
            selector_set: Any = None,
            timeout: int | None = None,
        ) -> ElementTree.Element:
            res = self.invoke(WSManAction.RECEIVE, resource_uri, resource, option_set, selector_set, timeout)
            body = res.find("s:Body", namespaces=NAMESPACES)
            if body is None:
                raise WinRMError("a Receive reply without a SOAP body")
            return body

    return DeadlineWSMan


def _timed_out(exc: BaseException) -> bool:
    """A request ended by a connect or read timeout (or not sent for want of time)."""
    import requests

    return isinstance(exc, _DeadlineReached | requests.exceptions.Timeout)


def _shorten_timeouts(wsman: Any) -> None:
    """Bound the connect and read time of teardown requests (pypsrp reads them at each request)."""
    transport = getattr(wsman, "transport", None)
    if transport is None:
        return
    transport.connection_timeout = min(float(transport.connection_timeout), CLOSE_TIMEOUT)
    transport.read_timeout = min(float(transport.read_timeout), CLOSE_TIMEOUT)
