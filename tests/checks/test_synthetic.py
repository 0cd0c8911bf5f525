"""The synthetic check: its public entry point ``run_synthetic`` against the lab, the CLI, and its parsers.

Recorded cases of what the check decides live in tests/data/checks/synthetic (run by
test_evaluate_cases.py). Here: the lab over real HTTP, WSMan, PSRP and NTLM (a healthy pool, one in
quorum loss, one without test users), the command line, and refusals before anything is sent. The lab's
answers are its own model of the cmdlets, not recorded from a server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsps.checks.synthetic import (
    SyntheticDocument,
    SyntheticOptions,
    Transaction,
    check_sip_address,
    parse_latency,
    parse_transaction,
    run_synthetic,
)
from ocsps.errors import UsageError
from ocsps.jsonout import to_builtins
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import load_topology
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.cli_helpers import run_cli
from tests.conftest import DATA

HEALTHY = DATA / "pool" / "synthetic-healthy.toml"
QLOSS = DATA / "pool" / "recovery-quorum-loss.toml"


@pytest.fixture(autouse=True)
def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))


def _server(lab: Lab, host: str) -> Server:
    return Server(ServerSession(lab_settings(lab, host), lab.server(host).product, retry_backoff=0.01))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:00.4200000", 0.42),
        ("00:01:02", 62.0),
        ("1.02:03:04.5", 93784.5),
        ("", None),
        ("soon", None),
    ],
)
def test_latency_is_read_from_timespan_text(text: str, seconds: float | None) -> None:
    assert parse_latency(text) == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("watcher1@contoso.com", "sip:watcher1@contoso.com"), ("SIP:a@b.com", "sip:a@b.com")],
)
def test_sip_addresses_are_normalised(value: str, expected: str) -> None:
    assert check_sip_address(value, "--user") == expected


@pytest.mark.parametrize("value", ["watcher1", "a@b@c", "sip:a b@c.com", "a@b.com;x=1"])
def test_bad_sip_addresses_are_refused(value: str) -> None:
    with pytest.raises(UsageError):
        check_sip_address(value, "--user")


def test_error_message_property_is_accepted_when_error_is_absent() -> None:
    found = parse_transaction(
        {
            "Transaction": "Registration",
            "Result": "Failure",
            "ErrorMessage": "This machine has no certificate.",
        }
    )
    assert found == Transaction("Registration", "", "Failure", error="This machine has no certificate.")
    assert not found.succeeded


def test_run_synthetic_on_a_healthy_pool_passes() -> None:
    with Lab(load_topology(HEALTHY)) as lab:
        server = _server(lab, "fe19b.contoso.com")
        try:
            result = run_synthetic(server, "pool19.contoso.com")
        finally:
            server.close()
    assert result.ok and result.host == "fe19b.contoso.com"
    assert [(t.name, t.result) for t in result.transactions] == [
        ("Registration", "Success"),
        ("IM", "Success"),
    ]
    assert all(t.latency and t.latency > 0 for t in result.transactions)
    document = to_builtins(SyntheticDocument.of(result))
    assert document["ok"] is True and document["pool"] == "pool19.contoso.com"
    assert [t["transaction"] for t in document["facts"]["transactions"]] == ["Registration", "IM"]


def test_run_synthetic_on_a_pool_in_quorum_loss_fails_with_a_diagnosis() -> None:
    with Lab(load_topology(QLOSS)) as lab:
        server = _server(lab, "feq1.contoso.com")
        try:
            result = run_synthetic(server, "qloss.contoso.com", ["sip:alice@contoso.com"])
        finally:
            server.close()
    assert not result.ok
    registration = next(t for t in result.transactions if t.name == "Registration")
    assert registration.result == "Failure" and "quorum loss" in registration.diagnosis
    assert "sip:alice@contoso.com" in registration.error  # the named user, not the test users


def test_run_synthetic_refuses_bad_users_before_sending() -> None:
    with Lab(load_topology(HEALTHY)) as lab:
        server = _server(lab, "fe19a.contoso.com")
        calls_before = lab.engine.invocations
        try:
            with pytest.raises(UsageError):
                run_synthetic(server, "pool19.contoso.com", ["not-an-address"])
            with pytest.raises(UsageError):
                run_synthetic(server, "pool19.contoso.com", ["a@b.com", "c@d.com", "e@f.com"])
        finally:
            server.close()
        assert lab.engine.invocations == calls_before, "nothing reached the server"


def test_options_carry_the_pool_and_users_in_json() -> None:
    options = SyntheticOptions.from_json({"pool": "p.contoso.com", "user": "a@b.com", "service": "RTCSRV"})
    doc = to_builtins(options)
    assert doc["pool"] == "p.contoso.com" and doc["user"] == "a@b.com" and doc["service"] == "RTCSRV"


def test_cli_check_synthetic_on_the_lab(capsys: pytest.CaptureFixture[str]) -> None:
    lab = ["--lab", "--lab-topology", str(HEALTHY)]
    ok = run_cli(capsys, "check", "synthetic", "--pool", "pool19.contoso.com", *lab, "--json")
    assert ok.code == 0, ok.err
    (host,) = ok.json()["hosts"]
    assert host["host"] == "fe19a.contoso.com", "with --lab and no host: the pool's first member"
    failed = run_cli(
        capsys, "check", "synthetic", "--pool", "qloss.contoso.com", "--lab", "--lab-topology", str(QLOSS)
    )
    assert failed.code == 1
    assert "Routing group" in failed.out and "quorum loss" in failed.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drain-ready", "--pool", "pool19.contoso.com"], "--pool only applies to the synthetic check"),
        (["synthetic", "--pool", "pool19.contoso.com", "--receiver", "b@c.com"], "--receiver needs --user"),
        (["synthetic", "--pool", "pool19.contoso.com", "--user", "nobody"], "is not a SIP address"),
        (["synthetic", "--pool", "pool99.contoso.com"], "the lab topology has no pool"),
    ],
)
def test_cli_refuses_bad_synthetic_input(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    result = run_cli(capsys, "check", *args, "--lab", "--lab-topology", str(HEALTHY))
    assert result.code == 2
    assert message in result.err
