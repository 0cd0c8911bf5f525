"""``ocsps check`` end to end: the CLI against lab topologies over real HTTP, WSMan, PSRP and NTLM.

Each trap a check looks for has a topology that trips it and a server that passes (tests/data/lab_topologies/
checks-*.toml). The lab is a simulation: these tests show ocsps reads, judges and reports as designed,
not that a real OCS / Lync server answers this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import CliResult, run_cli
from tests.conftest import DATA

TOPOLOGIES = DATA / "lab_topologies"
BASELINES = DATA / "checks" / "restart-pending" / "baselines"


@pytest.fixture(autouse=True)
def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))


def _check(capsys: pytest.CaptureFixture[str], topology: str | None, *args: str) -> CliResult:
    lab = ["--lab"] + (["--lab-topology", str(TOPOLOGIES / topology)] if topology else [])
    return run_cli(capsys, "check", *args, *lab, "--json")


def _findings(doc: dict[str, Any], host: str, check: str) -> dict[str, list[str]]:
    (outcome,) = [h for h in doc["hosts"] if h["host"] == host]
    (result,) = [c for c in outcome["result"]["checks"] if c["check"] == check]
    found: dict[str, list[str]] = {}
    for finding in result["findings"]:
        found.setdefault(finding["rule"], []).append(finding["status"])
    return found


TRIPS = [
    # (topology, host, check, extra arguments, exit code, check status, {rule: status that must appear})
    (
        "checks-archiving.toml",
        "arch-none.contoso.com",
        "archiving-queue",
        [],
        1,
        "fail",
        {"privacy-not-none": "fail"},
    ),
    (
        "checks-archiving.toml",
        "arch-body-fe.contoso.com",
        "archiving-queue",
        [],
        1,
        "fail",
        {"privacy-not-body-collocated": "fail", "privacy-not-none": "pass"},
    ),
    (
        "checks-archiving.toml",
        "arch-body-alone.contoso.com",
        "archiving-queue",
        [],
        0,
        "pass",
        {"privacy-not-body-collocated": "pass"},
    ),
    (
        "checks-archiving.toml",
        "fe-noad.contoso.com",
        "archiving-queue",
        [],
        1,
        "fail",
        {"msmq-ad-integration": "fail"},
    ),
    (
        "checks-archiving.toml",
        "arch-ok.contoso.com",
        "archiving-queue",
        ["--queue-path", ".\\private$\\archq"],
        0,
        "pass",
        {"queue-exists": "pass"},
    ),
    (
        "checks-archiving.toml",
        "arch-ok.contoso.com",
        "archiving-queue",
        [],
        1,
        "fail",
        {"queue-exists": "fail"},
    ),
    (None, "ocs01.contoso.com", "archiving-queue", [], 0, "pass", {"privacy-not-body-collocated": "pass"}),
    (
        "checks-tls.toml",
        "ocs-renewed.contoso.com",
        "tls-certificate",
        [],
        1,
        "fail",
        {"in-store": "fail", "current": "fail", "key-access": "fail", "events": "warn"},
    ),
    ("checks-tls.toml", "ocs-tls-ok.contoso.com", "tls-certificate", [], 0, "pass", {"key-access": "pass"}),
    ("checks-tls.toml", "sfb-tls-ok.contoso.com", "tls-certificate", [], 0, "pass", {"current": "pass"}),
    ("checks-tls.toml", "ocs-tls-events.contoso.com", "tls-certificate", [], 0, "warn", {"in-store": "pass"}),
    (
        "checks-tls.toml",
        "lync-tls-events.contoso.com",
        "tls-certificate",
        [],
        0,
        "warn",
        {"in-store": "pass"},
    ),
    (None, "ocs01.contoso.com", "tls-certificate", [], 0, "pass", {"in-store": "pass"}),
    (
        "checks-drain.toml",
        "med-noperf.contoso.com",
        "drain-ready",
        ["-s", "RTCMEDSRV"],
        1,
        "fail",
        {"activity-readable": "fail"},
    ),
    (
        "checks-drain.toml",
        "med-ok.contoso.com",
        "drain-ready",
        ["-s", "RTCMEDSRV"],
        0,
        "pass",
        {"service-running": "pass"},
    ),
    (
        "checks-drain.toml",
        "med13-ps2.contoso.com",
        "drain-ready",
        ["-s", "RTCMEDSRV"],
        1,
        "fail",
        {"powershell-version": "fail"},
    ),
    (
        "checks-drain.toml",
        "med-nomodule.contoso.com",
        "drain-ready",
        ["-s", "RTCMEDSRV"],
        1,
        "fail",
        {"module-loads": "fail"},
    ),
    (
        "checks-drain.toml",
        "med-stopped.contoso.com",
        "drain-ready",
        ["-s", "RTCMEDSRV"],
        1,
        "fail",
        {"service-running": "fail"},
    ),
    (
        "checks-deactivation.toml",
        "med-nolcscmd.contoso.com",
        "deactivation-ready",
        [],
        1,
        "fail",
        {"lcscmd": "fail"},
    ),
    (
        "checks-deactivation.toml",
        "med-lcscmd.contoso.com",
        "deactivation-ready",
        [],
        0,
        "warn",
        {"lcscmd": "pass", "activity": "warn"},
    ),
    (
        None,
        "ocs01.contoso.com",
        "restart-pending",
        ["--baseline", str(BASELINES / "ocs01-before-port-change.toml")],
        0,
        "warn",
        {"inputs": "pass", "restart": "warn"},
    ),
    (None, "ocs01.contoso.com", "restart-pending", [], 0, "skip", {"inputs": "skip"}),
    (None, "med01.contoso.com", "archiving-queue", [], 0, "skip", {"applies": "skip"}),
]


@pytest.mark.parametrize(
    ("topology", "host", "check", "extra", "code", "status", "rules"),
    TRIPS,
    ids=[f"{t[2]}-{t[1].split('.')[0]}-{t[5]}" for t in TRIPS],
)
def test_check_against_lab(
    capsys: pytest.CaptureFixture[str],
    topology: str | None,
    host: str,
    check: str,
    extra: list[str],
    code: int,
    status: str,
    rules: dict[str, str],
) -> None:
    result = _check(capsys, topology, check, "--host", host, *extra)
    assert result.code == code, result.err
    doc = result.json()
    assert doc["exit_code"] == code and doc["checks"] == [check]
    (outcome,) = doc["hosts"]
    (found,) = outcome["result"]["checks"]
    assert found["status"] == status, found["findings"]
    by_rule = _findings(doc, host, check)
    for rule, expected in rules.items():
        assert expected in by_rule.get(rule, []), (rule, found["findings"])


def test_renewed_certificate_reports_event_times(capsys: pytest.CaptureFixture[str]) -> None:
    result = _check(capsys, "checks-tls.toml", "tls-certificate", "--host", "ocs-renewed.contoso.com")
    (outcome,) = result.json()["hosts"]
    (found,) = outcome["result"]["checks"]
    product_log, application = [f for f in found["findings"] if f["rule"] == "events"]
    assert product_log["reason"].startswith(
        "no event 14347, 14336, 14352 in the Office Communications Server log"
    )
    assert application["reason"].startswith("3 event(s) in the Application log")
    assert all(f"{i} at " in application["reason"] for i in (14347, 14336, 14352))
    (current,) = [f for f in found["findings"] if f["rule"] == "current"]
    assert (
        "Certificate Wizard" in current["fix"]
        and "9F8E7D6C5B4A39281706F5E4D3C2B1A098765432" in current["fix"]
    )
    assert found["facts"]["events"]["Application"], "the events themselves are in the JSON facts"
    assert found["facts"]["event_logs_read"] == ["Office Communications Server", "Application"]


def test_human_output_gives_reason_fix_and_rule(capsys: pytest.CaptureFixture[str]) -> None:
    topology = str(TOPOLOGIES / "checks-archiving.toml")
    result = run_cli(
        capsys,
        "check",
        "archiving-queue",
        "--lab",
        "--lab-topology",
        topology,
        "--host",
        "arch-body-fe.contoso.com",
    )
    assert result.code == 1
    assert "FAIL arch-body-fe.contoso.com archiving-queue" in result.out
    assert "fail privacy-not-body-collocated:" in result.out
    assert "consequence: Messages are not archived, and the server stops running" in result.out
    assert "fix: Set the privacy level of .\\private$\\lcslog to Optional" in result.out
    assert "rule: seed 002: do not set the privacy level to Body" in result.out
    assert "checks: 1 fail" in result.out


def test_every_check_on_the_default_lab_has_no_failure(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --host the lab's every server is checked; checks not for a product are skipped, not failed."""
    result = _check(capsys, None)
    assert result.code == 0, result.out
    doc = result.json()
    assert len(doc["hosts"]) == 7
    statuses = {c["status"] for h in doc["hosts"] for c in h["result"]["checks"]}
    assert "fail" not in statuses and "pass" in statuses
    assert doc["summary"]["fail"] == 0 and doc["summary"]["hosts_failed"] == 0
    assert doc["summary"]["pass"] + doc["summary"]["warn"] + doc["summary"]["skip"] == 7 * len(doc["checks"])


