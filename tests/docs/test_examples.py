"""The example programs the documentation includes run, against the lab, and do what the pages say."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology
from ocsps.remote.connector import lab_settings
from tests.conftest import ROOT
from tests.docs.helpers import DOCS, clean_env

EXAMPLES = DOCS / "examples"
# The four tasks a library user writes, each shorter than it took before these helpers existed.
TASKS = {"drain_mediation.py": 31, "estate_status.py": 24, "restart_plan.py": 33, "pool_roll.py": 30}

ESTATE = """
[[servers]]
fqdn = "med01.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.5
[servers.activity.RTCMEDSRV]
"Inbound Calls" = 2

[[servers]]
fqdn = "med02.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
stuck_drain = ["RTCMEDSRV"]
[servers.activity.RTCMEDSRV]
"Inbound Calls" = 1
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(parse_topology(ESTATE, source="examples estate")) as running:
        yield running


def _env(tmp_path: Path, lab: Lab, fqdn: str) -> dict[str, str]:
    settings = lab_settings(lab, fqdn)
    return clean_env(
        tmp_path,
        OCSPS_CONNECT_ADDRESS=str(settings.connect_address),
        OCSPS_PORT=str(settings.port),
        OCSPS_PATH=settings.path,
        OCSPS_SSL="false",
        OCSPS_AUTH=settings.auth,
        OCSPS_USERNAME=str(settings.username),
        OCSPS_PASSWORD=lab.password,
        OCSPS_PRODUCT="sfb2015",
    )


def _run(example: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / example), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_drain_report_drains_and_prints_the_report(lab: Lab, tmp_path: Path) -> None:
    result = _run(
        "drain_report.py", "med01.contoso.com", "RTCMEDSRV", "--poll", "0.2s",
        env=_env(tmp_path, lab, "med01.contoso.com"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["phase"] == "stopped" and report["ok"] is True
    assert [e["id"] for e in report["events"]] == [25049, 25050, 25003]
    assert lab.server("med01.contoso.com").services["RTCMEDSRV"].status == "Stopped"


def test_drain_report_exit_codes(lab: Lab, tmp_path: Path) -> None:
    stuck = _run(
        "drain_report.py", "med02.contoso.com", "RTCMEDSRV", "--timeout", "1s", "--poll", "0.2s",
        env=_env(tmp_path, lab, "med02.contoso.com"),
    )  # fmt: skip
    assert stuck.returncode == 4, stuck.stderr
    assert json.loads(stuck.stdout)["phase"] == "deadline"
    unknown = _run(
        "drain_report.py", "med01.contoso.com", "RTCNOPE", env=_env(tmp_path, lab, "med01.contoso.com")
    )
    assert unknown.returncode == 2 and "unknown service 'RTCNOPE'" in unknown.stderr
    env = dict(_env(tmp_path, lab, "med01.contoso.com"), OCSPS_PASSWORD="wrong")
    refused = _run("drain_report.py", "med01.contoso.com", "RTCMEDSRV", env=env)
    assert refused.returncode == 3 and refused.stderr.startswith("error: med01.contoso.com:")


def test_drain_with_cli_reports_each_host(lab: Lab, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "med01.contoso.com")
    result = _run("drain_with_cli.py", "RTCMEDSRV", "--host", "med01.contoso.com", "--poll", "0.2s", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["med01.contoso.com: ok (stopped)"]
    again = _run("drain_with_cli.py", "RTCMEDSRV", "--host", "med01.contoso.com", env=env)
    assert again.returncode == 0
    assert again.stdout.splitlines() == ["med01.contoso.com: ok (stopped) already stopped: nothing to drain"]
    bad = _run("drain_with_cli.py", "RTCMEDSRV", "--host", "med01.contoso.com", "--timeout", "soon", env=env)
    assert bad.returncode == 2 and bad.stdout == "" and "cannot read duration" in bad.stderr


def test_jea_cmdlets_lists_what_the_scripts_call(tmp_path: Path) -> None:
    result = _run("jea_cmdlets.py", "sfb2019", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert names == sorted(set(names))
    assert {
        "Get-CsWindowsService",
        "Stop-CsWindowsService",
        "Start-CsWindowsService",
        "Import-Module",
    } <= set(names)
    refused = _run("jea_cmdlets.py", "ocs2007r2", env=clean_env(tmp_path))
    assert refused.returncode == 2


@pytest.mark.parametrize("page", ["howto/automation.md", "howto/connections-jea-kerberos-ca.md"])
def test_pages_include_the_examples_they_describe(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    for name in ("drain_with_cli.py", "drain_report.py", "jea_cmdlets.py", *TASKS):
        if name in text:
            assert f'--8<-- "docs/examples/{name}"' in text, f"{page} names {name} without including it"
    if page == "howto/automation.md":
        assert all(f'--8<-- "docs/examples/{name}"' in text for name in TASKS)



@pytest.mark.parametrize(("example", "before"), sorted(TASKS.items()))
def test_task_examples_are_short_and_use_the_library_only(example: str, before: int) -> None:
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    assert len(text.splitlines()) < before
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    allowed = {"ocsps", "_lab", "sys", "threading", "pathlib"}
    assert all(line.split()[1].split(".")[0] in allowed for line in imports)
    assert "ocsps.cli" not in text and "ocsps.lab" not in text  # the lab plumbing lives in _lab.py only


def test_drain_mediation_skips_the_server_whose_preflight_fails(tmp_path: Path) -> None:
    result = _run("drain_mediation.py", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "med01.contoso.com ok stopped",
        "med02.contoso.com ok stopped",
        "med03.contoso.com skipped LAB\\admin is not a member of Performance Monitor Users",
    ]


def test_estate_status_alerts_on_what_is_not_running(tmp_path: Path) -> None:
    result = _run("estate_status.py", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ALERT edge01.contoso.com: RTCMEDIARELAY Stopped"]


def test_restart_plan_runs_exactly_the_approved_plan(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    planned = _run("restart_plan.py", str(tmp_path), env=env)
    assert planned.returncode == 0, planned.stderr
    board = (tmp_path / "plan.ps1").read_text(encoding="utf-8")
    assert "CHG-1042" in board and "Office Communications Server Front End" in board
    ran = _run("restart_plan.py", str(tmp_path), "--approved", env=env)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "stop Office Communications Server Front End done"
    assert lines[-1] == "completed down: []"
    plan = tmp_path / "plan.json"
    plan.write_text(plan.read_text(encoding="utf-8").replace('"stop"', '"start"'), encoding="utf-8")
    refused = _run("restart_plan.py", str(tmp_path), "--approved", env=env)
    assert refused.returncode != 0 and "sha256 mismatch" in refused.stderr
    assert "stop Office" not in refused.stdout


def test_pool_roll_rolls_every_front_end(tmp_path: Path) -> None:
    state = tmp_path / "roll.json"
    result = _run("pool_roll.py", str(state), env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "done every server returned"
    for host in ("fe01", "fe02", "fe03"):
        assert "maintenance step done: patched" in result.stdout
        assert f"{host}.contoso.com is back in the pool" in result.stdout
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["status"] == "done" and set(saved["servers"].values()) == {"returned"}
