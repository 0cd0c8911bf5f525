"""The Ansible collection end to end: ``ansible-playbook`` runs the modules against the lab.

Skipped (with the reason) where ansible-core is not installed: ``pip install -e '.[ansible]'`` brings it,
and CI installs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsps.lab.runtime import Lab
from ocsps.remote.connector import lab_settings
from tests.conftest import ROOT
from tests.reliability.labkit import Recorder

# ansible-core ships `ansible_test`; "ansible" itself would resolve to this very test package.
pytest.importorskip("ansible_test", reason="ansible-core is not installed (pip install -e '.[ansible]')")

COLLECTIONS = ROOT / "ansible"
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
MED = "med01.contoso.com"


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[tuple[Lab, Recorder, dict[str, str]]]:
    """A running lab, a recorder of what it executed, and the environment that reaches its med01."""
    with Lab() as lab:
        recorder = Recorder().wrap(lab)
        settings = lab_settings(lab, MED)
        assert settings.password is not None
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OCSPS_", "ANSIBLE_")) and key != "PYTHONPATH"
        }
        env.update(
            OCSPS_CONNECT_ADDRESS=str(settings.connect_address),
            OCSPS_PORT=str(settings.port),
            OCSPS_PATH=settings.path,
            OCSPS_SSL="false",
            OCSPS_AUTH=settings.auth,
            OCSPS_USERNAME=str(settings.username),
            OCSPS_PASSWORD=settings.password.reveal(),
            OCSPS_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
            ANSIBLE_HOME=str(tmp_path / "ansible-home"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            HOME=str(tmp_path),
        )
        yield lab, recorder, env


def _play(playbook: str, env: dict[str, str], results: Path, *extra: str) -> dict[str, dict[str, object]]:
    """Run the playbook; return the task results it wrote to ``results``."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ansible",
            "playbook",
            str(PLAYBOOKS / playbook),
            "-e",
            f"results_file={results}",
            *extra,
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    doc: dict[str, dict[str, object]] = json.loads(results.read_text(encoding="utf-8"))
    return doc


