"""Service operations end to end: the CLI against the lab over real HTTP, WSMan, PSRP and NTLM."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ocsps.lab.runtime import Lab
from ocsps.remote.connector import lab_settings
from tests.cli_helpers import run_cli
from tests.conftest import DATA, ROOT

TOPOLOGIES = DATA / "lab_topologies"
SCHEMAS = ROOT / "docs" / "schemas"


def _schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return loaded


@pytest.fixture(autouse=True)
def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    return path


def test_drain_busy_mediation_reaches_stopped_with_events(
    capsys: pytest.CaptureFixture[str], _audit: Path
) -> None:
    result = run_cli(
        capsys,
        "drain",
        "--service",
        "RTCMEDSRV",
        "--lab",
        "--host",
        "med01.contoso.com",
        "--poll",
        "0.3s",
        "--json",
    )
    assert result.code == 0, result.err
    doc = result.json()
    jsonschema.validate(doc, _schema("drain"))
    (host,) = doc["hosts"]
    report = host["result"]
    assert report["phase"] == "stopped" and report["status"] == "Stopped"
    assert report["polls"] >= 1, "the drain was watched, not assumed"
    assert [e["id"] for e in report["events"]] == [25049, 25050, 25003]
    assert all(e["time"] for e in report["events"])
    lines = [json.loads(line) for line in _audit.read_text().splitlines()]
    lines = [a for a in lines if a["outcome"] != "starting"]  # intent records precede each change
    assert [(a["host"], a["action"], a["outcome"]) for a in lines] == [
        ("med01.contoso.com", "drain-watch", "ok")
    ]
    assert lines[0]["parameters"]["Name"] == "RTCMEDSRV"


@pytest.mark.parametrize(
    ("then", "code", "phase", "status"),
    [
        ("force-stop", 0, "forced", "Stopped"),
        ("fail", 4, "deadline", "Paused"),
        ("leave", 0, "left-draining", "Paused"),
    ],
)
def test_drain_deadline_policies(
    capsys: pytest.CaptureFixture[str], then: str, code: int, phase: str, status: str
) -> None:
    result = run_cli(
        capsys,
        "drain",
        "--service",
        "RTCMEDSRV",
        "--lab",
        "--lab-topology",
        str(TOPOLOGIES / "stuck-mediation.toml"),
        "--timeout",
        "1s",
        "--poll",
        "0.2s",
        "--then",
        then,
        "--json",
    )
    assert result.code == code, result.err
    report = result.json()["hosts"][0]["result"]
    assert (report["phase"], report["status"], report["then"]) == (phase, status, then)
    assert "deadline reached" in report["note"]


def test_rolling_restart_stops_at_injected_failure(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys,
        "restart",
        "--service",
        "RTCSRV",
        "--rolling",
        "--lab",
        "--lab-topology",
        str(TOPOLOGIES / "pool-with-failure.toml"),
        "--json",
    )
    assert result.code == 1
    doc = result.json()
    jsonschema.validate(doc, _schema("operation"))
    states = [(h["host"], h["state"]) for h in doc["hosts"]]
    assert states == [
        ("fe01.contoso.com", "ok"),
        ("fe02.contoso.com", "failed"),
        ("fe03.contoso.com", "skipped"),
    ]
    assert "cannot be stopped" in doc["hosts"][1]["error"]


def test_twenty_host_status_in_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys,
        "status",
        "--service",
        "RTCMEDSRV",
        "--lab",
        "--lab-topology",
        str(TOPOLOGIES / "fleet-20.toml"),
        "--parallel",
        "10",
        "--json",
    )
    assert result.code == 0, result.err
    doc = result.json()
    jsonschema.validate(doc, _schema("status"))
    assert len(doc["hosts"]) == 20
    calls = {h["host"]: h["result"][0]["activity"]["total"] for h in doc["hosts"]}
    assert calls["med07.fleet.contoso.com"] == 7


def test_what_if_sends_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with Lab() as lab:
        settings = lab_settings(lab, "med01.contoso.com")
        env = {
            "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
            "OCSPS_PORT": str(lab.port),
            "OCSPS_SSL": "false",
            "OCSPS_PATH": settings.path,
            "OCSPS_AUTH": "ntlm",
            "OCSPS_USERNAME": lab.username,
            "OCSPS_PASSWORD": lab.password,
            "OCSPS_PRODUCT": "sfb2015",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        result = run_cli(
            capsys, "drain", "--service", "RTCMEDSRV", "--host", "med01.contoso.com", "--what-if"
        )
        assert result.code == 0, result.err
        assert "Stop-CsWindowsService -Name $Name -Graceful" in result.out
        assert "'RTCMEDSRV'" in result.out  # shown as a bound parameter
        assert lab.requests("med01.contoso.com").get("requests", 0) == 0
        control = run_cli(capsys, "status", "--service", "RTCMEDSRV", "--host", "med01.contoso.com")
        assert control.code == 0, control.err
        assert lab.requests("med01.contoso.com")["requests"] > 0


@pytest.mark.parametrize(("action", "changed"), [("stop", False), ("start", True)])
def test_stop_start_are_idempotent_and_say_so(
    capsys: pytest.CaptureFixture[str], action: str, changed: bool
) -> None:
    result = run_cli(
        capsys,
        action,
        "--service",
        "REPLICA",
        "--lab",
        "--lab-topology",
        str(TOPOLOGIES / "stopped-replica.toml"),
        "--json",
    )
    assert result.code == 0, result.err
    outcome = result.json()["hosts"][0]["result"]
    assert outcome["changed"] is changed
    assert outcome["after"]["status"] == ("Stopped" if action == "stop" else "Running")
    if not changed:
        assert outcome["note"] == "already stopped: nothing to do"


def test_drain_refused_on_ocs_with_pointer_to_stop(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "drain", "--service", "RtcSrv", "--lab", "--host", "ocs01.contoso.com")
    assert result.code == 2
    assert "no graceful drain" in result.err and "use 'stop'" in result.err


def test_ocs_stop_by_display_name(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys, "stop", "--service", "ocs-web-conferencing", "--lab", "--host", "ocs01.contoso.com", "--json"
    )
    assert result.code == 0, result.err
    after = result.json()["hosts"][0]["result"]["after"]
    assert after["display_name"] == "Office Communications Server Web Conferencing"
    assert after["status"] == "Stopped"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drain", "--service", "RTCNOPE", "--lab", "--host", "med01.contoso.com"], "unknown service"),
        (["drain", "--service", "RTCMEDSRV", "--lab", "--then", "explode"], "--then must be one of"),
        (["drain", "--service", "RTCMEDSRV", "--lab", "--timeout", "soon"], "cannot read duration"),
        (["status", "--host", "bad host;rm", "--product", "sfb2015"], "--host"),
        (["status", "--product", "sfb2015"], "no server given"),
        (["status", "--host", "med01.contoso.com"], "which product"),
    ],
)
def test_bad_input_is_refused_before_sending(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    for var in ("OCSPS_HOST", "OCSPS_PROFILE", "OCSPS_PRODUCT"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "config.toml"
    empty.write_text("")
    empty.chmod(0o600)  # a config others can read is warned about: not what this test counts
    monkeypatch.setenv("OCSPS_CONFIG", str(empty))
    result = run_cli(capsys, *args)
    assert result.code == 2, (result.out, result.err)
    assert message in result.err
    assert len(result.err.strip().splitlines()) <= 2  # one line, plus an optional hint
