"""The way into a simulated server: routing, authentication, message encryption and injected faults.

Everything a real WinRM listener checks before a SOAP request reaches the shell service happens here, in the
order it happens there: the URL picks the simulated server, a 401 challenge runs NTLM/Negotiate (or Basic),
an encrypted body is unwrapped with the connection's security context, clear text is refused where a default
listener refuses it, and only then does the request count as a WSMan action that a fault can hit.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable

from ocsps.lab.auth import (
    AuthMode,
    DecryptionError,
    check_basic,
    is_encrypted,
    parse_token,
    principal_matches,
)
from ocsps.lab.faults import (
    ACTIONS,
    AUTH_LEGS,
    DROPPED,
    ENCRYPTED,
    HTTP_ERRORS,
    REQUESTS,
    TIMEOUTS,
    UNAUTHORIZED,
    FaultKind,
)
from ocsps.lab.wsman.http import Exchange, read_body
from ocsps.lab.wsman.shells import Drop
from ocsps.lab.wsman.soap import (
    FAULT_FAILED,
    FAULT_OPERATION_TIMEOUT,
    SOAP_CONTENT_TYPE,
    Request,
    WsmanFault,
    fault_envelope,
    parse_request,
)
from ocsps.lab.wsman.state import Host

log = logging.getLogger("ocsps.lab.wsman")


class Gate:
    """Handles one HTTP request for a listener; ``dispatch`` answers a SOAP request that got through."""

    def __init__(
        self,
        *,
        auth: AuthMode,
        credentials: tuple[str, str],
        https: bool,
        require_encryption: bool,
        stopping: threading.Event,
        resolve: Callable[[str], Host | None],
        dispatch: Callable[[Host, Request], bytes],
    ) -> None:
        self.auth = auth
        self._username, self._password = credentials
        self._https = https
        self._require_encryption = require_encryption
        self._stopping = stopping
        self._resolve = resolve
        self._dispatch = dispatch

    def handle(self, handler: Exchange) -> None:
        body = read_body(handler)
        if body is None:
            return
        host = self._resolve(handler.path)
        if host is None:
            handler.send_plain(404, b"")
            return
        host.counters.incr(REQUESTS)
        latency = host.faults.current_latency()
        if latency and self._stopping.wait(latency):
            handler.drop()
            return
        if self._stopping.is_set():
            handler.drop()
            return

        auth = handler.conn_auth
        reply_headers: list[tuple[str, str]] = []
        if self.auth == "basic":
            authz = handler.headers.get("Authorization", "")
            if not authz or not check_basic(authz, self._username, self._password):
                self._unauthorized(handler, host, auth.challenge_scheme)
                return
        else:
            authz = handler.headers.get("Authorization", "")
            token = parse_token(authz) if authz else None
            if token is not None:
                scheme, in_token = token
                host.counters.incr(AUTH_LEGS)
                try:
                    complete, out_token = auth.step(scheme, in_token)
                except Exception as exc:  # bad token, unknown user, wrong password: all a plain 401
                    log.debug("authentication failed: %s", exc)
                    auth.reset()
                    self._unauthorized(handler, host, auth.challenge_scheme)
                    return
                if not complete:
                    encoded = base64.b64encode(out_token or b"").decode()
                    self._unauthorized(handler, host, f"{scheme} {encoded}")
                    return
                if not principal_matches(auth.principal, self._username):
                    log.debug("authenticated %r; this lab accepts %r only", auth.principal, self._username)
                    auth.reset()
                    self._unauthorized(handler, host, auth.challenge_scheme)
                    return
                auth.authenticated_for = host.key
                if out_token:
                    final = base64.b64encode(out_token).decode()
                    reply_headers.append(("WWW-Authenticate", f"{scheme} {final}"))
                if not body:
                    handler.send_plain(200, b"", headers=reply_headers)
                    return
            elif auth.authenticated_for != host.key:
                self._unauthorized(handler, host, auth.challenge_scheme)
                return

        encrypted = is_encrypted(handler.headers.get("Content-Type", ""))
        if encrypted:
            if self.auth == "basic":
                handler.send_plain(400, b"Basic authentication cannot carry encrypted messages")
                return
            try:
                soap = auth.unwrap(body)
            except DecryptionError as exc:
                log.debug("%s: %s", host.spec.fqdn, exc)
                handler.send_plain(400, str(exc).encode())
                return
            host.counters.incr(ENCRYPTED)
        else:
            needs_encryption = self.auth != "basic" and not self._https and self._require_encryption
            if needs_encryption and body:
                # A default WinRM listener (AllowUnencrypted=false) refuses clear-text SOAP this way.
                self._unauthorized(handler, host, auth.challenge_scheme)
                return
            soap = body

        def send(status: int, payload: bytes) -> None:
            if encrypted:
                content_type, wire = auth.wrap(payload)
            else:
                content_type, wire = SOAP_CONTENT_TYPE, payload
            handler.send_plain(status, wire, content_type=content_type, headers=reply_headers)

        try:
            request = parse_request(soap)
        except ValueError as exc:
            handler.send_plain(400, str(exc).encode())
            return
        action = request.action
        host.counters.incr(action)
        fault = host.faults.consume(action) if action in ACTIONS else FaultKind.NONE
        if fault is FaultKind.DROP:
            host.counters.incr(DROPPED)
            handler.drop()
            return
        if fault is FaultKind.HTTP_503:
            host.counters.incr(HTTP_ERRORS)
            handler.send_plain(503, b"Service Unavailable", content_type="text/plain", headers=reply_headers)
            return
        if fault is FaultKind.HTTP_500:
            host.counters.incr(HTTP_ERRORS)
            injected = WsmanFault(FAULT_FAILED, "w:InternalError", "Internal error injected by the lab.")
            send(500, fault_envelope(injected, request.message_id, host.spec.fqdn))
            return

        try:
            status, payload = 200, self._dispatch(host, request)
        except Drop:
            handler.drop()
            return
        except WsmanFault as exc:
            if exc.code == FAULT_OPERATION_TIMEOUT:
                host.counters.incr(TIMEOUTS)
            status, payload = 500, fault_envelope(exc, request.message_id, host.spec.fqdn)
        except Exception as exc:
            log.exception("%s: %s failed", host.spec.fqdn, action)
            failure = WsmanFault(FAULT_FAILED, "w:InternalError", f"{type(exc).__name__}: {exc}")
            status, payload = 500, fault_envelope(failure, request.message_id, host.spec.fqdn)
        if fault is FaultKind.DROP_AFTER:
            host.counters.incr(DROPPED)
            handler.drop()
            return
        send(status, payload)

    def _unauthorized(self, handler: Exchange, host: Host, challenge: str) -> None:
        host.counters.incr(UNAUTHORIZED)
        handler.send_plain(401, b"", headers=[("WWW-Authenticate", challenge)])
