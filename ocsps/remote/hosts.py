"""Hosts files: the list of servers a command should run against, one per line.

Format::

    # Front End pool, patch window 2
    fe01.contoso.com
    fe02.contoso.com:5986          # optional :port
    10.0.0.20
    [2001:db8::20]:5985            # IPv6 with a port needs brackets
    2001:db8::21                   # bare IPv6, default port

``#`` starts a comment (whole line or trailing), blank lines are ignored, a UTF-8 byte order mark (Notepad)
is tolerated. A host listed twice is refused even with different ports: running a drain or a restart twice
against the same server in one batch is never what the administrator meant. Every problem is reported as
``source:line: message`` so that it can be fixed in an editor directly.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ocsps.errors import UsageError
from ocsps.hostname import check_host, show

__all__ = ["HostEntry", "load_hosts_file", "parse_hosts_file"]

_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_BRACKETED = re.compile(r"\[([^\[\]]*)\](?::(.*))?", re.ASCII | re.DOTALL)
MAX_HOSTS_FILE_BYTES: Final = 1_000_000
"""A hosts file is a few hundred lines at most; a bigger file is the wrong file."""


@dataclass(frozen=True)
class HostEntry:
    """One server from a hosts file: its name, its port if the line gave one, and the line it came from."""

    host: str
    port: int | None
    line: int


def _identity(host: str) -> str:
    """The key duplicates are detected by: DNS names are case-insensitive, IPv6 has many spellings."""
    if ":" in host:
        return ipaddress.IPv6Address(host).compressed
    return host.lower()


def _parse_port(text: str, what: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise UsageError(f"{what}: port must be a number 1-65535, got {show(text)}")
    return int(text)


def _parse_line(text: str, what: str) -> tuple[str, int | None]:
    if any(ch.isspace() for ch in text):
        raise UsageError(f"{what}: one host per line, got {show(text)}")
    if "/" in text:
        raise UsageError(f"{what}: {show(text)} looks like a URL or path; give the host name only")
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        address, port_text = bracketed.group(1), bracketed.group(2)
        if ":" not in address:
            raise UsageError(f"{what}: brackets are only for IPv6 addresses, got {show(text)}")
        host = check_host(address, what)
        return host, (_parse_port(port_text, what) if port_text is not None else None)
    if text.count(":") >= 2:
        return check_host(text, what), None
    if ":" in text:
        name, port_text = text.split(":", 1)
        return check_host(name, what), _parse_port(port_text, what)
    return check_host(text, what), None


def parse_hosts_file(text: str, *, source: str) -> list[HostEntry]:
    """Parse hosts file text into entries, in file order; ``source`` names the file in messages.

    Raises ``UsageError`` for the first bad line. An empty list means the text holds no host; callers that
    act on hosts should treat that as an error themselves (``load_hosts_file`` does).
    """
    entries: list[HostEntry] = []
    seen: dict[str, int] = {}
    text = text.removeprefix("\ufeff")
    for number, raw in enumerate(text.split("\n"), start=1):
        content = raw.split("#", 1)[0].strip(" \t\r")
        if not content:
            continue
        what = f"{source}:{number}"
        host, port = _parse_line(content, what)
        key = _identity(host)
        if key in seen:
            raise UsageError(f"{what}: {show(host)} is already listed on line {seen[key]}")
        seen[key] = number
        entries.append(HostEntry(host=host, port=port, line=number))
    return entries


def load_hosts_file(path: str | os.PathLike[str]) -> list[HostEntry]:
    """Read and parse a hosts file; a file with no host in it is refused.

    An empty target list would make a command succeed while doing nothing, which in a maintenance window
    reads as "done" when it was not.
    """
    from ocsps.localfiles import read_text_bounded

    file = Path(path)
    text = read_text_bounded(file, what="hosts file", limit=MAX_HOSTS_FILE_BYTES)
    entries = parse_hosts_file(text, source=str(file))
    if not entries:
        raise UsageError(f"{file}: no hosts in the file (only comments or blank lines)")
    return entries
