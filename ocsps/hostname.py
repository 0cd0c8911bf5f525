"""Host names as ocsps accepts them, and values quoted for one-line error messages.

Kept apart from the connection settings because the planners, the change-board renderer and the lab check
host names too, and none of them should depend on how a session is opened.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from ocsps.errors import UsageError

__all__ = ["MAX_HOST_LENGTH", "check_host", "show"]

MAX_HOST_LENGTH: Final = 253


def show(value: object, limit: int = 60) -> str:
    """Quote a user-supplied value for an error message: one line, control characters escaped, truncated.

    Hostile input (newlines, NUL, terminal escapes, megabytes of text) must not be able to forge extra
    output lines or flood the terminal through an error message.
    """
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    text = repr(value)
    return text[:limit] + ("..." if len(text) > limit else "")


_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?", re.ASCII)
_ALL_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_IPV4_LIKE = re.compile(r"[0-9.]+", re.ASCII)


def check_host(value: object, what: str = "host") -> str:
    """Validate a host: a DNS name (single label allowed), an IPv4 address or an IPv6 address.

    ``[v6]`` is accepted and returned without brackets. Everything that could act as a shell or PowerShell
    metacharacter, whitespace, non-ASCII text (use the ``xn--`` form) and IPv6 zone ids are refused: the host
    ends up in URLs, SPNs, logs and generated scripts, and a strict alphabet is the simple way to keep it
    harmless in all of them.
    """
    if not isinstance(value, str):
        raise UsageError(f"{what}: expected a host name or address, got {type(value).__name__}")
    host = value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise UsageError(f"{what}: brackets are only for IPv6 addresses, got {show(value)}")
    if not host:
        raise UsageError(f"{what}: is empty")
    if len(host) > MAX_HOST_LENGTH:
        raise UsageError(f"{what}: longer than {MAX_HOST_LENGTH} characters ({show(value)})")
    if ":" in host:
        if "%" in host:
            raise UsageError(f"{what}: IPv6 zone ids are not supported ({show(value)})")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{what}: not a valid IPv6 address: {show(value)}") from None
        return host
    if _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UsageError(f"{what}: not a valid IPv4 address: {show(value)}") from None
        return host
    if not host.isascii():
        raise UsageError(f"{what}: non-ASCII host name {show(value)}: use its xn-- (punycode) form")
    labels = host.split(".")
    for label in labels:
        if not _DNS_LABEL.fullmatch(label):
            raise UsageError(
                f"{what}: not a valid host name: {show(value)} (letters, digits and '-' in dot-separated "
                "labels of 1-63 characters)"
            )
    if _ALL_DIGITS.fullmatch(labels[-1]):
        raise UsageError(f"{what}: not a valid host name or IPv4 address: {show(value)}")
    return host
