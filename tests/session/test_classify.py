"""``classify_fault`` on exceptions that are awkward to provoke on the wire: pypsrp's state errors and
whatever a broken answer makes a parser raise. Each must become a one-line ``ConnectError`` naming the
host, with the retry decision the session relies on."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from pypsrp.complex_objects import PSInvocationState, RunspacePoolState
from pypsrp.exceptions import (
    FragmentError,
    InvalidPipelineStateError,
    InvalidPSRPOperation,
    InvalidRunspacePoolStateError,
    SerializationError,
    WinRMTransportError,
    WSManFaultError,
)

from ocsps.errors import AuthenticationError, ConnectError, OcspsError, UsageError
from ocsps.remote.session import _classify, classify_fault

HOST = "fe01.contoso.com"


def _parse_error() -> ET.ParseError:
    try:
        ET.fromstring("<unclosed")
    except ET.ParseError as exc:
        return exc
    raise AssertionError("parsed")


CASES: list[tuple[BaseException, type[OcspsError], str, bool]] = [
    (
        InvalidRunspacePoolStateError(
            RunspacePoolState.BROKEN, RunspacePoolState.OPENED, "create a pipeline"
        ),
        ConnectError,
        "remote session ended unexpectedly",
        True,
    ),
    (
        InvalidPipelineStateError(PSInvocationState.FAILED, PSInvocationState.RUNNING, "stop a pipeline"),
        ConnectError,
        "remote session ended unexpectedly",
        True,
    ),
    (
        InvalidPSRPOperation("Cannot invoke PowerShell\nwithout commands"),
        ConnectError,
        "could not be understood",
        False,
    ),
    (
        FragmentError("Fragment Id 7 != 0"),
        ConnectError,
        "could not be understood (Fragment Id 7 != 0)",
        False,
    ),
    (SerializationError("bad\r\nCLIXML"), ConnectError, "could not be understood (bad CLIXML)", False),
    (_parse_error(), ConnectError, "not XML", False),
    (KeyError("rsp:Stream"), ConnectError, "could not be understood (KeyError)", False),
    (WinRMTransportError("http", 413, "too big"), ConnectError, "HTTP 413", False),
    (WinRMTransportError("http", 401, ""), AuthenticationError, "HTTP 401", False),
    (WSManFaultError(2150858843, HOST, "gone", None, None, None), ConnectError, "remote shell is gone", True),
    (
        WSManFaultError("w:InternalError", HOST, "Line one.\nLine two.", None, None, None),
        ConnectError,
        "WS-Management fault w:InternalError: Line one. Line two.",
        False,
    ),
    (
        WSManFaultError(2150859174, HOST, "x" * 5000, None, None, None),
        ConnectError,
        "WinRM quota reached",
        False,
    ),
]


@pytest.mark.parametrize(("exc", "kind", "fragment", "transient"), CASES, ids=lambda v: type(v).__name__)
def test_classified(exc: BaseException, kind: type[OcspsError], fragment: str, transient: bool) -> None:
    error, retry = _classify(exc, HOST)
    assert type(error) is kind
    assert fragment in error.message
    assert error.message.startswith(f"{HOST}: ")
    assert "\n" not in error.message and "\r" not in error.message
    assert len(error.message) < 400, "server text is bounded"
    assert retry is transient
    assert classify_fault(exc, HOST) is not None


def test_ocsps_errors_pass_through_unchanged() -> None:
    original = UsageError("bad", host=HOST)
    assert classify_fault(original, HOST) is original
