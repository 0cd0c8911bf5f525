"""A fault-injecting HTTP proxy for tests: between ocsps and the lab, it breaks one request on purpose.

The lab's own fault knobs act inside the server, per WSMan action. Some failures only exist between client
and server: a reply lost *after* the server acted, an intermediary answering a bare HTTP 500, a request that
never arrives while the connection stays open. This proxy produces them at a chosen request index of a whole
session (authentication legs included, so "the 8th request" means what a packet capture would show).

Each client connection gets its own upstream connection, so NTLM-sealed sessions keep working through it.
It listens on loopback only, bounds every wait, and stops by itself after ``lifetime`` seconds even when a
test forgets to stop it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

FaultKind = Literal["drop", "503", "500", "lost", "stall"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("drop", "503", "500", "lost", "stall")
"""What happens to the chosen request:

- ``drop``: the connection closes before the request is forwarded (nothing reached the server);
- ``503`` / ``500``: the proxy answers that bare status itself (no SOAP fault), nothing forwarded;
- ``lost``: forwarded, the server acted and answered, the answer is thrown away and the connection closed;
- ``stall``: not forwarded, no answer; the connection is held open until the client gives up.
"""

_MAX_HEADER: Final = 64 * 1024
_MAX_BODY: Final = 16 * 1024 * 1024


@dataclass(frozen=True)
class Fault:
    """Break request number ``index`` (1-based, counted over the proxy's whole life) with ``kind``."""

    kind: FaultKind
    index: int


@dataclass
class FaultProxy:
    """Forward HTTP/1.1 requests to ``upstream`` (a loopback port), breaking the ones ``faults`` name."""

    upstream_port: int
    faults: tuple[Fault, ...] = ()
    lifetime: float = 120.0
    """Seconds after which the proxy stops by itself."""
    io_timeout: float = 60.0
    """Seconds any one read may block (a stalled request is held at most this long)."""
    requests: int = 0
    """Requests seen so far (the index the next one gets is ``requests + 1``)."""
    fired: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _listener: socket.socket | None = field(default=None, repr=False)
    _sockets: set[socket.socket] = field(default_factory=set, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))  # loopback only, by construction
        listener.listen(32)
        listener.settimeout(0.1)
        self._listener = listener
        self._deadline = time.monotonic() + self.lifetime
        thread = threading.Thread(target=self._accept, name="faultproxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()

    @property
    def port(self) -> int:
        assert self._listener is not None, "start the proxy first"
        return int(self._listener.getsockname()[1])

    @property
    def unfired(self) -> list[Fault]:
        with self._lock:
            return [f for f in self.faults if f not in self.fired]

    # ------------------------------------------------------------------ plumbing
    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            if time.monotonic() > self._deadline:
                self._stop.set()
                break
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            thread = threading.Thread(target=self._serve, args=(client,), name="faultproxy-conn", daemon=True)
            thread.start()
            with self._lock:
                self._threads.append(thread)
        with contextlib.suppress(OSError):
            self._listener.close()

    def _track(self, sock: socket.socket) -> socket.socket:
        sock.settimeout(self.io_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        upstream: socket.socket | None = None
        upstream_reader: _Reader | None = None
        try:
            reader = _Reader(client)
            while not self._stop.is_set():
                request = reader.message()
                if request is None:
                    return
                fault = self._next_fault()
                if fault is not None and fault.kind == "drop":
                    return
                if fault is not None and fault.kind in ("503", "500"):
                    reason = "Service Unavailable" if fault.kind == "503" else "Internal Server Error"
                    client.sendall(
                        f"HTTP/1.1 {fault.kind} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .encode()
                    )
                    return
                if fault is not None and fault.kind == "stall":
                    self._stop.wait(max(0.0, min(self.io_timeout, self._deadline - time.monotonic())))
                    return
                if upstream is None or upstream_reader is None:
                    upstream = self._track(socket.create_connection(("127.0.0.1", self.upstream_port)))
                    upstream_reader = _Reader(upstream)
                upstream.sendall(request)
                reply = upstream_reader.message()
                if reply is None or (fault is not None and fault.kind == "lost"):
                    return
                client.sendall(reply)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
                    with self._lock:
                        self._sockets.discard(sock)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.requests += 1
            for fault in self.faults:
                if fault.index == self.requests:
                    self.fired.append(fault)
                    return fault
        return None


class _Reader:
    """Reads whole HTTP/1.1 messages (headers and a Content-Length body) from one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def message(self) -> bytes | None:
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > _MAX_HEADER or not self._fill():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            if name.strip().lower() == b"transfer-encoding":
                raise OSError("chunked messages are not supported by this test proxy")
        if length > _MAX_BODY:
            return None
        while len(rest) < length:
            if not self._fill():
                return None
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        whole = len(head) + 4 + length
        message, self.buffer = self.buffer[:whole], self.buffer[whole:]
        return message


@contextlib.contextmanager
def proxied(upstream_port: int, *faults: Fault, lifetime: float = 120.0) -> Iterator[FaultProxy]:
    """A running proxy for the duration of a ``with`` block."""
    with FaultProxy(upstream_port, tuple(faults), lifetime=lifetime) as proxy:
        yield proxy
