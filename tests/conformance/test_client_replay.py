"""ocsps's own session layer driven by replies recorded from real servers.

A replay endpoint answers pypsrp's requests with recorded real replies: the open sequence of the real
PowerShell 2.0 server (``test_psrp_run_protocol_version_2.1``) and its first pipeline (which ocsps uses to
import the product module), then the pipeline of ``test_psrp_error_failed`` for the script ocsps runs. Only
what ties a reply to its request is rewritten: ``RelatesTo``, and the runspace pool and pipeline ids inside
the PSRP messages. What ocsps reports must follow from the real bytes.
"""

from __future__ import annotations

import base64
import re
import struct
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import responses

from ocsps.catalog import load_catalog
from ocsps.errors import RemoteError
from ocsps.powershell.script import render_action
from ocsps.remote.session import ServerSession
from ocsps.remote.settings import ConnectionSettings, Secret
from tests.conformance.recordings import CACHE, MISSING, Recording, available
from tests.conformance.wire import NS, action_of

pytestmark = [pytest.mark.skipif(not available(), reason=MISSING), pytest.mark.timeout(60)]

ADDRESS, PORT = "127.0.0.1", 5985


def _first_message_ids(data: bytes) -> tuple[bytes, bytes]:
    """(runspace pool id, pipeline id) as they sit in the first PSRP message of ``data``."""
    return data[21 + 8 : 21 + 24], data[21 + 24 : 21 + 40]


def _patch_ids(data: bytes, rpid: bytes, pid: bytes | None) -> bytes:
    """Put the client's ids into every message that starts in ``data`` (fragment headers stay as they are)."""
    out = bytearray(data)
    offset = 0
    while offset + 21 <= len(out):
        length = struct.unpack(">I", out[offset + 17 : offset + 21])[0]
        if out[offset + 16] & 0x1:
            start = offset + 21
            out[start + 8 : start + 24] = rpid
            if pid is not None and any(out[start + 24 : start + 40]):
                out[start + 24 : start + 40] = pid
        offset += 21 + length
    return bytes(out)


class ReplayEndpoint:
    """Answers each request with the next recorded reply of the same kind."""

    def __init__(self, open_from: Recording, pipelines: list[tuple[Recording, int]]) -> None:
        by_action = [(e.action, e) for e in open_from.exchanges]
        self.create = next(e.response for a, e in by_action if a == "Create")
        self.pool_receives = deque(
            e.response for a, e in by_action if a == "Receive" and "CommandId" not in e.request
        )
        self.delete = next(e.response for a, e in by_action if a == "Delete")
        self.pipelines: deque[tuple[str, deque[str]]] = deque()
        for recording, nth in pipelines:
            commands = [i for i, e in enumerate(recording.exchanges) if e.action == "Command"]
            index = commands[nth]
            receives = deque(
                e.response
                for e in recording.exchanges[index + 1 :]
                if e.action == "Receive" and "CommandId" in e.request
            )
            self.pipelines.append((recording.exchanges[index].response, receives))
        self.rpid = b""
        self.pid = b""
        self.current: deque[str] = deque()
        self.actions: list[str] = []

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        raw = request.body
        body = raw.decode() if isinstance(raw, bytes) else str(raw)
        action = action_of(body)
        self.actions.append(action)
        message_id = ET.fromstring(body).findtext("s:Header/a:MessageID", namespaces=NS) or ""
        if action == "Create":
            reply = self.create
            self.rpid, _ = _first_message_ids(self._payload(body, "creationXml"))
        elif action == "Command":
            reply, self.current = self.pipelines.popleft()
            _, self.pid = _first_message_ids(self._payload(body, "Arguments"))
        elif action == "Receive":
            queue = self.current if "CommandId" in body else self.pool_receives
            reply = queue.popleft()
        elif action == "Delete":
            reply = self.delete
        elif action in ("Signal", "Send"):
            reply = _empty(action)
        else:
            raise AssertionError(f"unexpected {action}")
        reply = re.sub(r"(<a:RelatesTo>)[^<]*(</a:RelatesTo>)", rf"\g<1>{message_id}\g<2>", reply)
        reply = re.sub(r"(<rsp:Stream[^>]*>)([^<]*)(</rsp:Stream>)", self._stream, reply)
        status = 500 if "<s:Fault>" in reply else 200
        return status, {"Content-Type": "application/soap+xml;charset=UTF-8"}, reply

    def _stream(self, match: re.Match[str]) -> str:
        data = _patch_ids(base64.b64decode(match.group(2)), self.rpid, self.pid or None)
        return match.group(1) + base64.b64encode(data).decode() + match.group(3)

    @staticmethod
    def _payload(body: str, tag: str) -> bytes:
        for element in ET.fromstring(body).iter():
            if element.tag.rsplit("}", 1)[-1] == tag and element.text:
                return base64.b64decode(element.text)
        raise AssertionError(f"no {tag} in the request")


def _empty(action: str) -> str:
    uri = f"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/{action}Response"
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        f"<s:Header><a:Action>{uri}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:RelatesTo>x</a:RelatesTo></s:Header><s:Body><rsp:{action}Response/></s:Body></s:Envelope>"
    )


@contextmanager
def replaying(endpoint: ReplayEndpoint) -> Iterator[None]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, re.compile(rf"http://{re.escape(ADDRESS)}:{PORT}/.*"), endpoint)
        yield


def _session(product_id: str) -> tuple[ServerSession, Any]:
    product = load_catalog().product(product_id)
    settings = ConnectionSettings(
        host="lync01.contoso.com",
        connect_address=ADDRESS,
        port=PORT,
        ssl=False,
        auth="basic",
        username="CONTOSO\\admin",
        password=Secret("recorded"),
        encryption="never",
        no_proxy=True,
        product=product.id,
    )
    return ServerSession(settings, product, retry_backoff=0.01), product


def test_session_opens_on_a_real_powershell_2_server_and_reports_its_error_record() -> None:
    ps2 = Recording.load(CACHE / "test_psrp_run_protocol_version_2.1.yml")
    failed = Recording.load(CACHE / "test_psrp_error_failed.yml")
    endpoint = ReplayEndpoint(ps2, [(failed, 0)])
    session, product = _session("lync2010")
    with replaying(endpoint):
        session.open()
        assert session.stats.pools_opened == 1
        assert session._pool is not None and session._pool.protocol_version == "2.1"
        with pytest.raises(RemoteError) as caught:
            session.run(render_action("status", product, {"Name": "RTCSRV"})).raise_for_errors()
        session.close()
    (record,) = caught.value.records
    assert record.fully_qualified_error_id == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert (record.message, record.category) == ("error", "NotSpecified")
    # The pool opened as recorded; the one pipeline (the module import rides with the script) ended with
    # the shell's Delete, as the session's last pipeline does.
    assert endpoint.actions == ["Create", "Receive", "Receive", "Command", "Receive", "Delete"]
