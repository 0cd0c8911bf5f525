"""Proxy variables are honoured as requests would honour them, and read once per connection.

The transport reads ``HTTP_PROXY`` / ``NO_PROXY`` when it sets up a connection to a server, not again on
every request of it (scanning the environment twice per request cost about 5 % of the client's CPU time
per host in a fan-out). A dead proxy stands in for a real one: a request that goes through it fails at once.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ocsps.errors import ConnectError
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from ocsps.results import ServiceState

if TYPE_CHECKING:
    from ocsps.lab.runtime import Lab

HOST = "med01.contoso.com"


@pytest.fixture
def dead_proxy() -> Iterator[str]:
    """The URL of a port nothing listens on (bound, never accepting, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _server(lab: Lab, **settings: object) -> Server:
    session = ServerSession(lab_settings(lab, HOST, **settings), lab.server(HOST).product, default_timeout=20)
    session.retry_backoff = 0.01
    return Server(session)


def _requests(lab: Lab) -> int:
    return lab.requests(HOST).get("requests", 0)


def test_a_proxy_from_the_environment_is_used(
    lab: Lab, dead_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    with pytest.raises(ConnectError, match="proxy"), _server(lab, no_proxy=False) as server:
        server.services()
    assert _requests(lab) == 0, "every request went to the (dead) proxy"


@pytest.mark.parametrize("settings", [{"no_proxy": True}, {"no_proxy": False, "bypass": True}])
def test_no_proxy_setting_or_variable_goes_direct(
    lab: Lab, dead_proxy: str, monkeypatch: pytest.MonkeyPatch, settings: dict[str, bool]
) -> None:
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    if settings.pop("bypass", False):
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with _server(lab, **settings) as server:
        statuses = server.services()
    assert statuses and _requests(lab) > 0


def test_the_environment_is_read_when_the_connection_is_set_up(
    lab: Lab, dead_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _server(lab, no_proxy=False) as server:
        before = server.services()
        monkeypatch.setenv("HTTP_PROXY", dead_proxy)  # too late for this connection
        after = server.services()
    assert [s.status for s in after] == [s.status for s in before]
    assert any(s.status is ServiceState.RUNNING for s in after)
