"""The pool modules end to end: ``ansible-playbook`` against a lab pool of four Front End servers.

Every member of the lab has its own URL path, so these runs also prove the per-member connection
(``member_overrides``). Skipped, with the reason, where ansible-core is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsps.lab.runtime import Lab
from ocsps.lab.topology import load_topology
from ocsps.remote.connector import lab_settings
from tests.conftest import DATA, ROOT

# ansible-core ships `ansible_test`; "ansible" itself would resolve to this very test package.
pytest.importorskip("ansible_test", reason="ansible-core is not installed (pip install -e '.[ansible]')")

COLLECTIONS = ROOT / "ansible"
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
EXAMPLE = ROOT / "ansible" / "examples" / "rolling_front_end_patch.yml"
POOL = "pool15.contoso.com"


@pytest.fixture
def pool_lab(tmp_path: Path) -> Iterator[tuple[Lab, list[str], dict[str, str], dict[str, Any]]]:
    """A lab pool of four, its members, the environment that reaches them and the extra variables."""
    with Lab(load_topology(DATA / "pool" / "sfb2015-four.toml")) as lab:
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
            OCSPS_PRODUCT="sfb2015",
            OCSPS_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
            ANSIBLE_HOME=str(tmp_path / "ansible-home"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            HOME=str(tmp_path),
        )
        extra = {
            "pool_members": members,
            "member_overrides": {m: {"path": lab.connection(m)["path"]} for m in members},
        }
        yield lab, members, env, extra


def _play(playbook: Path, env: dict[str, str], extra: dict[str, Any], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ansible", "playbook", str(playbook), "-e", json.dumps(extra), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_take_out_until_quorum_refuses_then_back_and_ready(
    pool_lab: tuple[Lab, list[str], dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    lab, members, env, extra = pool_lab
    a, b, c, _ = members
    results_file = tmp_path / "results.json"
    _play(PLAYBOOKS / "pool_quorum.yml", env, {**extra, "results_file": str(results_file)})
    results: dict[str, Any] = json.loads(results_file.read_text(encoding="utf-8"))

    info = results["info"]
    assert info["changed"] is False and info["problems"] == []
    assert [m["condition"] for m in info["members"]] == ["up"] * 4
    assert info["quorum"]["can_lose"] == 2

    rehearsal = results["rehearsal"]
    assert rehearsal["changed"] is True and rehearsal["dry_run"] is True
    assert rehearsal["calls"][0]["action"] == "pool-failover"
    assert rehearsal["diff"] == {"before": {"condition": "up"}, "after": {"condition": "down"}}

    assert [r["changed"] for r in results["out"]["results"]] == [True, True]
    assert results["again"]["changed"] is False

    refused = results["refused"]
    assert refused["failed"] is True and refused["error"] == "PoolRefused"
    assert f"{c} stays in {POOL}" in refused["msg"]
    assert results["at_quorum"]["quorum"]["down"] == [a, b]

    assert [r["changed"] for r in results["back"]["results"]] == [True, True]
    assert results["ready"]["state"] == "Ready" and results["ready"]["changed"] is False

    sim = lab.topology.pools[POOL]
    # one failover per member, none from check mode, the repeated take-out or the refused one
    assert sim.operations == [f"failover {a}", f"failover {b}", f"failback {a}", f"failback {b}"]


def test_rolling_patch_example_keeps_one_member_out_at_a_time(
    pool_lab: tuple[Lab, list[str], dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    lab, members, env, extra = pool_lab
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[frontends]\n" + "".join(f"{m} ansible_connection=local\n" for m in members))
    settings = {
        **extra,
        "pool_fqdn": POOL,
        "stable_for": "0.3s",
        "ready_poll": "0.1s",
        "ocsps_auth": env["OCSPS_AUTH"],
        "ocsps_username": env["OCSPS_USERNAME"],
        "patch_tasks": str(PLAYBOOKS / "patch_while_out.yml"),
    }
    sim = lab.topology.pools[POOL]

    rehearsal = _play(EXAMPLE, env, settings, "-i", str(inventory), "--check")
    assert sim.operations == [], "check mode sends no failover"
    assert "failed=0" in rehearsal

    done = _play(EXAMPLE, env, settings, "-i", str(inventory))
    assert done.count("This server and no other is out of the pool") == len(members)
    assert sim.operations == [f"{op} {m}" for m in members for op in ("failover", "failback")]
    assert not sim.failed_over
