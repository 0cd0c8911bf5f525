"""``ocsps.sfb.patch_pool`` end to end: ``ansible-playbook`` rolls the update through a lab pool of three
Lync Server 2010 Front End servers, rehearsed first in check mode, then once more (nothing to do).

Every member of the lab has its own URL path, so the run also proves the per-member connection.
Skipped (with the reason) where ansible-core is not installed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsps.lab.runtime import Lab
from ocsps.remote.connector import lab_settings
from tests.conftest import DATA
from tests.reliability.labkit import Recorder

pytest.importorskip("ansible_test", reason="ansible-core is not installed (pip install -e '.[ansible]')")

from tests.ansible.test_playbook import COLLECTIONS, _play

TOPOLOGY = DATA / "patch" / "pools" / "cli-lync2010.toml"
POOL = "pool10.contoso.com"
VERSION = "4.0.7577.726"


@pytest.fixture
def pool_env(tmp_path: Path) -> Iterator[tuple[Lab, Recorder, list[str], dict[str, str]]]:
    with Lab(topology_file=TOPOLOGY) as lab:
        recorder = Recorder().wrap(lab)
        members = [s.fqdn for s in lab.topology.servers]
        settings = lab_settings(lab, members[0])
        assert settings.password is not None
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OCSPS_", "ANSIBLE_")) and key != "PYTHONPATH"
        }
        env.update(
            OCSPS_CONNECT_ADDRESS=str(settings.connect_address),
            OCSPS_PORT=str(settings.port),
            OCSPS_SSL="false",
            OCSPS_AUTH=settings.auth,
            OCSPS_USERNAME=str(settings.username),
            OCSPS_PASSWORD=settings.password.reveal(),
            OCSPS_PRODUCT="lync2010",
            OCSPS_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
            ANSIBLE_HOME=str(tmp_path / "ansible-home"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            HOME=str(tmp_path),
        )
        yield lab, recorder, members, env


def test_patch_pool_rehearsed_then_rolled_then_current(
    pool_env: tuple[Lab, Recorder, list[str], dict[str, str]], tmp_path: Path
) -> None:
    lab, recorder, members, env = pool_env
    extra = {
        "pool_members": members,
        "member_overrides": {m: {"path": lab.connection(m)["path"]} for m in members},
    }
    results: dict[str, dict[str, Any]] = _play(
        "patch_pool.yml", env, tmp_path / "results.json", "-e", json.dumps(extra)
    )

    rehearsal = results["rehearsal"]
    assert rehearsal["changed"] is True and "status" not in rehearsal, rehearsal.get("msg")
    assert [u["servers"] for u in rehearsal["plan"]["units"]] == [[m] for m in members]
    assert rehearsal["server_steps"] == ["preflight", "hold", "install", "reboot", "verify", "restore"]
    assert [s["kind"] for s in rehearsal["roll_steps"]].count("step") == 3

    patched = results["patched"]
    assert patched["changed"] is True and patched["status"] == "done", patched.get("msg")
    doc = patched["result"]
    assert doc["status"] == "done" and doc["change_id"] == "CHG-2041"
    assert all(s["at_version"] and s["in_service"] for s in doc["servers"])
    assert "no service left Disabled" in patched["statement"]
    assert {m: r["phase"] for m, r in patched["reached"].items()} == dict.fromkeys(members, "returned")
    assert set(patched["versions_before"]) == set(members)
    assert all(VERSION not in v.values() for v in patched["versions_before"].values())
    journal = json.loads(Path(patched["state_file"]).read_text(encoding="utf-8"))
    assert journal["request"]["done"] is True and sorted(journal["work"]) == members

    again = results["again"]
    assert again["changed"] is False and again["status"] == "current", again.get("msg")
    before = patched["versions_before"]
    assert again["versions_before"] == {m: dict.fromkeys(before[m], VERSION) for m in members}

    # exactly one install reached each member: none from check mode, none from the run that found it current
    assert [recorder.times(m, "patch-install") for m in members] == [1, 1, 1]
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert audit[0]["action"] == f"patch pool {POOL}"
    assert {line["change_id"] for line in audit} == {"CHG-2041"}
    assert [line["host"] for line in audit if line["action"] == "patch-install"] == members
