"""Fault injection and request counters for the lab WSMan endpoint.

Resilience code is only trustworthy if the failures it handles can be produced on demand, one request at a
time, without timing games: a test arms "drop the next Receive" and then observes what the client does.
Counters exist for the same reason: benchmarks assert round trips per operation instead of measuring time.

Both classes are shared between the HTTP worker threads and the test (or CLI) thread that arms them, so
every mutation happens under a lock.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

WsmanAction = Literal["Create", "Command", "Receive", "Send", "Signal", "Delete"]
"""The WSMan actions a PSRP client uses; faults are armed per action."""

ACTIONS: Final[tuple[str, ...]] = get_args(WsmanAction)

# Counter keys besides the action names (and "Get" / "Other" for rarely used actions).
REQUESTS: Final = "requests"
"""Every HTTP request that reached a simulated server, authentication legs included."""
AUTH_LEGS: Final = "auth"
"""Requests that carried an NTLM/Negotiate token (a handshake leg)."""
UNAUTHORIZED: Final = "401"
"""HTTP 401 replies (challenges and refusals)."""
DROPPED: Final = "dropped"
"""Connections closed without a reply by a fault."""
HTTP_ERRORS: Final = "http_error"
"""HTTP 500/503 replies produced by a fault."""
TIMEOUTS: Final = "timeout"
"""Receives answered with the OperationTimeout fault."""
ENCRYPTED: Final = "encrypted"
"""Requests whose SOAP body arrived with WSMan message encryption."""


class FaultKind(enum.Enum):
    """What the server does with one request, decided by :meth:`Faults.consume`."""

    NONE = "none"
    DROP = "drop"
    """Close the connection without reading further or replying; the request has no effect."""
    DROP_AFTER = "drop_after"
    """Process the request, then close without replying: the effect happened but the reply is lost
    (for Receive: the output taken from the server is lost, a "mid-Receive" drop)."""
    HTTP_500 = "http_500"
    HTTP_503 = "http_503"


def _check_action(action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown WSMan action {action!r}; expected one of {', '.join(ACTIONS)}")
    return action


def _check_counts(name: str, counts: Mapping[str, int]) -> dict[str, int]:
    checked: dict[str, int] = {}
    for action, count in counts.items():
        _check_action(action)
        if count < 0:
            raise ValueError(f"{name}[{action!r}] must be >= 0, not {count}")
        if count:
            checked[action] = count
    return checked


@dataclass
class Faults:
    """Fault knobs of one simulated server.

    The dictionaries map a WSMan action to how many of the *next* requests of that action are affected;
    each affected request decrements its count. Arm them at construction or at run time with
    :meth:`drop_next` / :meth:`fail_next` / :meth:`set_stuck` / :meth:`set_latency` (thread-safe).

    ``stuck`` makes every pipeline Receive wait for the full OperationTimeout and answer the timeout fault
    (WSManFault 2150858793) even when output is ready, which is what a hung remote command looks like to the
    client. Runspace-pool Receives are not affected, so pools still open.
    """

    latency_ms: int = 0
    drop: dict[str, int] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    http_500: dict[str, int] = field(default_factory=dict)
    http_503: dict[str, int] = field(default_factory=dict)
    stuck: bool = False
    unreachable: Callable[[], bool] | None = field(default=None, compare=False, repr=False)
    """While it answers True (a simulated restart), every request is dropped, as by a computer that is
    down."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms}")
        self.drop = _check_counts("drop", self.drop)
        self.drop_after = _check_counts("drop_after", self.drop_after)
        self.http_500 = _check_counts("http_500", self.http_500)
        self.http_503 = _check_counts("http_503", self.http_503)

    def set_latency(self, latency_ms: int) -> None:
        """Delay every HTTP request to this server (authentication legs included) by ``latency_ms``."""
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {latency_ms}")
        with self._lock:
            self.latency_ms = latency_ms

    def set_stuck(self, stuck: bool = True) -> None:
        """Make pipeline Receives hang until OperationTimeout (``True``) or behave normally (``False``)."""
        with self._lock:
            self.stuck = stuck

    def drop_next(self, action: WsmanAction, count: int = 1, *, after_processing: bool = False) -> None:
        """Close the connection without a reply on the next ``count`` requests of ``action``.

        With ``after_processing`` the server first performs the request (a Command starts its pipeline,
        a Receive consumes output) and only then drops the reply, so client and server disagree on state.
        """
        target = self.drop_after if after_processing else self.drop
        self._add(target, action, count)

    def fail_next(self, action: WsmanAction, status: Literal[500, 503] = 503, count: int = 1) -> None:
        """Answer the next ``count`` requests of ``action`` with HTTP ``status`` without performing them."""
        if status == 500:
            self._add(self.http_500, action, count)
        elif status == 503:
            self._add(self.http_503, action, count)
        else:
            raise ValueError(f"status must be 500 or 503, not {status}")

    def clear(self) -> None:
        """Disarm every fault, latency and ``stuck`` included."""
        with self._lock:
            self.latency_ms = 0
            self.stuck = False
            for target in (self.drop, self.drop_after, self.http_500, self.http_503):
                target.clear()

    def pending(self) -> dict[str, dict[str, int]]:
        """Armed counts not consumed yet, so a test can check that the request it expected did arrive."""
        with self._lock:
            return {
                "drop": dict(self.drop),
                "drop_after": dict(self.drop_after),
                "http_500": dict(self.http_500),
                "http_503": dict(self.http_503),
            }

    def current_latency(self) -> float:
        """Latency in seconds, read under the lock because another thread may be changing it."""
        with self._lock:
            return self.latency_ms / 1000.0

    def is_stuck(self) -> bool:
        with self._lock:
            return self.stuck

    def consume(self, action: str) -> FaultKind:
        """Decide the fate of one request of ``action`` and use up one armed count.

        Called by the server once per authenticated WSMan request. Order of precedence when several faults
        are armed for the same action: drop, 503, 500, drop-after.
        """
        if self.unreachable is not None and self.unreachable():
            return FaultKind.DROP
        with self._lock:
            for target, kind in (
                (self.drop, FaultKind.DROP),
                (self.http_503, FaultKind.HTTP_503),
                (self.http_500, FaultKind.HTTP_500),
                (self.drop_after, FaultKind.DROP_AFTER),
            ):
                remaining = target.get(action, 0)
                if remaining:
                    if remaining == 1:
                        del target[action]
                    else:
                        target[action] = remaining - 1
                    return kind
        return FaultKind.NONE

    def _add(self, target: dict[str, int], action: str, count: int) -> None:
        _check_action(action)
        if count < 1:
            raise ValueError(f"count must be >= 1, not {count}")
        with self._lock:
            target[action] = target.get(action, 0) + count


class Counters:
    """Named request counters of one simulated server (thread-safe).

    Keys are the WSMan action names (``Create``, ``Command``, ``Receive``, ``Send``, ``Signal``,
    ``Delete``, ``Get``, ``Other``) plus :data:`REQUESTS`, :data:`AUTH_LEGS`, :data:`UNAUTHORIZED`,
    :data:`DROPPED`, :data:`HTTP_ERRORS`, :data:`TIMEOUTS` and :data:`ENCRYPTED`. A key never
    incremented reads as 0.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def incr(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def get(self, key: str) -> int:
        with self._lock:
            return self._values.get(key, 0)

    def __getitem__(self, key: str) -> int:
        return self.get(key)

    def snapshot(self) -> dict[str, int]:
        """A copy, so that a benchmark can diff two points in time."""
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        with self._lock:
            self._values.clear()

    def __repr__(self) -> str:
        return f"Counters({self.snapshot()!r})"
