"""An NTLM password reaches pyspnego as its LM and NT one-way functions, worked out once per password.

pyspnego takes ``"<LM hash>:<NT hash>"`` wherever it takes a password and then skips deriving them for
each connection; the NTLM messages do not change. Kerberos (``negotiate``) needs the password itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import spnego
import spnego._ntlm_raw.crypto as ntlm_crypto

from ocsps import redact
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession, _wsman_kwargs, ntlm_one_way

if TYPE_CHECKING:
    from ocsps.lab.runtime import Lab

HOST = "med01.contoso.com"


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        # MS-NLMP 4.2.2.1.1 and 4.2.2.1.2: LMOWFv1 and NTOWFv1 of "Password"
        ("Password", "e52cac67419a9a224a3b108f3fa6cb6d:a4f49c406510bdcab6824ee7c30fd852"),
        # already in that form: handed over as it is
        ("e52cac67419a9a224a3b108f3fa6cb6d:a4f49c406510bdcab6824ee7c30fd852",) * 2,
    ],
)
def test_one_way_functions_of_the_password(password: str, expected: str) -> None:
    assert ntlm_one_way(password) == expected


def test_worked_out_once_per_password_and_masked_like_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = ntlm_crypto.lmowfv1

    def counted(password: str) -> bytes:
        calls.append(password)
        return real(password)

    monkeypatch.setattr(ntlm_crypto, "lmowfv1", counted)
    password = "Unique-For-This-Test-7f3a"
    first = ntlm_one_way(password)
    assert ntlm_one_way(password) == first and len(calls) == 1
    assert redact.redact(f"sent {first}") == f"sent {redact.MASK}"


@pytest.mark.parametrize(("auth", "hashed"), [("ntlm", True), ("negotiate", False), ("basic", False)])
def test_only_ntlm_passwords_are_handed_over_hashed(lab: Lab, auth: str, hashed: bool) -> None:
    settings = lab_settings(lab, HOST, auth=auth, encryption="never" if auth == "basic" else "auto")
    password = _wsman_kwargs(settings)["password"]
    assert (password == ntlm_one_way(lab.password)) is hashed
    assert (password == lab.password) is not hashed


def test_the_lab_accepts_the_ntlm_one_way_form(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[object] = []
    client = spnego.client

    def spy(username: Any = None, password: Any = None, *args: Any, **kwargs: Any) -> Any:
        given.append(password)
        return client(username, password, *args, **kwargs)

    monkeypatch.setattr(spnego, "client", spy)
    for _ in range(2):  # a second connection needs no new derivation
        session = ServerSession(lab_settings(lab, HOST), lab.server(HOST).product, default_timeout=30)
        with Server(session) as server:
            assert any(s.name == "RTCMEDSRV" for s in server.services())
    assert given == [ntlm_one_way(lab.password)] * 2
