"""Server side of WinRM authentication for the lab: Basic, NTLM and Negotiate, plus message encryption.

pyspnego's NTLM acceptor validates passwords against the file named by the environment variable
``NTLM_USER_FILE`` (it accepts no credential object on the accepting side). That variable is
**process-global**: while a lab runs, :class:`CredentialStore` sets it to that lab's credentials, switches it
between labs under a lock around each acceptor step, and restores the previous value when the last lab stops.
Other code in the same process that relies on ``NTLM_USER_FILE`` will see the lab's value meanwhile. After the
handshake the connection also checks that the authenticated principal is the user its own lab was configured
with.

The credentials never touch the disk where the platform allows it: on Linux they live in an anonymous
in-memory file (``memfd_create``) reached as ``/proc/self/fd/N``, which disappears with the process, even one
killed with SIGKILL. Elsewhere they go to a 0600 temporary file named after the owning process id, removed
when the lab stops, and a later lab removes such files whose process is gone.

Message encryption is the ``multipart/encrypted`` format with protocol
``application/HTTP-SPNEGO-session-encrypted`` that pypsrp and Windows use over plain HTTP. The security
context is bound to one TCP connection, exactly like on a real server, so a dropped connection makes the
client's next encrypted request undecryptable here too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import os
import re
import stat
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import spnego
from spnego.channel_bindings import GssChannelBindings

from ocsps.lab.credentials import credential_problem

AuthMode = Literal["ntlm", "negotiate", "basic"]
AUTH_MODES: Final[tuple[str, ...]] = ("ntlm", "negotiate", "basic")

SPNEGO_ENCRYPTED: Final = "application/HTTP-SPNEGO-session-encrypted"
_BOUNDARY: Final = b"--Encrypted Boundary"
_ENCRYPTED_CONTENT_TYPE: Final = (
    f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="Encrypted Boundary"'
)


class DecryptionError(Exception):
    """An encrypted request could not be unwrapped with the connection's security context."""


def split_username(username: str) -> tuple[str, str]:
    """``DOMAIN\\user`` -> (``DOMAIN``, ``user``); ``user`` -> (``""``, ``user``); UPNs keep their form."""
    if "\\" in username:
        domain, user = username.split("\\", 1)
        return domain, user
    return "", username


class CredentialStore:
    """Per-lab NTLM credentials behind the one process-global ``NTLM_USER_FILE``.

    Each registered lab gets its own in-memory file (or, without ``memfd_create``, a 0600 temporary
    file). pyspnego reads the variable when an acceptor is created and when it checks the client's NTLM
    response, so :meth:`active` points the variable at the right lab's credentials and holds a process-wide
    lock for the duration of one acceptor step. While any lab is registered the variable names one of
    theirs; the previous value is restored when the last one unregisters.
    """

    _instance: CredentialStore | None = None
    _instance_lock = threading.Lock()

    def __init__(self, *, in_memory: bool | None = None) -> None:
        self._lock = threading.RLock()
        self._files: dict[int, str] = {}
        self._releases: dict[int, Callable[[], None]] = {}
        self._previous: str | None = None
        self.in_memory = _memfd_usable() if in_memory is None else in_memory
        """Whether credentials live in anonymous memory (Linux) rather than a temporary file."""

    @classmethod
    def shared(cls) -> CredentialStore:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def path(self, owner: object) -> str | None:
        """The credential file of ``owner`` while it is registered."""
        with self._lock:
            return self._files.get(id(owner))

    def register(self, owner: object, username: str, password: str) -> str:
        """Store ``owner``'s credentials (``DOMAIN:user:password`` lines); returns the path pyspnego reads."""
        problem = credential_problem(username, password)
        if problem is not None:
            raise ValueError(problem)
        domain, user = split_username(username)
        lines = [f"{domain}:{user}:{password}"]
        if domain:
            # Windows accepts a bare user name for an account of the server's own domain.
            lines.append(f":{user}:{password}")
        path, release = _store_credentials("\n".join(lines) + "\n", in_memory=self.in_memory)
        with self._lock:
            old = self._files.pop(id(owner), None)
            old_release = self._releases.pop(id(owner), None)
            if not self._files and old is None:
                self._previous = os.environ.get("NTLM_USER_FILE")
            self._files[id(owner)] = path
            self._releases[id(owner)] = release
            os.environ["NTLM_USER_FILE"] = path
        if old_release is not None:
            old_release()
        return path

    def unregister(self, owner: object) -> None:
        with self._lock:
            path = self._files.pop(id(owner), None)
            release = self._releases.pop(id(owner), None)
            if path is None:
                return
            if self._files:
                os.environ["NTLM_USER_FILE"] = next(iter(self._files.values()))
            elif self._previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._previous
        if release is not None:
            release()

    @contextlib.contextmanager
    def active(self, path: str) -> Iterator[None]:
        """Serialize one acceptor operation with ``NTLM_USER_FILE`` pointing at ``path``."""
        with self._lock:
            if os.environ.get("NTLM_USER_FILE") != path:
                os.environ["NTLM_USER_FILE"] = path
            yield


