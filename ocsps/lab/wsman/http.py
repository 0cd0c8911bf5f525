"""The HTTP/1.1 side of the listener: keep-alive connections, optional TLS, loopback-only binding.

Requests are handed to an :class:`Endpoint` (the listener) through the small :class:`Exchange` surface, so
the same request handling can also be driven without a socket.
"""

from __future__ import annotations

import contextlib
import email.message
import io
import ipaddress
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from spnego.channel_bindings import GssChannelBindings

from ocsps.lab.auth import AuthMode, ConnectionAuth

log = logging.getLogger("ocsps.lab.wsman")


class Exchange(Protocol):
    """One HTTP request as the endpoint sees it, and the ways to answer it."""

    path: str
    headers: email.message.Message

    @property
    def rfile(self) -> io.BufferedIOBase: ...

    conn_auth: ConnectionAuth

    def send_plain(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None: ...

    def drop(self) -> None: ...


class Endpoint(Protocol):
    """What a connection needs from the listener: how to authenticate, and who answers requests."""

    auth: AuthMode

    @property
    def channel_bindings(self) -> GssChannelBindings | None: ...

    @property
    def credential_file(self) -> str | None: ...

    def _handle_post(self, handler: Exchange) -> None: ...


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        endpoint: Endpoint,
        family: socket.AddressFamily,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.address_family = family
        self.endpoint = endpoint
        self.ssl_context = ssl_context
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the bound address with getfqdn(), a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # The handshake runs in the connection's own thread (see Handler.setup), not in the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, every reply waits for the client's
    # delayed ACK (~40 ms), which would dominate round-trip benchmarks.
    disable_nagle_algorithm = True
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    server: HTTPServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()
        endpoint = self.server.endpoint
        self.conn_auth = ConnectionAuth(
            mode=endpoint.auth,
            channel_bindings=endpoint.channel_bindings,
            credential_file=endpoint.credential_file,
        )

    def do_POST(self) -> None:
        self.server.endpoint._handle_post(self)

    def _not_allowed(self) -> None:
        self.send_plain(405, b"", headers=[("Allow", "POST")])

    do_GET = _not_allowed
    do_PUT = _not_allowed
    do_DELETE = _not_allowed

    def send_plain(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def drop(self) -> None:
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def check_loopback(address: str) -> tuple[str, socket.AddressFamily]:
    if address == "localhost":
        address = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"the lab binds to a loopback IP address only, not {address!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"the lab binds to loopback only (127.0.0.0/8 or ::1), not {address}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return str(ip), family


def read_body(handler: Exchange) -> bytes | None:
    """The request body, or ``None`` after refusing it (chunked, bad length)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        handler.send_plain(411, b"")
        handler.drop()
        return None
    try:
        length = int(handler.headers.get("Content-Length", "0") or "0")
    except ValueError:
        handler.send_plain(400, b"bad Content-Length")
        handler.drop()
        return None
    return handler.rfile.read(length) if length > 0 else b""
