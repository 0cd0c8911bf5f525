"""Credential-shaped text is masked before it is shown or stored; control characters are made visible.

Administrators paste ``CONTOSO\\admin:Passw0rd`` into ``-u``, ``https://admin:Passw0rd@host`` into ``--host``
and proxy URLs with a password into the environment. ocsps refuses such input, but the refusal must not print
the password back (into a terminal that is recorded, a ticket, a CI log), nor may JSON output or the audit log
carry it. Two mechanisms, both cheap:

- shapes: a URL's ``user:password@``, ``DOMAIN\\user:password`` and ``user:password@host`` are masked wherever
  they appear;
- literals: the password part of such input seen on the command line or in the environment is remembered for
  the life of the process and masked wherever it shows up later, even cut from its context (an error that
  quotes only the text after the ``:``).

Server-supplied text (ActivityLevel, warnings, error records) can carry terminal escape sequences that
recolour, retitle or rewrite the operator's terminal; ``escape_controls`` renders them as visible ``\\xNN``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Final

MASK: Final = "***"
_MIN_LITERAL = 4  # shorter "secrets" would mask ordinary words; the shapes still catch them in context

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@'\"]*):([^/\s@'\"]*)@")
_DOMAIN_USER = re.compile(r"\b([A-Za-z0-9][A-Za-z0-9._-]*\\{1,2}[A-Za-z0-9._$-]+):(?=[^\s'\"])([^\s'\"]+)")
# user:password@host, but not the URIs Lync and Skype for Business servers print (sip:alice@contoso.com)
_BARE_USERINFO = re.compile(
    r"(?<![\w/:.\\-])(?!(?:sips?|mailto|tel|im|pres|urn):)([A-Za-z0-9._$-]+):([^\s@'\"/:]+)@(?=[A-Za-z0-9\[])",
    re.IGNORECASE,
)

_secrets: set[str] = set()
_lock = threading.Lock()

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder text.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _secret_parts(text: str) -> list[str]:
    parts = [m.group(3) for m in _URL_USERINFO.finditer(text)]
    parts += [m.group(2) for m in _DOMAIN_USER.finditer(text)]
    parts += [m.group(2) for m in _BARE_USERINFO.finditer(text)]
    return [p for p in parts if len(p) >= _MIN_LITERAL]


def register_from(values: Iterable[str]) -> None:
    """Remember the password part of every credential-shaped value (command-line words, settings)."""
    found = [part for value in values if isinstance(value, str) for part in _secret_parts(value)]
    if found:
        with _lock:
            _secrets.update(found)


def register_inputs(argv: Iterable[str], environ: Mapping[str, str]) -> None:
    """Remember credential-shaped parts of the command line and of the connection variables."""
    names = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
    register_from([*argv, *(v for k, v in environ.items() if k.startswith("OCSPS_") or k in names)])


def register_secret(value: str) -> None:
    """Remember one secret to mask wherever it appears (ignored when too short to mask safely)."""
    if len(value) >= _MIN_LITERAL:
        with _lock:
            _secrets.add(value)


def forget_all() -> None:
    """Tests start from a clean slate."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """Mask credential-shaped parts and remembered secrets in one piece of text."""
    if not text:
        return text
    result = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    result = _DOMAIN_USER.sub(lambda m: f"{m.group(1)}:{MASK}", result)
    result = _BARE_USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", result)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in result:
            result = result.replace(secret, MASK)
    return result


def redact_value(value: object) -> object:
    """``redact`` applied to every string inside JSON-like data (dicts, lists, tuples); keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(k) if isinstance(k, str) else k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def escape_controls(text: str) -> str:
    """Make control characters visible (``\\x1b``) so server text cannot drive the terminal.

    A CR LF pair is an ordinary line break; a lone CR (which would let text overwrite a line) is escaped.
    """
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


def safe_text(text: str) -> str:
    """What human output shows: redacted, control characters visible."""
    return escape_controls(redact(text))
