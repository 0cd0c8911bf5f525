"""The lab's WinRM listener: many simulated servers on one loopback port, started and stopped as one."""

from __future__ import annotations

import logging
import signal
import socket
import ssl
import threading
import time
import types
from collections.abc import Sequence
from typing import Any

from spnego.channel_bindings import GssChannelBindings

from ocsps.lab.auth import AUTH_MODES, AuthMode, CredentialStore
from ocsps.lab.faults import Counters, Faults
from ocsps.lab.wsman.executor import Executor
from ocsps.lab.wsman.gate import Gate
from ocsps.lab.wsman.hosts import HostSpec
from ocsps.lab.wsman.http import Exchange, HTTPServer, check_loopback
from ocsps.lab.wsman.psrp import close_shell
from ocsps.lab.wsman.shells import ShellService
from ocsps.lab.wsman.state import Host
from ocsps.lab.wsman.tls import TlsMaterial, self_signed

log = logging.getLogger("ocsps.lab.wsman")


class LabServer:
    """The lab's WinRM listener: many simulated servers, one loopback port.

    ``credentials`` is the (``DOMAIN\\user`` or ``user``, password) pair every simulated server accepts.
    With ``auth`` "ntlm" or "negotiate" over http, WSMan message encryption is required like on a default
    WinRM listener (``require_encryption=False`` relaxes that); "basic" works over http only with a client
    that sets ``encryption="never"``. ``https=True`` serves TLS with a throw-away self-signed certificate
    whose PEM path is :attr:`cert_path`.

    ``receive_linger`` is how long a Receive that already has output waits for more before replying, so a
    short command costs one Command and one Receive as on a real server, instead of depending on whether
    the executor finished before the Receive arrived.

    NTLM/Negotiate validation goes through the process-global ``NTLM_USER_FILE`` while the server runs;
    see :mod:`ocsps.lab.auth`.
    """

    def __init__(
        self,
        hosts: Sequence[HostSpec | str],
        *,
        executor: Executor,
        credentials: tuple[str, str],
        auth: AuthMode = "ntlm",
        address: str = "127.0.0.1",
        port: int = 0,
        https: bool = False,
        require_encryption: bool = True,
        receive_linger: float = 0.05,
    ) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        username, password = credentials
        if not username:
            raise ValueError("credentials need a user name")
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port}")
        self._address, self._family = check_loopback(address)
        self._requested_port = port
        self.auth: AuthMode = auth
        self._username = username
        self._password = password
        self._executor = executor
        self._https = https
        self._require_encryption = require_encryption
        self._linger = max(0.0, receive_linger)
        self._hosts: dict[str, Host] = {}
        self._hosts_lock = threading.Lock()
        self._default_host: str | None = None
        for host in hosts:
            self.add_host(host)
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stop_requested = threading.Event()
        self._tls: TlsMaterial | None = None
        self._credential_file: str | None = None
        self._lifecycle = threading.Lock()
        self._shells = ShellService(
            executor,
            owner=username,
            client_ip=self._address,
            url=self.url,
            stopping=self._stopping,
            linger=self._linger,
        )
        self._gate = Gate(
            auth=auth,
            credentials=(username, password),
            https=https,
            require_encryption=require_encryption,
            stopping=self._stopping,
            resolve=self._host_for_path,
            dispatch=self._shells.dispatch,
        )

    # -- configuration ---------------------------------------------------------------------------

    def add_host(self, host: HostSpec | str) -> HostSpec:
        """Add a simulated server (allowed while running); the first one also answers on ``/wsman``."""
        spec = HostSpec(host) if isinstance(host, str) else host
        entry = Host(spec)
        with self._hosts_lock:
            if entry.key in self._hosts:
                raise ValueError(f"host {spec.fqdn} is already served")
            self._hosts[entry.key] = entry
            if self._default_host is None:
                self._default_host = entry.key
        return spec

    def remove_host(self, fqdn: str) -> None:
        """Forget a simulated server; its shells are closed and its pipelines cancelled."""
        with self._hosts_lock:
            entry = self._hosts.pop(fqdn.lower(), None)
            if entry is not None and self._default_host == entry.key:
                self._default_host = next(iter(self._hosts), None)
        if entry is None:
            raise KeyError(fqdn)
        self._close_host(entry)

    @property
    def hosts(self) -> list[HostSpec]:
        with self._hosts_lock:
            return [entry.spec for entry in self._hosts.values()]

    def host(self, fqdn: str | None = None) -> HostSpec:
        return self._host(fqdn).spec

    def faults(self, fqdn: str | None = None) -> Faults:
        """The fault knobs of one simulated server (default: the first), mutable at run time."""
        return self._host(fqdn).faults

    def counters(self, fqdn: str | None = None) -> Counters:
        """Request counters of one simulated server (default: the first)."""
        return self._host(fqdn).counters

    def reset_counters(self) -> None:
        with self._hosts_lock:
            entries = list(self._hosts.values())
        for entry in entries:
            entry.counters.reset()

    def open_shells(self, fqdn: str | None = None) -> int:
        """Runspace pools currently open on a simulated server, to check that clients clean up."""
        entry = self._host(fqdn)
        with entry.lock:
            return len(entry.shells)

    def _host(self, fqdn: str | None) -> Host:
        with self._hosts_lock:
            key = fqdn.lower() if fqdn is not None else self._default_host
            entry = self._hosts.get(key) if key is not None else None
        if entry is None:
            raise KeyError(f"no simulated host {fqdn!r}")
        return entry

    # -- addresses -------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._address

    @property
    def port(self) -> int:
        """The bound port (the requested one until :meth:`start`; 0 means "pick one at start")."""
        if self._httpd is not None:
            return int(self._httpd.server_address[1])
        return self._requested_port

    @property
    def scheme(self) -> str:
        return "https" if self._https else "http"

    @property
    def cert_path(self) -> str | None:
        """PEM file of the self-signed certificate when serving https (exists while running)."""
        return self._tls.cert_path if self._tls is not None else None

    def path(self, fqdn: str | None = None) -> str:
        """The URL path (without leading slash) pypsrp's ``WSMan(path=...)`` needs for a host."""
        return f"wsman/{self._host(fqdn).spec.fqdn}"

    def url(self, fqdn: str | None = None) -> str:
        host = f"[{self._address}]" if self._family == socket.AF_INET6 else self._address
        return f"{self.scheme}://{host}:{self.port}/{self.path(fqdn)}"

    def client_kwargs(self, fqdn: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``pypsrp.wsman.WSMan`` that reach ``fqdn`` with the lab credentials."""
        kwargs: dict[str, Any] = {
            "server": self._address,
            "port": self.port,
            "path": self.path(fqdn),
            "ssl": self._https,
            "auth": self.auth,
            "username": self._username,
            "password": self._password,
            "no_proxy": True,
        }
        if self.auth == "basic" and not self._https:
            kwargs["encryption"] = "never"
        if self._tls is not None:
            kwargs["cert_validation"] = self._tls.cert_path
        return kwargs

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LabServer:
        """Listen and serve in a background thread; returns once the socket accepts connections."""
        with self._lifecycle:
            if self._httpd is not None:
                return self
            self._stopping.clear()
            self._stop_requested.clear()
            ssl_context = self._make_tls() if self._https else None
            try:
                httpd = HTTPServer((self._address, self._requested_port), self, self._family, ssl_context)
            except BaseException:
                self._cleanup_cert()
                raise
            if self.auth != "basic":
                try:
                    self._credential_file = CredentialStore.shared().register(
                        self, self._username, self._password
                    )
                except BaseException:
                    httpd.server_close()
                    self._cleanup_cert()
                    raise
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"ocsps-lab-{self.port}",
                daemon=True,
            )
            self._thread.start()
            log.info("lab listening on %s://%s:%d", self.scheme, self._address, self.port)
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: cancel pipelines, wake blocked Receives, close every connection, unbind."""
        with self._lifecycle:
            httpd, thread = self._httpd, self._thread
            if httpd is None:
                return
            self._stopping.set()
            self._stop_requested.set()
            with self._hosts_lock:
                entries = list(self._hosts.values())
            workers: list[threading.Thread] = []
            for entry in entries:
                workers.extend(self._close_host(entry))
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
            if thread is not None:
                thread.join(timeout)
            deadline = time.monotonic() + min(timeout, 1.0)
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            if self.auth != "basic":
                CredentialStore.shared().unregister(self)
                self._credential_file = None
            self._cleanup_cert()
            self._httpd = None
            self._thread = None
            log.info("lab stopped")

    def serve_forever(self, *, handle_signals: bool = True) -> None:
        """Run in the foreground until SIGINT/SIGTERM (or :meth:`stop` from another thread)."""
        self.start()
        previous: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():

            def _request_stop(signum: int, frame: types.FrameType | None) -> None:
                self._stop_requested.set()

            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, _request_stop)
        try:
            while not self._stop_requested.wait(0.2):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def _close_host(self, entry: Host) -> list[threading.Thread]:
        with entry.lock:
            shells = list(entry.shells.values())
            entry.shells.clear()
        workers: list[threading.Thread] = []
        for shell in shells:
            workers.extend(close_shell(shell))
        return workers

    # -- TLS ---------------------------------------------------------------------------------------

    def _make_tls(self) -> ssl.SSLContext:
        with self._hosts_lock:
            names = [entry.spec.fqdn for entry in self._hosts.values()]
        self._tls = self_signed(names, self._address)
        return self._tls.context

    def _cleanup_cert(self) -> None:
        if self._tls is not None:
            self._tls.cleanup()
        self._tls = None

    @property
    def channel_bindings(self) -> GssChannelBindings | None:
        """What NTLM binds to over https (RFC 5929 tls-server-end-point of the lab's certificate)."""
        return self._tls.channel_bindings if self._tls is not None else None

    @property
    def credential_file(self) -> str | None:
        """This lab's NTLM credential file while it runs (see :mod:`ocsps.lab.auth`)."""
        return self._credential_file

    # -- request handling ------------------------------------------------------------------------

    def _host_for_path(self, raw_path: str) -> Host | None:
        path = raw_path.split("?", 1)[0].strip("/")
        parts = path.split("/")
        if not parts or parts[0].lower() != "wsman" or len(parts) > 2:
            return None
        with self._hosts_lock:
            key = self._default_host if len(parts) == 1 or not parts[1] else parts[1].lower()
            return self._hosts.get(key) if key is not None else None

    def _handle_post(self, handler: Exchange) -> None:
        """Answer one HTTP request (also driven without a socket by in-process tests)."""
        self._gate.handle(handler)