def _render(tmp_path: Path, *words: str) -> str:
    """What ``ocsps render`` writes for the same request (in a child, as an operator would run it)."""
    out = tmp_path / "cli.ps1"
    done = subprocess.run(
        [sys.executable, "-m", "ocsps", "render", *words, "-o", str(out)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8-sig")


def test_drain_rehearsed_in_check_mode_then_done_then_idempotent(
    lab_env: tuple[Lab, Recorder, dict[str, str]], tmp_path: Path
) -> None:
    lab, recorder, env = lab_env
    results = _play("drain_mediation.yml", env, tmp_path / "results.json")

    info = results["info"]
    assert info["changed"] is False
    (service,) = info["services"]  # type: ignore[misc]
    assert service["name"] == "RTCMEDSRV" and service["status"] == "Running"

    rehearsal = results["rehearsal"]
    assert rehearsal["changed"] is True
    assert "Stop-CsWindowsService" in str(rehearsal["script"])
    # what a run sends: the graceful stop and its watch in one pipeline (default poll 15s, deadline 15m)
    assert rehearsal["parameters"]["Name"] == "RTCMEDSRV"  # type: ignore[index]
    assert rehearsal["parameters"]["PollMilliseconds"] == 15_000  # type: ignore[index]
    assert rehearsal["parameters"]["DeadlineMilliseconds"] == 900_000  # type: ignore[index]

    drained = results["drained"]
    assert drained["changed"] is True
    assert drained["after"]["status"] == "Stopped"  # type: ignore[index]
    assert drained["diff"]["before"]["status"] == "Running"  # type: ignore[index]

    again = results["again"]
    assert again["changed"] is False and again["after"]["status"] == "Stopped"  # type: ignore[index]

    # The server saw exactly one graceful stop: none from check mode, none from the second run.
    assert recorder.times(MED, "drain-watch") == 1
    assert lab.server(MED).find("RTCMEDSRV").status == "Stopped"
    # The drain's audit records carry the task's change ticket, as --change-id does on the command line.
    log = Path(env["OCSPS_AUDIT_LOG"]).read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines()]
    assert [line.get("change_id") for line in lines if line["action"] == "drain-watch"] == ["CHG-2040"]


def test_preflight_then_a_change_board_script_written_once(
    lab_env: tuple[Lab, Recorder, dict[str, str]], tmp_path: Path
) -> None:
    from ocsps.powershell.changeboard import verify_script

    _, recorder, env = lab_env
    script, restart = tmp_path / "med10-drain.ps1", tmp_path / "edge01-restart.ps1"
    results = _play(
        "preflight_and_script.yml",
        env,
        tmp_path / "results.json",
        "-e",
        f"script_file={script}",
        "-e",
        f"restart_file={restart}",
    )

    preflight = results["preflight"]
    assert preflight["changed"] is False and preflight["status"] == "pass"
    assert [c["check"] for c in preflight["checks"]] == ["drain-ready"]  # type: ignore[union-attr]

    assert results["written"]["changed"] is True and results["rewritten"]["changed"] is False
    text = script.read_text(encoding="utf-8-sig")
    assert "# Target:   med10.contoso.com" in text and "# Change:   CHG-1042" in text
    assert verify_script(text).ok
    assert results["written"]["body_sha256"] in text
    # The playbook gets what the command line writes, byte for byte.
    cli = ["-p", "lync2010", "--computer", "med10.contoso.com", "--change-id", "CHG-1042"]
    cli += ["--reason", "Cumulative update"]
    assert text == _render(tmp_path, "drain", "-s", "RTCMEDSRV", *cli)

    # A restart is the board that stops the dependent first and starts it last, not a bare restart cmdlet.
    board = restart.read_text(encoding="utf-8-sig")
    steps = [line.split(";")[0] for line in board.splitlines() if line.startswith("# Step ")]
    assert steps == [
        "# Step 1: stop Skype for Business Server Audio/Video Authentication",
        "# Step 2: stop Skype for Business Server Audio/Video Edge",
        "# Step 3: start Skype for Business Server Audio/Video Edge",
        "# Step 4: start Skype for Business Server Audio/Video Authentication",
    ]
    assert results["restart"]["body_sha256s"] == list(verify_script(board).body_hashes)
    cli = ["-p", "sfb2019", "--param", "Force=true", "--computer", "edge01.contoso.com"]
    cli += ["--change-id", "CHG-1042", "--reason", "Certificate renewal"]
    assert board == _render(tmp_path, "restart", "-s", "RTCMEDIARELAY", *cli)
    assert recorder.times(MED, "drain") == recorder.times(MED, "drain-watch") == 0


def test_stop_refuses_cutting_calls_and_restart_brings_dependents_back(
    lab_env: tuple[Lab, Recorder, dict[str, str]], tmp_path: Path
) -> None:
    lab, recorder, env = lab_env
    results = _play("service_states.yml", env, tmp_path / "results.json")

    refused = results["refused"]
    assert refused["failed"] is True and refused["changed"] is False
    assert "carries 10 active sessions" in str(refused["msg"]) and "cut_sessions: true" in str(refused["msg"])
    assert results["stopped"]["changed"] is True
    assert results["stopped"]["after"]["status"] == "Stopped"  # type: ignore[index]
    assert results["started"]["changed"] is True and results["started"]["note"] == ""
    assert recorder.times(MED, "stop") == 1, "the refused stop sent nothing"

    rehearsal = [s["label"] for s in results["rehearsed_restart"]["steps"]]  # type: ignore[union-attr]
    restarted = results["restarted"]
    report = restarted["restart"]
    assert restarted["changed"] is True and report["ok"] is True  # type: ignore[index]
    done = [f"{s['do']} {s['key']}" for s in report["steps"]]  # type: ignore[index]
    assert done == ["stop RTCMRAUTH", "stop RTCMEDIARELAY", "start RTCMEDIARELAY", "start RTCMRAUTH"]
    assert len(rehearsal) == len(done)
    edge = lab.server("edge01.contoso.com")
    assert edge.find("RTCMRAUTH").status == edge.find("RTCMEDIARELAY").status == "Running"
    # the stop's audit lines carry the task's ticket; every change was preceded by its intent record
    log = Path(env["OCSPS_AUDIT_LOG"]).read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines()]
    stops = [line.get("change_id") for line in lines if line["action"] == "stop" and line["host"] == MED]
    assert stops == ["CHG-2041"]
    intents = [line["action"] for line in lines if line["outcome"] == "starting"]
    assert intents == ["stop RTCMEDSRV", "stop RTCMEDSRV", "start RTCMEDSRV", "restart RTCMEDIARELAY"]