CREDENTIAL_FILE_PREFIX: Final = "ocsps-lab-ntlm-"
_STALE_NAME = re.compile(r"^ocsps-lab-ntlm-(\d+)-[A-Za-z0-9_]+\.txt$")


def _memfd_usable() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _store_credentials(text: str, *, in_memory: bool) -> tuple[str, Callable[[], None]]:
    """Write ``text`` where pyspnego can read it by path; returns (path, release)."""
    data = text.encode("utf-8")
    if in_memory:
        fd = os.memfd_create("ocsps-lab-ntlm", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            path = f"/proc/self/fd/{fd}"
            if os.path.isfile(path):  # pyspnego checks isfile() before reading
                return path, lambda: os.close(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    remove_stale_credential_files()
    fd, path = tempfile.mkstemp(prefix=f"{CREDENTIAL_FILE_PREFIX}{os.getpid()}-", suffix=".txt")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)

    def release() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    return path, release


def remove_stale_credential_files(directory: str | None = None) -> list[str]:
    """Delete credential files a killed lab left behind: ours by name, owned by this user, process gone.

    Only regular files named ``ocsps-lab-ntlm-<pid>-<random>.txt`` in the temporary directory count, and only
    when ``<pid>`` no longer runs; symbolic links and other users' files are never touched.
    """
    folder = directory or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _STALE_NAME.match(name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if os.name == "nt" or pid <= 0:  # os.kill(pid, 0) terminates the process on Windows
        return True  # not a real process id: leave the file alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def principal_matches(principal: str | None, username: str) -> bool:
    """Whether the principal an acceptor authenticated is the configured user (case-insensitive)."""
    if not principal:
        return False
    want_domain, want_user = split_username(username)
    got_domain, got_user = split_username(principal)
    if got_user.lower() != want_user.lower():
        return False
    return not got_domain or got_domain.lower() == want_domain.lower()


def check_basic(header_value: str, username: str, password: str) -> bool:
    """Validate an ``Authorization: Basic ...`` value against the configured pair."""
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, pwd = decoded.partition(":")
    if not sep:
        return False
    want_domain, want_user = split_username(username)
    got_domain, got_user = split_username(user)
    user_ok = got_user.lower() == want_user.lower() and (
        not got_domain or got_domain.lower() == want_domain.lower()
    )
    return user_ok and hmac.compare_digest(pwd.encode("utf-8"), password.encode("utf-8"))


_TOKEN_RE = re.compile(r"^\s*(Negotiate|NTLM|Kerberos)\s+([A-Za-z0-9+/=]+)\s*$", re.IGNORECASE)


def parse_token(header_value: str) -> tuple[str, bytes] | None:
    """``Negotiate <b64>`` -> (``Negotiate``, token bytes); ``None`` if it is not such a header."""
    match = _TOKEN_RE.match(header_value)
    if not match:
        return None
    try:
        return match.group(1), base64.b64decode(match.group(2))
    except binascii.Error:
        return None


@dataclass
class ConnectionAuth:
    """Authentication state of one TCP connection (a security context never outlives its connection)."""

    mode: AuthMode
    channel_bindings: GssChannelBindings | None = None
    credential_file: str | None = None
    """This lab's NTLM credential file (see :class:`CredentialStore`)."""
    context: Any = None
    authenticated_for: str | None = None
    """Key of the simulated server this connection authenticated against."""
    scheme: str = "Negotiate"
    _steps: int = field(default=0, repr=False)

    @property
    def challenge_scheme(self) -> str:
        """The WWW-Authenticate scheme offered on a bare 401."""
        if self.mode == "basic":
            return 'Basic realm="WSMAN"'
        return "NTLM" if self.mode == "ntlm" else "Negotiate"

    def reset(self) -> None:
        self.context = None
        self.authenticated_for = None
        self._steps = 0

    def step(self, scheme: str, token: bytes) -> tuple[bool, bytes | None]:
        """Feed one client token; returns (complete, token to send back).

        Raises whatever pyspnego raises on a bad token or a wrong password; the caller answers 401.
        """
        if self.credential_file is None:
            raise RuntimeError("NTLM/Negotiate authentication needs a registered credential file")
        with CredentialStore.shared().active(self.credential_file):
            if self.context is None or self.context.complete:
                protocol = "ntlm" if self.mode == "ntlm" else "negotiate"
                self.context = spnego.server(protocol=protocol, channel_bindings=self.channel_bindings)
                self.authenticated_for = None
                self._steps = 0
            self.scheme = scheme
            self._steps += 1
            out = self.context.step(token)
        return bool(self.context.complete), out

    @property
    def principal(self) -> str | None:
        if self.context is None or not self.context.complete:
            return None
        principal = self.context.client_principal
        return str(principal) if principal else None

    def wrap(self, data: bytes) -> tuple[str, bytes]:
        """Encrypt a reply body; returns (Content-Type, body)."""
        result = self.context.wrap_winrm(data)
        wrapped = struct.pack("<i", len(result.header)) + result.header + result.data
        length = len(data) + result.padding_length
        head = b"\r\n".join(
            [
                _BOUNDARY,
                f"\tContent-Type: {SPNEGO_ENCRYPTED}".encode(),
                f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={length}".encode(),
                _BOUNDARY,
                b"\tContent-Type: application/octet-stream",
                b"",
            ]
        )
        return _ENCRYPTED_CONTENT_TYPE, head + wrapped + _BOUNDARY + b"--\r\n"

    def unwrap(self, body: bytes) -> bytes:
        """Decrypt a ``multipart/encrypted`` request body with this connection's context."""
        if self.context is None or not self.context.complete:
            raise DecryptionError("encrypted request on a connection that is not authenticated")
        marker = b"\tContent-Type: application/octet-stream\r\n"
        head_end = body.find(marker)
        length_match = re.search(rb"Length=(\d+)", body[: max(head_end, 0)])
        if head_end < 0 or length_match is None:
            raise DecryptionError("malformed multipart/encrypted body")
        payload = body[head_end + len(marker) :]
        trailer = _BOUNDARY + b"--\r\n"
        if payload.endswith(trailer):
            payload = payload[: -len(trailer)]
        if len(payload) < 4:
            raise DecryptionError("truncated encrypted payload")
        header_length = struct.unpack("<i", payload[:4])[0]
        header = payload[4 : 4 + header_length]
        try:
            data = bytes(self.context.unwrap_winrm(header, payload[4 + header_length :]))
        except Exception as exc:  # pyspnego raises several types for a bad signature or sequence number
            raise DecryptionError(f"cannot decrypt request: {exc}") from exc
        expected = int(length_match.group(1))
        if len(data) != expected:
            raise DecryptionError(f"decrypted length {len(data)} != announced {expected}")
        return data


def is_encrypted(content_type: str) -> bool:
    return content_type.lower().startswith(("multipart/encrypted", "multipart/x-multi-encrypted"))
