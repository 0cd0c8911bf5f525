"""``ocsps pool start`` and ``ocsps pool recover`` against the lab over real HTTP, WSMan, PSRP and NTLM.

The lab decides with its own quorum table whether Start-CsPool may start a pool and what a quorum-loss
recovery restores (ocsps/lab/recovery_sim.py). These tests show that ocsps reads, asks, sends and reads
again as designed; they do not show that a real pool answers this way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ocsps.catalog import load_catalog
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import load_topology
from ocsps.pool import RemoteDriver
from ocsps.pool.recovery import RecoveryOutcome, RemoteRecoveryDriver, recover_pool, start_pool
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.cli_helpers import CliResult, run_cli
from tests.conftest import DATA, ROOT

COLD = DATA / "pool" / "recovery-cold.toml"
QLOSS = DATA / "pool" / "recovery-quorum-loss.toml"
COLD_MEMBERS = ["fec1.contoso.com", "fec2.contoso.com", "fec3.contoso.com"]


@pytest.fixture(autouse=True)
def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    return log


def _audit_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _cli(capsys: pytest.CaptureFixture[str], topology: Path, *args: str) -> CliResult:
    return run_cli(capsys, "pool", *args, "--lab", "--lab-topology", str(topology))


def _driver(lab: Lab) -> RemoteRecoveryDriver:
    def factory(host: str) -> Server:
        return Server(ServerSession(lab_settings(lab, host), lab.server(host).product, retry_backoff=0.01))

    return RemoteRecoveryDriver(RemoteDriver(factory, call_timeout=30.0))


@pytest.fixture
def cold_lab() -> Iterator[Lab]:
    with Lab(load_topology(COLD)) as running:
        yield running


SCHEMA = json.loads((ROOT / "docs" / "schemas" / "pool-recovery.schema.json").read_text(encoding="utf-8"))


def test_start_brings_a_cold_pool_up_and_records_the_change(
    capsys: pytest.CaptureFixture[str], _audit: Path
) -> None:
    result = _cli(
        capsys, COLD, "start", "--pool", "cold.contoso.com", "--yes", "--json", "--change-id", "CHG-7"
    )
    assert result.code == 0, result.err
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["outcome"] == "started" and doc["changed"] is True
    assert {m["condition"] for m in doc["before"]["members"]} == {"down"}
    assert {m["condition"] for m in doc["after"]["members"]} == {"up"}
    assert doc["answer"]["operation"] == "StartPool"
    lines = _audit_lines(_audit)
    assert any(line.get("action") == "pool-start" and line.get("change_id") == "CHG-7" for line in lines)


def test_starting_a_started_pool_sends_nothing(cold_lab: Lab) -> None:
    product = load_catalog().product("sfb2015")
    driver = _driver(cold_lab)
    try:
        first = start_pool(driver, "cold.contoso.com", product, COLD_MEMBERS, wait=10.0, poll=0.1)
        second = start_pool(driver, "cold.contoso.com", product, COLD_MEMBERS, wait=10.0, poll=0.1)
        answer = driver.start_pool(COLD_MEMBERS[0], "cold.contoso.com", (), False, 30.0)
    finally:
        driver.close()
    assert first.outcome is RecoveryOutcome.STARTED
    assert second.outcome is RecoveryOutcome.ALREADY_STARTED and not second.changed
    pool = cold_lab.topology.pools["cold.contoso.com"]
    # the first start changed the pool; the second read it and sent nothing; the direct call changed nothing
    assert [op for op in pool.operations if op.startswith("start-pool")] == ["start-pool "]
    assert answer.warnings == ("Pool cold.contoso.com is already started.",)


def test_start_that_would_break_quorum_is_refused_by_the_pool(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _cli(
        capsys,
        COLD,
        "start",
        "--pool",
        "cold.contoso.com",
        "--skip-server",
        "fec1.contoso.com,fec2.contoso.com",
        "--yes",
        "--json",
    )
    assert result.code == 1
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["outcome"] == "failed" and doc["changed"] is True
    assert "fewer than the pool needs to function" in doc["reason"]
    assert {m["condition"] for m in doc["after"]["members"]} == {"down"}, "read again after the refusal"


def test_recover_brings_back_a_pool_in_quorum_loss(capsys: pytest.CaptureFixture[str]) -> None:
    result = _cli(capsys, QLOSS, "recover", "--pool", "qloss.contoso.com", "--yes", "--json", "--wait", "20s")
    assert result.code == 0, result.err
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["outcome"] == "recovered"
    assert doc["before"]["fabric"]["missing_replicas"] and not doc["after"]["fabric"]["missing_replicas"]
    assert {m["condition"] for m in doc["after"]["members"]} == {"up"}


def test_recover_on_a_healthy_pool_sends_nothing(cold_lab: Lab) -> None:
    product = load_catalog().product("sfb2015")
    driver = _driver(cold_lab)
    try:
        start_pool(driver, "cold.contoso.com", product, COLD_MEMBERS, wait=10.0, poll=0.1)
        result = recover_pool(driver, "cold.contoso.com", product, COLD_MEMBERS, wait=10.0, poll=0.1)
    finally:
        driver.close()
    assert result.outcome is RecoveryOutcome.NOTHING_TO_RECOVER and not result.changed
    pool = cold_lab.topology.pools["cold.contoso.com"]
    assert not [op for op in pool.operations if op.startswith("quorum-loss-recovery")]


@pytest.mark.parametrize("command", ["start", "recover"])
def test_without_a_terminal_and_without_yes_nothing_is_sent(
    capsys: pytest.CaptureFixture[str], _audit: Path, command: str
) -> None:
    result = _cli(capsys, COLD, command, "--pool", "cold.contoso.com")
    assert result.code == 2
    assert "--yes" in result.err
    assert _audit_lines(_audit) == []


def test_what_if_prints_the_script_and_the_values(capsys: pytest.CaptureFixture[str], _audit: Path) -> None:
    result = _cli(
        capsys,
        COLD,
        "start",
        "--pool",
        "cold.contoso.com",
        "--skip-server",
        "fec3.contoso.com",
        "--what-if",
        "--json",
    )
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["values"] == {"PoolFqdn": "cold.contoso.com", "SkipServer": ["fec3.contoso.com"]}
    assert "Start-CsPool -PoolFqdn $PoolFqdn" in doc["script"]
    assert "cold.contoso.com" not in doc["script"], "values are bound, never pasted"
    assert _audit_lines(_audit) == []


def test_what_if_for_a_product_without_start_cspool_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    result = _cli(capsys, QLOSS, "start", "--pool", "qloss.contoso.com", "--what-if")
    assert result.code == 2
    assert "Start-CsPool arrived with Skype for Business Server 2015" in result.err


def test_live_start_for_a_product_without_start_cspool_is_refused(
    capsys: pytest.CaptureFixture[str], _audit: Path
) -> None:
    result = _cli(capsys, QLOSS, "start", "--pool", "qloss.contoso.com", "--yes")
    assert result.code == 2
    assert "Start-CsPool arrived with Skype for Business Server 2015" in result.err
    assert not [line for line in _audit_lines(_audit) if line.get("action") == "pool-start"]


class _Terminal:
    """A stdin that says it is a terminal and answers with ``text``."""

    def __init__(self, text: str) -> None:
        self.lines = iter(text.splitlines(keepends=True))

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return next(self.lines, "")


@pytest.mark.parametrize(
    ("answer", "code", "outcome", "sent"),
    [("cold.contoso.com\n", 0, "started", True), ("yes\n", 1, "declined", False), ("", 1, "declined", False)],
)
def test_the_operator_confirms_with_the_pool_fqdn(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    _audit: Path,
    answer: str,
    code: int,
    outcome: str,
    sent: bool,
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    result = _cli(capsys, COLD, "start", "--pool", "cold.contoso.com", "--json", "--wait", "20s")
    assert result.code == code, result.err
    jsonschema.validate(result.json(), SCHEMA)
    assert result.json()["outcome"] == outcome
    assert "Type the pool FQDN (cold.contoso.com) to confirm" in result.err
    calls = [line for line in _audit_lines(_audit) if line.get("action") == "pool-start"]
    assert bool(calls) is sent


def test_recover_brings_back_a_pool_with_every_member_down(capsys: pytest.CaptureFixture[str]) -> None:
    """A pool that cannot be read is not taken as healthy: the recovery is sent and the pool comes back."""
    result = _cli(capsys, COLD, "recover", "--pool", "cold.contoso.com", "--yes", "--json", "--wait", "20s")
    assert result.code == 0, result.err
    doc = result.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["outcome"] == "recovered" and doc["before"]["fabric"] is None
    assert {m["condition"] for m in doc["after"]["members"]} == {"up"}
