"""A change is audited before it is sent: an audit log that cannot take a record refuses the change.

Each case points ``OCSPS_AUDIT_LOG`` somewhere unusable and runs a state-changing command against a running
lab; nothing may reach the server (the lab counts requests), the exit code is 2 and the error is one line.
Reads go on, with one warning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocsps.lab.runtime import Lab
from tests.cli_helpers import run_cli

MED01 = "med01.contoso.com"
OCS01 = "ocs01.contoso.com"

UNUSABLE: dict[str, Callable[[Path], Path]] = {
    "directory": lambda tmp: tmp,
    "parent-is-a-file": lambda tmp: _file(tmp / "file") / "audit.jsonl",
}
if os.path.exists("/dev/full"):
    UNUSABLE["disk-full"] = lambda _tmp: Path("/dev/full")
if os.path.exists("/dev/null"):
    UNUSABLE["dev-null"] = lambda _tmp: Path("/dev/null")
if hasattr(os, "mkfifo"):
    UNUSABLE["fifo"] = lambda tmp: _fifo(tmp / "audit.fifo")

CHANGES = {
    "stop": ["stop", "--service", "RTCMEDSRV", "--host", MED01, "-p", "sfb2015"],
    "start": ["start", "--service", "RTCMEDSRV", "--host", MED01, "-p", "sfb2015"],
    "drain": ["drain", "--service", "RTCMEDSRV", "--host", MED01, "-p", "sfb2015", "--poll", "0.2s"],
}


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _file(path: Path) -> Path:
    path.write_text("", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def running_lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


def _reach(lab: Lab, host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = lab.connection(host)["path"]
    env = {
        "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
        "OCSPS_PORT": str(lab.port),
        "OCSPS_SSL": "false",
        "OCSPS_PATH": path,
        "OCSPS_AUTH": "ntlm",
        "OCSPS_USERNAME": lab.username,
        "OCSPS_PASSWORD": lab.password,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _changes(lab: Lab, host: str) -> int:
    return int(lab.requests(host).get("changes", 0))


@pytest.mark.parametrize("where", sorted(UNUSABLE))
@pytest.mark.parametrize("command", sorted(CHANGES))
def test_change_is_refused_when_the_audit_log_cannot_be_written(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    running_lab: Lab,
    command: str,
    where: str,
) -> None:
    _reach(running_lab, MED01, monkeypatch)
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(UNUSABLE[where](tmp_path)))
    before = running_lab.server(MED01).services["RTCMEDSRV"].status
    sent_before = running_lab.requests(MED01).get("requests", 0)
    result = run_cli(capsys, *CHANGES[command])
    assert result.code == 2, result.err
    assert "cannot write the audit log" in result.err and "nothing was sent" in result.err
    assert "Traceback" not in result.err
    assert running_lab.requests(MED01).get("requests", 0) == sent_before
    assert running_lab.server(MED01).services["RTCMEDSRV"].status == before


@pytest.mark.parametrize("where", sorted(UNUSABLE))
def test_reads_go_on_with_one_warning(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    running_lab: Lab,
    where: str,
) -> None:
    from ocsps import audit

    audit._warned.clear()
    _reach(running_lab, MED01, monkeypatch)
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(UNUSABLE[where](tmp_path)))
    result = run_cli(capsys, "status", "--host", MED01, "-p", "sfb2015", "--json")
    assert result.code == 0, result.err
    assert result.json()["hosts"][0]["host"] == MED01
    if where != "disk-full":  # /dev/full accepts the open; only a write shows it is full
        assert result.err.count("audit log") == 1, result.err


def test_change_is_recorded_before_it_is_sent(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, running_lab: Lab
) -> None:
    _reach(running_lab, MED01, monkeypatch)
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(log))
    seen: list[int] = []

    from ocsps.remote import session

    real_run = session.ServerSession._run

    def spy(self: session.ServerSession, rendered: object, timeout: float | None) -> object:
        if getattr(rendered, "changes_state", False):
            seen.append(len(log.read_text(encoding="utf-8").splitlines()))
        return real_run(self, rendered, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(session.ServerSession, "_run", spy)
    result = run_cli(capsys, *CHANGES["start"])
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["outcome"] == "starting" and lines[0]["parameters"]["hosts"] == [MED01]
    assert all(count >= 1 for count in seen), "every change found its intent record already written"


@pytest.mark.parametrize("where", sorted(UNUSABLE))
def test_deactivate_run_refuses_with_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    plan = tmp_path / "plan.json"
    planned = run_cli(capsys, "deactivate", "plan", "--computer", OCS01, "--all", "--lab", "-o", str(plan))
    assert planned.code == 0, planned.err
    acks = ",".join(item["id"] for item in json.loads(plan.read_text(encoding="utf-8"))["plan"]["checklist"])
    (tmp_path / "broken").mkdir()
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(UNUSABLE[where](tmp_path / "broken")))
    result = run_cli(capsys, "deactivate", "run", "--plan", str(plan), "--ack", acks, "--lab")
    assert result.code == 2, result.err
    assert "ocsps: error: cannot write the audit log" in result.err, result.err
    assert "nothing was sent" in result.err and "Traceback" not in result.err
