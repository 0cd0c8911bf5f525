"""Ctrl-C during ``ocsps drain --json``: the host at work is reported ``interrupted``, not ``failed``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.cli_helpers import default_sigint
from tests.conftest import DATA, ROOT

pytestmark = pytest.mark.timeout(120)


def test_ctrl_c_reports_the_host_interrupted_in_json(tmp_path: Path) -> None:
    env = {**os.environ, "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"), "COLUMNS": "160"}
    command = [sys.executable, "-m", "ocsps", "drain", "--service", "RTCMEDSRV", "--lab", "--json"]
    topology = str(DATA / "lab_topologies" / "stuck-mediation.toml")
    proc = subprocess.Popen(
        [*command, "--lab-topology", topology, "--timeout", "120s", "--poll", "0.2s"],
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
        for _ in range(20):
            line = proc.stderr.readline()
            seen.append(line)
            if "draining (Paused)" in line or not line:
                break
        assert "draining (Paused)" in seen[-1], seen
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    document = json.loads(out)
    (host,) = document["hosts"]
    assert host["host"] == "med01.contoso.com" and host["state"] == "interrupted"
    assert host["result"]["phase"] == "interrupted" and host["result"]["status"] == "Paused"
    assert document["exit_code"] == 130 and set(host) >= {"host", "state", "step", "result"}
    schema = json.loads((ROOT / "docs" / "schemas" / "drain.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
