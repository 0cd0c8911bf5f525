"""The library as a script author meets it: typed (``py.typed``), one error hierarchy, a connector per estate.

Type checks run mypy (strict) on small scripts outside the checkout, so the installed package and its
``py.typed`` marker are what mypy sees, as in an automation engineer's project.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ocsps
from ocsps.lab.runtime import Lab
from ocsps.results import ServiceState
from tests.reliability.labkit import quick_topology

GOOD = """
import ocsps

with ocsps.connect(
    "med01.contoso.com", product="sfb2015", auth="ntlm", username="C\\\\a", password="x",
    verify=False, port=5986, read_timeout=60.0, negotiate_delegate=False,
) as server:
    status: ocsps.ServiceStatus = server.status("RTCMEDSRV")
estate = ocsps.Connector(product="sfb2015", auth="kerberos", ssl=True)
servers: list[ocsps.Server] = estate.servers(["med01.contoso.com", "med02.contoso.com:5986"])
"""

BAD = """
import ocsps

ocsps.connect("med01.contoso.com", product="sfb2015", verfy=False)
ocsps.connect("med01.contoso.com", product="sfb2015", port="5986")
ocsps.Connector(product="sfb2015", encryption="sometimes")
"""


@pytest.mark.timeout(240)
def test_settings_are_typed_for_the_type_checker(tmp_path: Path) -> None:
    """mypy runs in a process of its own (in this one it would raise the recursion limit for good)."""
    pytest.importorskip("mypy")
    (tmp_path / "good.py").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.py").write_text(BAD, encoding="utf-8")
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", "cache"]
    run = subprocess.run(
        [*command, "good.py", "bad.py"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    out = run.stdout
    assert "missing library stubs or py.typed marker" not in out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert run.returncode == 1 and all(line.startswith("bad.py:") for line in errors), out
    assert len(errors) == 3, out
    assert '"verfy"' in out and '"port"' in out and '"encryption"' in out


def test_the_package_ships_py_typed() -> None:
    marker = Path(ocsps.__file__).with_name("py.typed")
    assert marker.is_file()


def test_outcome_unknown_is_not_a_connect_error() -> None:
    """``except ConnectError: retry`` must never resend a change that may already have run."""
    assert not issubclass(ocsps.OutcomeUnknown, ocsps.ConnectError)
    assert issubclass(ocsps.OutcomeUnknown, ocsps.OcspsError) and ocsps.OutcomeUnknown.exit_code == 3
    assert issubclass(ocsps.RetriesExhausted, ocsps.ConnectError)


def test_a_connector_gives_each_host_its_own_settings_from_shared_ones() -> None:
    estate = ocsps.Connector(product="sfb2015", auth="ntlm", username="CONTOSO\\a", password="x", ssl=False)
    one = estate.settings_for("med01.contoso.com")
    two = estate.settings_for("med02.contoso.com:5999")
    assert (one.host, one.port, one.auth, one.username) == ("med01.contoso.com", 5985, "ntlm", "CONTOSO\\a")
    assert (two.host, two.port) == ("med02.contoso.com", 5999)
    assert one.password == two.password and repr(one.password) == "******"
    assert estate.server("med03.contoso.com").host == "med03.contoso.com"
    with pytest.raises(ocsps.UsageError, match="connect_address differs per host"):
        ocsps.Connector(product="sfb2015", connect_address="10.0.0.1")
    with pytest.raises(ocsps.UsageError, match="unknown connection setting"):
        ocsps.Connector(product="sfb2015", verfy=False)  # type: ignore[call-arg]
    with pytest.raises(ocsps.UsageError):
        estate.server("med01.contoso.com\nmed02.contoso.com")


def test_a_lab_connector_reaches_every_lab_server_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    with Lab(quick_topology()) as lab:
        estate = ocsps.Connector.for_lab(lab, timeout=30)
        for name in ("med01.contoso.com", "med02.contoso.com"):
            with estate.server(name) as server:
                assert server.status("RTCMEDSRV").status is ServiceState.RUNNING
        assert lab.requests("med01.contoso.com")["Command"] == 1
        assert lab.requests("med02.contoso.com")["Command"] == 1, "med02 was reached, not med01 twice"
        with pytest.raises(ocsps.UsageError, match="not a server of the lab"):
            estate.server("med10.contoso.com")
