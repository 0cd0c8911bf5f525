"""Server side of WinRM authentication for the lab: Basic, NTLM and Negotiate, plus message encryption.

pyspnego's NTLM acceptor validates passwords against the file named by the environment variable
``NTLM_USER_FILE``. That variable is **process-global**: while a lab runs, :class:`CredentialStore` sets
it (to a temporary file of that lab's credentials), switches it between labs under a lock around each
acceptor step, and restores the previous value when the last lab stops. Other code in the same process
that relies on ``NTLM_USER_FILE`` will see the lab's value meanwhile. After the handshake the connection
also checks that the authenticated principal is the user its own lab was configured with.

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
import struct
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import spnego
from spnego.channel_bindings import GssChannelBindings

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
    """Per-lab NTLM credential files behind the one process-global ``NTLM_USER_FILE``.

    Each registered lab gets its own file (mode 0600). pyspnego reads the variable when an acceptor is
    created and when it checks the client's NTLM response, so :meth:`active` points the variable at the
    right lab's file and holds a process-wide lock for the duration of one acceptor step. While any lab is
    registered the variable names one of their files; the previous value is restored when the last one
    unregisters.
    """

    _instance: CredentialStore | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._files: dict[int, str] = {}
        self._previous: str | None = None

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
        """Write ``owner``'s credential file (``DOMAIN:user:password`` lines); returns its path."""
        domain, user = split_username(username)
        if any(c in part for part in (domain, user, password) for c in ":\r\n"):
            # pyspnego splits each line on ':' and ignores lines that do not have exactly three fields.
            raise ValueError("NTLM lab credentials must not contain ':' or line breaks")
        lines = [f"{domain}:{user}:{password}"]
        if domain:
            # Windows accepts a bare user name for an account of the server's own domain.
            lines.append(f":{user}:{password}")
        fd, path = tempfile.mkstemp(prefix="ocsps-lab-ntlm-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        with self._lock:
            old = self._files.pop(id(owner), None)
            if not self._files and old is None:
                self._previous = os.environ.get("NTLM_USER_FILE")
            self._files[id(owner)] = path
            os.environ["NTLM_USER_FILE"] = path
        if old is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)
        return path

    def unregister(self, owner: object) -> None:
        with self._lock:
            path = self._files.pop(id(owner), None)
            if path is None:
                return
            if self._files:
                os.environ["NTLM_USER_FILE"] = next(iter(self._files.values()))
            elif self._previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._previous
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    @contextlib.contextmanager
    def active(self, path: str) -> Iterator[None]:
        """Serialize one acceptor operation with ``NTLM_USER_FILE`` pointing at ``path``."""
        with self._lock:
            if os.environ.get("NTLM_USER_FILE") != path:
                os.environ["NTLM_USER_FILE"] = path
            yield


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
