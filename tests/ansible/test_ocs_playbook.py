"""``restart_plan`` and ``deactivate`` end to end: ``ansible-playbook`` against the lab's OCS 2007 R2 server.

Skipped, with the reason, where ansible-core is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocsps.deactivation.plan import PLAN_KIND, plan_deactivation, plan_document
from ocsps.lab.runtime import Lab
from ocsps.plans.sealed import save_plan
from ocsps.remote.connector import lab_settings
from tests.conftest import ROOT
from tests.reliability.labkit import Recorder

# ansible-core ships `ansible_test`; "ansible" itself would resolve to this very test package.
pytest.importorskip("ansible_test", reason="ansible-core is not installed (pip install -e '.[ansible]')")

OCS01 = "ocs01.contoso.com"
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "restart_and_deactivate.yml"
SE_ROLES = ["av-conferencing", "web-conferencing", "web-components", "front-end", "archiving-cdr"]


def test_restart_plan_and_deactivation_from_a_playbook(tmp_path: Path) -> None:
    plan_file = tmp_path / "ocs01-deactivate.json"
    save_plan(
        plan_file, PLAN_KIND, plan_document(plan_deactivation(OCS01, product="ocs2007r2", roles=SE_ROLES))
    )
    results_file = tmp_path / "results.json"
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    with Lab() as lab:
        recorder = Recorder().wrap(lab)
        settings = lab_settings(lab, OCS01)
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
            OCSPS_CONFIG=str(config),
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / "ansible"),
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
            ANSIBLE_HOME=str(tmp_path / "ansible-home"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            HOME=str(tmp_path),
        )
        extra = {"plan_file": str(plan_file), "results_file": str(results_file)}
        done = subprocess.run(
            [sys.executable, "-m", "ansible", "playbook", str(PLAYBOOK), "-e", json.dumps(extra)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        sim = lab.server(OCS01)
        roles_left = list(sim.activated_roles)
    results: dict[str, Any] = json.loads(results_file.read_text(encoding="utf-8"))

    planned = results["planned"]
    assert planned["changed"] is False and "report" not in planned
    services = [s["name"] for s in planned["plan"]["services"]]
    assert services, "a changed routing port needs restarts"
    assert results["rehearsed"]["changed"] is True and "report" not in results["rehearsed"]
    restarted = results["restarted"]
    assert restarted["changed"] is True and restarted["report"]["ok"] is True
    assert restarted["report"]["down"] == []
    # The audit log holds every state-changing call in order: before the deactivation's first record,
    # exactly the stops of one run (none from the plan alone, none from check mode).
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    first_deactivation = next(i for i, r in enumerate(audit) if r.get("action") == "deactivate-acknowledged")
    stops = [s for s in restarted["report"]["steps"] if s["do"] == "stop" and s["outcome"] == "done"]
    assert stops and [r.get("action") for r in audit[:first_deactivation]].count("stop") == len(stops)
    assert recorder.times(OCS01, "stop") >= len(stops)

    rehearsal = results["deactivation_rehearsal"]
    assert rehearsal["changed"] is True and rehearsal["computer"] == OCS01
    assert [s["step"] for s in rehearsal["steps"]] == list(range(1, len(SE_ROLES) + 2))
    assert rehearsal["missing_acknowledgements"], "the plan has a checklist"

    refused = results["unacknowledged"]
    assert refused["failed"] is True and "acknowledge the checklist first" in refused["msg"]

    deactivated = results["deactivated"]
    assert deactivated["changed"] is True and deactivated["report"]["ok"] is True
    assert roles_left == []
    again = results["again"]
    assert again["changed"] is False and "every step" in again["msg"]
