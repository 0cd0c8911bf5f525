"""``ocsps.sfb.patch`` end to end: ``ansible-playbook`` patches the lab's med01, rehearsed first, then again.

Skipped (with the reason) where ansible-core is not installed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsps.lab.runtime import Lab
from ocsps.remote.connector import lab_settings
from tests.conftest import DATA
from tests.reliability.labkit import Recorder

pytest.importorskip("ansible_test", reason="ansible-core is not installed (pip install -e '.[ansible]')")

from tests.ansible.test_playbook import COLLECTIONS, MED, _play

TOPOLOGY = DATA / "patch" / "cli-no-restart.toml"


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[tuple[Lab, Recorder, dict[str, str]]]:
    with Lab(topology_file=TOPOLOGY) as lab:
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


def test_patch_rehearsed_then_done_then_current(
    lab_env: tuple[Lab, Recorder, dict[str, str]], tmp_path: Path
) -> None:
    lab, recorder, env = lab_env
    results = _play("patch_server.yml", env, tmp_path / "results.json")

    rehearsal = results["rehearsal"]
    assert rehearsal["changed"] is True and "status" not in rehearsal
    assert rehearsal["plan"]["host"] == MED  # type: ignore[index]

    patched = results["patched"]
    assert patched["changed"] is True and patched["status"] == "done", patched.get("msg")
    assert patched["versions_after"] == {
        name: "6.0.9319.619"
        for name in patched["versions_before"]  # type: ignore[union-attr]
    }
    assert "no service left Disabled by this run" in str(patched["statement"])
    assert patched["diff"]["after"]["versions"] == patched["versions_after"]  # type: ignore[index]
    record = json.loads(Path(str(patched["record_path"])).read_text(encoding="utf-8"))
    assert record["change_id"] == "CHG-1042" and record["status"] == "done"

    again = results["again"]
    assert again["changed"] is False and again["status"] == "current"

    # one install reached the server: none from check mode, none from the run that found it current
    assert recorder.times(MED, "patch-install") == 1
    server = lab.server(MED)
    assert server.find("RTCMEDSRV").status == "Running"
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {line["change_id"] for line in audit} == {"CHG-1042"}
