"""Recorded exchanges with real Windows WinRM servers, as shipped in pypsrp's source distribution.

``.ci/run`` downloads the sdist and unpacks ``tests/tests_pypsrp/responses/*.yml`` into
``.cache/pypsrp-responses/`` (ignored by git, never copied into the repository). Each file is a list of
``request`` / ``response`` SOAP bodies captured from a real server by pypsrp's authors.
"""

from __future__ import annotations

import os
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from tests.conformance.wire import NS, Defragmenter, Message, action_of, observe

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("OCSPS_PYPSRP_RESPONSES", ROOT / ".cache" / "pypsrp-responses"))
SCOPE_FILE = Path(__file__).with_name("scope.toml")
MISSING = (
    f"recorded real WinRM sessions not found in {CACHE}; .ci/run downloads them "
    "(pip download --no-deps --no-binary :all: pypsrp==0.9.1)"
)


@dataclass(frozen=True)
class Exchange:
    request: str
    response: str
    synthetic_error: bool
    """pypsrp's test harness raised a transport error here instead of (or besides) the reply."""

    @cached_property
    def action(self) -> str:
        return action_of(self.request)

    def target(self, ids: dict[str, str]) -> str | None:
        """The recorded CommandId a Receive/Send/Signal addresses (``None`` for the runspace pool)."""
        body = ET.fromstring(self.request).find("s:Body", NS)
        assert body is not None
        for element in body.iter():
            command = element.attrib.get("CommandId")
            if command and element.tag.rsplit("}", 1)[-1] in ("DesiredStream", "Signal", "Stream"):
                return command.upper()
        return None


@dataclass(frozen=True)
class Recording:
    name: str
    exchanges: tuple[Exchange, ...]

    @classmethod
    def load(cls, path: Path) -> Recording:
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        exchanges = tuple(
            Exchange(
                m["request"],
                m.get("response") or "",
                any(key in m for key in ("transport_error", "http_error", "auth_error")),
            )
            for m in raw["messages"]
        )
        return cls(path.stem, exchanges)

    def batches(self) -> dict[int, list[list[Message]]]:
        """Per Command (by its index), the messages of each Receive reply for it that carried some, in order.

        A client may reuse a CommandId once the command is terminated, so a Receive belongs to the latest
        Command that was answered with its id.
        """
        out: dict[int, list[list[Message]]] = {}
        current: dict[str, int] = {}
        defrag: dict[int, Defragmenter] = {}
        for index, exchange in enumerate(self.exchanges):
            if not exchange.response:
                continue
            if exchange.action == "Command":
                answered = observe(exchange.response, Defragmenter()).command_id
                if answered:
                    current[answered] = index
                    out[index] = []
                continue
            target = exchange.target({})
            if exchange.action != "Receive" or target is None or target not in current:
                continue
            owner = current[target]
            obs = observe(exchange.response, defrag.setdefault(owner, Defragmenter()))
            if obs.messages:
                out[owner].append(obs.messages)
        return out

    def announced(self) -> tuple[str, str]:
        """(PSRP protocol version, PowerShell major.minor) the real server announced."""
        defrag = Defragmenter()
        protocol = ps = ""
        for exchange in self.exchanges:
            if exchange.action != "Receive" or not exchange.response:
                continue
            for message in observe(exchange.response, defrag).messages:
                protocol = protocol or (message.field("protocolversion") or "")
                ps = ps or (message.field("PSVersion") or "")
            if protocol and ps:
                break
        return protocol, ps


def available() -> list[Path]:
    return sorted(CACHE.glob("test_*.yml")) if CACHE.is_dir() else []


def scope() -> dict[str, Any]:
    return tomllib.loads(SCOPE_FILE.read_text(encoding="utf-8"))