def test_list_describes_every_check_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "check", "--list", "--json")
    assert result.code == 0
    names = [c["name"] for c in result.json()["checks"]]
    assert names == [
        "archiving-queue",
        "tls-certificate",
        "drain-ready",
        "restart-pending",
        "deactivation-ready",
        "synthetic",
    ]
    human = run_cli(capsys, "check", "--list", "tls-certificate")
    assert "tls-certificate:" in human.out and "seed 004" in human.out and "archiving-queue" not in human.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-check"], "unknown check 'no-such-check'; choose from: archiving-queue"),
        (["tls-certificate", "--since", "soon"], "cannot read --since"),
        (["restart-pending", "--baseline", str(TOPOLOGIES / "missing.toml")], "cannot read baseline"),
        (
            ["restart-pending", "--baseline", str(TOPOLOGIES / "checks-tls.toml")],
            "must be a table of Property",
        ),
        (["restart-pending", "--changed", "MSFT_SIPNoSuch.X", "--lab"], "unknown WMI class"),
        (["deactivation-ready", "--role", "nonsense", "--lab"], "unknown role 'nonsense' for ocs2007r2"),
        (
            ["drain-ready", "--service", "NOPE", "--lab", "--host", "med01.contoso.com"],
            "unknown service 'NOPE'",
        ),
        (["archiving-queue", "--queue-path", " "], "--queue-path is empty"),
    ],
)
def test_bad_input_exits_2_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    result = run_cli(capsys, "check", *args)
    assert result.code == 2, result.err
    assert message in result.err


