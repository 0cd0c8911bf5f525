"""``--lab`` with target options follows one rule, and ``--host host:port`` works wherever ``--host`` does.

The rule (``ocsps.cli.targets.LAB_RULE``): with ``--lab`` the servers are the lab's, chosen by lab name
(``--host``/``--hosts-file``), by a profile's host or by ``--product``; options that say how to connect are
refused, never silently ignored (a drain meant for one server must not reach five).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import run_cli

TOPOLOGY = """
[lab]
username = "LAB\\\\admin"

[[servers]]
fqdn = "med01.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.05

[[servers]]
fqdn = "med02.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.05
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    topology = tmp_path / "lab.toml"
    topology.write_text(TOPOLOGY, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.med01]\nhost = "med01.contoso.com"\nproduct = "sfb2015"\n\n'
        '[profiles.fe09]\nhost = "fe09.contoso.com"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    for name in ("OCSPS_HOST", "OCSPS_PROFILE", "OCSPS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return topology


def test_unknown_product_with_lab_says_unknown_product(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    result = run_cli(capsys, "status", "-p", "lync2016", "--lab", "--lab-topology", str(env))
    assert result.code == 2 and "unknown product 'lync2016'" in result.err


def test_a_profile_with_lab_uses_the_profile_host(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    lab = ["--lab", "--lab-topology", str(env)]
    args = ["drain", "-s", "RTCMEDSRV", "--profile", "med01", *lab, "--poll", "0.1s", "--json"]
    result = run_cli(capsys, *args)
    assert result.code == 0, result.err
    assert [h["host"] for h in result.json()["hosts"]] == ["med01.contoso.com"]


def test_a_profile_whose_host_is_not_a_lab_server_is_refused(
    capsys: pytest.CaptureFixture[str], env: Path
) -> None:
    result = run_cli(capsys, "status", "--profile", "fe09", "--lab", "--lab-topology", str(env))
    assert result.code == 2 and "fe09.contoso.com is not a server of the lab topology" in result.err


@pytest.mark.parametrize(
    "option", [["--auth", "ntlm"], ["--username", "A\\b"], ["--port", "5986"], ["--no-verify-tls"]]
)
def test_connection_options_with_lab_are_refused(
    capsys: pytest.CaptureFixture[str], env: Path, option: list[str]
) -> None:
    result = run_cli(capsys, "status", *option, "--lab", "--lab-topology", str(env))
    assert result.code == 2 and "cannot be combined with --lab" in result.err
    assert "with --lab the servers are the lab's" in result.err


def test_host_with_port_names_the_host_once(
    capsys: pytest.CaptureFixture[str], env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSPS_PASSWORD", "x")
    args = ["--host", "127.0.0.1:1", "-p", "sfb2015", "--no-ssl", "--auth", "ntlm", "-u", "A\\b"]
    status = run_cli(capsys, "status", *args, "--timeout", "5s")
    assert status.code == 3
    assert "connection refused" in status.out and "127.0.0.1: connection refused" not in status.out
    pool = run_cli(capsys, "pool", "status", "--pool", "pool01.contoso.com", *args)
    text = pool.out + pool.err
    assert "no connection settings" not in text
    assert "connection refused" in text and "127.0.0.1: 127.0.0.1:" not in text
