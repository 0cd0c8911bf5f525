"""Ctrl-C during a drain: polling stops, each host's last known state is printed, exit code 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli_helpers import default_sigint
from tests.conftest import DATA


def test_ctrl_c_during_drain_reports_last_state(tmp_path: Path) -> None:
    env = {**os.environ, "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"), "COLUMNS": "160"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ocsps",
            "drain",
            "--service",
            "RTCMEDSRV",
            "--lab",
            "--lab-topology",
            str(DATA / "lab_topologies" / "stuck-mediation.toml"),
            "--timeout",
            "120s",
            "--poll",
            "0.2s",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for _ in range(20):  # a few progress lines at most before the drain is under way
            line = proc.stderr.readline()
            seen.append(line)
            if "draining (Paused)" in line or not line:
                break
        assert "draining (Paused)" in seen[-1], seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in out and "Paused" in out
    assert "last known" in err
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"action": "drain-watch"' in audit, "the drain request (and its watch) is audited"
