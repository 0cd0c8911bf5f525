"""``ocsps report`` is an offline command: it reads files and imports nothing of the remote stack.

The probe is the offline-command test's own; the report is checked here rather than in that table
because its "generated" stamp differs between two runs by design.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ocsps.cli.app import COMMANDS
from tests.cli.test_offline_commands import PROBE, UNUSED
from tests.report.cases import CASES


def test_report_imports_only_what_it_uses(tmp_path: Path) -> None:
    assert COMMANDS["report"].offline
    args = ["report", "--change-id", "CHG-1042", "--audit-log", str(CASES / "patch-verified" / "audit.jsonl")]
    env = {**os.environ, "OCSPS_CACHE_DIR": str(tmp_path / "cache")}
    for extra in ([], ["--html", str(tmp_path / "r.html")], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-c", PROBE.format(unused=UNUSED), *args, *extra],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        assert "\nCODE:0\n" in done.stderr, done.stderr[-800:]
        lines = dict(
            line.split(":", 1) for line in done.stderr.splitlines() if line[:5] in ("IMPOR", "BUILT")
        )
        assert [m for m in lines["IMPORTED"].split(",") if m in UNUSED] == [], done.stderr[-800:]
        assert lines["BUILT"] == "ocsps.cli.report_cmd"
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert json.loads(done.stdout)["change_id"] == "CHG-1042"  # the last run: --json