def test_unreachable_host_exits_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSPS_PASSWORD", "not-used")
    result = run_cli(
        capsys,
        "check",
        "archiving-queue",
        "--host",
        "127.0.0.1",
        "--port",
        "9",
        "--no-ssl",
        "--auth",
        "ntlm",
        "--username",
        "LAB\\admin",
        "--product",
        "ocs2007r2",
        "--timeout",
        "5s",
        "--json",
    )
    assert result.code == 3, result.err
    (outcome,) = result.json()["hosts"]
    assert outcome["state"] == "failed" and "refused" in outcome["error"]


@pytest.mark.parametrize(
    ("host", "log"),
    [
        ("ocs-tls-events.contoso.com", "Office Communications Server"),
        ("lync-tls-events.contoso.com", "Lync Server"),
    ],
)
def test_tls_events_in_the_products_own_log_are_found(
    capsys: pytest.CaptureFixture[str], host: str, log: str
) -> None:
    """OCS and Lync write to their own logs: events there must be found, and both logs named as read."""
    result = _check(capsys, "checks-tls.toml", "tls-certificate", "--host", host)
    (outcome,) = result.json()["hosts"]
    (found,) = outcome["result"]["checks"]
    events = {f["reason"].split(" log")[0]: f for f in found["findings"] if f["rule"] == "events"}
    assert found["facts"]["event_logs_read"] == [log, "Application"]
    own = next(f for f in found["findings"] if f["rule"] == "events" and f"the {log} log" in f["reason"])
    assert own["status"] == "warn" and own["reason"].startswith(f"1 event(s) in the {log} log"), events


def test_a_check_answered_by_another_computer_fails_that_host(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preflight read from the wrong computer vouches for nothing: the host fails, it does not pass."""
    topology = tmp_path / "impostor.toml"
    topology.write_text(
        '[[servers]]\nfqdn = "med01.contoso.com"\nproduct = "sfb2015"\nroles = ["MediationServer"]\n'
        'computer_name = "med09.contoso.com"\n',
        encoding="utf-8",
    )
    result = run_cli(
        capsys, "check", "drain-ready", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--json"
    )
    assert result.code != 0
    assert "the computer that answered is med09.contoso.com" in result.out + result.err


@pytest.mark.parametrize("configured", [False, True], ids=["default-locations", "config-path"])
def test_deactivation_ready_looks_where_the_config_file_says(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    """The check looks for LCSCmd.exe where a deactivation run would: the config file's [lcscmd] path."""
    config = tmp_path / "config.toml"
    config.write_text("[lcscmd]\npath = 'D:\\Tools\\LCSCmd.exe'\n" if configured else "", encoding="utf-8")
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    host = "med-lcscmd-elsewhere.contoso.com"
    result = _check(capsys, "checks-deactivation.toml", "deactivation-ready", "--host", host)
    assert _findings(result.json(), host, "deactivation-ready")["lcscmd"] == [
        "pass" if configured else "fail"
    ]
