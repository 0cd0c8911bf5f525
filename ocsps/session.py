"""One PowerShell Remoting session per server: open once, run many rendered scripts, close.

pypsrp's ``Client.execute_ps`` opens a new runspace pool per call and returns text; an administrator's
drain poll would then pay pool creation (and NTLM) on every poll. Here one ``RunspacePool`` serves every
call of an invocation, the product module is imported once, every pipeline is closed (a shell otherwise
runs out of commands), and each call has a deadline pypsrp itself does not offer.

Faults are translated into ``ocsps.errors``: a one-line message naming the host, never a traceback from
requests or pypsrp. Read-only calls are retried with backoff inside their deadline, on a fresh
authenticated session (an NTLM-sealed session cannot continue on a new TCP connection). State-changing
calls are never repeated: a lost connection raises ``OutcomeUnknown`` and the caller re-reads state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ocsps.catalog import Product
from ocsps.connection import ConnectionSettings
from ocsps.errors import (
    AuthenticationError,
    ConnectError,
    ErrorRecord,
    OcspsError,
    OutcomeUnknown,
    RemoteError,
    TimeoutExceeded,
)
from ocsps.script import RenderedScript, render_module_import

log = logging.getLogger("ocsps.remote")

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
    host: str
    activity: str
    status: str
    percent: int


@dataclass(frozen=True)
class RunResult:
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
    timings: list[float] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]
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


def classify_fault(exc: BaseException, host: str) -> OcspsError:
    """Map transport and protocol exceptions to one-line, typed errors."""
    import requests
    from pypsrp.exceptions import AuthenticationError as PsrpAuthError
    from pypsrp.exceptions import WinRMTransportError, WSManFaultError

    if isinstance(exc, OcspsError):
        return exc
    if isinstance(exc, PsrpAuthError):
        return AuthenticationError(
            "authentication failed: check the username, password and auth method", host=host
        )
    if isinstance(exc, WinRMTransportError):
        if exc.code == 401:
            return AuthenticationError("the server refused the credentials (HTTP 401)", host=host)
        return ConnectError(f"WinRM answered HTTP {exc.code}", host=host)
    if isinstance(exc, WSManFaultError):
        reason = " ".join(str(exc.reason or exc.message or "").split())[:200]
        if exc.code in (2150858843, 2150859173, 2150859174):
            return ConnectError(
                f"WinRM quota reached: {reason}", host=host, hint="close other sessions or raise the quota"
            )
        return ConnectError(f"WS-Management fault {exc.code}: {reason}", host=host)
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectError(
            "TLS failed: the server certificate could not be verified",
            host=host,
            hint="give the issuing CA with --ca-bundle (turning validation off is possible but unsafe)",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectError("connection timed out", host=host)
    if isinstance(exc, requests.exceptions.ProxyError):
        return ConnectError("the proxy refused or failed the connection", host=host)
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
            return ConnectError("the host name does not resolve", host=host)
        if "refused" in text.lower():
            return ConnectError("connection refused (is WinRM listening on that port?)", host=host)
        return ConnectError("the connection dropped", host=host)
    if isinstance(exc, requests.exceptions.Timeout):
        return ConnectError("the server did not answer in time (read timeout)", host=host)
    if isinstance(exc, requests.exceptions.RequestException):
        return ConnectError(f"HTTP request failed ({exc.__class__.__name__})", host=host)
    name = exc.__class__.__name__
    return ConnectError(f"the server's answer could not be understood ({name})", host=host)


def _transient(exc: OcspsError) -> bool:
    return isinstance(exc, ConnectError) and not isinstance(exc, AuthenticationError)


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

    @property
    def host(self) -> str:
        return self.settings.host

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> ServerSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def open(self) -> None:
        if self._pool is not None:
            return
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        try:
            wsman = WSMan(**self.settings.wsman_kwargs())
            pool = RunspacePool(wsman, configuration_name=self._configuration_uri())
            pool.open()
        except Exception as exc:  # every transport/protocol failure becomes a typed error
            raise classify_fault(exc, self.host) from None
        self._wsman, self._pool = wsman, pool
        self.stats.pools_opened += 1
        try:
            self._invoke(
                render_module_import(self.product), {}, self.default_timeout, "module-import"
            ).raise_for_errors()
        except Exception:
            self.close()
            raise

    def _configuration_uri(self) -> str:
        name = self.settings.configuration_name
        return name if name.startswith("http") else f"http://schemas.microsoft.com/powershell/{name}"

    def close(self) -> None:
        pool, wsman = self._pool, self._wsman
        self._pool = self._wsman = None
        if pool is not None:
            try:
                pool.close()
            except Exception as exc:  # closing a broken session must not hide the real error
                log.debug("%s: closing the runspace pool failed: %s", self.host, exc.__class__.__name__)
        if wsman is not None:
            try:
                wsman.close()
            except Exception as exc:
                log.debug("%s: closing the transport failed: %s", self.host, exc.__class__.__name__)

    # ------------------------------------------------------------------ running
    def run(self, rendered: RenderedScript, *, timeout: float | None = None) -> RunResult:
        """Run a rendered action; values are bound as parameters, never pasted into the script.

        State-changing actions are reported to ``audit`` with their outcome, whatever it is.
        """
        if not rendered.changes_state or self.audit is None:
            return self._run(rendered, timeout)
        started = time.monotonic()
        try:
            result = self._run(rendered, timeout)
        except OutcomeUnknown as exc:
            self.audit(rendered, None, f"unknown: {exc.message}", time.monotonic() - started)
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
        deadline = time.monotonic() + budget
        attempt = 0
        while True:
            attempt += 1
            try:
                self.open()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutExceeded(f"{rendered.action}: no time left to run", host=self.host)
                result = self._invoke(rendered.script, rendered.bound_parameters, remaining, rendered.action)
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
            except OcspsError as exc:
                if not _transient(exc):
                    raise
                self.close()  # a fresh authenticated session next time
                if rendered.changes_state:
                    raise OutcomeUnknown(
                        f"{rendered.action}: {exc.args[0]}; it may or may not have run",
                        host=self.host,
                        hint="re-read the service state before trying again",
                    ) from None
                pause = self.retry_backoff * (2 ** (attempt - 1))
                if time.monotonic() + pause >= deadline:
                    raise
                self.stats.retries += 1
                log.info("%s: %s; retrying %s in %.2fs", self.host, exc.args[0], rendered.action, pause)
                time.sleep(pause)

    def _invoke(self, script: str, parameters: Mapping[str, object], budget: float, action: str) -> RunResult:
        from pypsrp.complex_objects import PSInvocationState
        from pypsrp.powershell import PowerShell

        started = time.monotonic()
        deadline = started + budget
        ps = PowerShell(self._pool)
        ps.add_script(script)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        seen_progress = 0
        try:
            ps.begin_invoke()
            while ps.state == PSInvocationState.RUNNING:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._stop(ps)
                    raise TimeoutExceeded(
                        f"{action} did not finish within {budget:.0f}s (stopped)", host=self.host
                    )
                wait = max(1, min(int(self.settings.operation_timeout), int(remaining) or 1))
                ps.poll_invoke(timeout=wait)
                seen_progress = self._report_progress(ps, seen_progress)
        except OcspsError:
            raise
        except Exception as exc:
            raise classify_fault(exc, self.host) from None
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
        errors = tuple(error_record(e) for e in ps.streams.error)
        if ps.had_errors and not errors:
            errors = (ErrorRecord(f"{action} failed on the server without an error record"),)
        return RunResult(self.host, action, tuple(ps.output), errors, warnings, duration)

    def _report_progress(self, ps: Any, seen: int) -> int:
        records = ps.streams.progress
        if self.on_progress is not None:
            for record in records[seen:]:
                self.on_progress(
                    Progress(
                        self.host,
                        str(getattr(record, "activity", "") or ""),
                        str(getattr(record, "description", "") or ""),
                        int(getattr(record, "percent_complete", -1) or -1),
                    )
                )
        return len(records)

    def _stop(self, ps: Any) -> None:
        try:
            ps.stop()
        except Exception as exc:
            log.debug("%s: stopping the pipeline failed: %s", self.host, exc.__class__.__name__)

    def _close_pipeline(self, ps: Any) -> None:
        """Release the command on the server; a failure here must not mask the call's own outcome."""
        from pypsrp.complex_objects import PSInvocationState

        if ps.state in (PSInvocationState.COMPLETED, PSInvocationState.FAILED, PSInvocationState.STOPPED):
            try:
                ps.close()
            except Exception as exc:
                log.debug("%s: closing the pipeline failed: %s", self.host, exc.__class__.__name__)


def connect(
    host: str,
    *,
    product: str | Product,
    password: str | None = None,
    **settings: Any,
) -> ServerSession:
    """Open a session from keyword settings; the short way in for automation scripts.

    >>> with connect("med01.contoso.com", product="lync2013", auth="ntlm",
    ...              username="CONTOSO\\\\admin", password=os.environ["OCSPS_PASSWORD"]) as server:
    ...     ...
    """
    from ocsps.catalog import load_catalog
    from ocsps.connection import Secret

    prod = load_catalog().product(product) if isinstance(product, str) else product
    conn = ConnectionSettings(
        host=host, password=Secret(password) if password else None, product=prod.id, **settings
    )
    return ServerSession(conn, prod)
