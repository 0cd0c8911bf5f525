"""Role deactivation against the lab, through the library and the ``ocsps`` command line.

The CLI runs reach one long-lived lab (so that a second command sees what the first one changed) through
OCSPS_* connection variables, as an administrator's environment would.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsps.deactivation.plan import PLAN_KIND, check_plan, load_lcscmd_facts, plan_deactivation, plan_document
from ocsps.deactivation.run import Journal, RunReportDocument, read_state, run_plan
from ocsps.jsonout import to_builtins
from ocsps.lab.runtime import Lab
from ocsps.plans.sealed import load_plan, save_plan, seal
from ocsps.remote.connector import lab_settings
from tests.cli_helpers import CliResult, run_cli
from tests.conftest import DATA, lab_server

OCS01 = "ocs01.contoso.com"
TOPOLOGIES = DATA / "deactivation_plans" / "topologies"
SE_ORDER = ["av-conferencing", "web-conferencing", "web-components", "front-end", "archiving-cdr"]


def _connect_env(lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fqdn: str = OCS01) -> None:
    """Every ocsps command reaches ``fqdn`` of ``lab``, whatever host name it is given."""
    settings = lab_settings(lab, fqdn)
    env = {
        "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
        "OCSPS_PORT": str(lab.port),
        "OCSPS_SSL": "false",
        "OCSPS_PATH": settings.path,
        "OCSPS_AUTH": "ntlm",
        "OCSPS_USERNAME": lab.username,
        "OCSPS_PASSWORD": lab.password,
        "OCSPS_PRODUCT": "ocs2007r2",
        "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        "OCSPS_CONFIG": str(_empty_config(tmp_path)),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    if not path.exists():
        path.write_text("", encoding="utf-8")
    return path


@pytest.fixture
def fails_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """ocs01 whose Web Components deactivation fails once, reachable from the CLI."""
    with Lab(topology_file=TOPOLOGIES / "se_fails_once.toml") as lab:
        _connect_env(lab, monkeypatch, tmp_path)
        yield lab


@pytest.fixture
def reachable(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The default lab, reachable from the CLI."""
    _connect_env(lab, monkeypatch, tmp_path)
    return lab


def _sent(lab: Lab) -> int:
    return lab.requests(OCS01).get("requests", 0)


def _deactivation_logs(lab: Lab) -> list[str]:
    """The roles LcsCmd was asked to deactivate, in the order the lab received them."""
    return [p for p in lab.server(OCS01).files if "-state-" not in p]


def _plan_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[Path, CliResult]:
    path = tmp_path / "plan.json"
    result = run_cli(capsys, "deactivate", "plan", "--computer", OCS01, *args, "-o", str(path), "--json")
    return path, result


def _run(capsys: pytest.CaptureFixture[str], plan: Path, *args: str) -> CliResult:
    """Run a plan with every item of its checklist acknowledged (read from the plan file)."""
    items = json.loads(plan.read_text(encoding="utf-8"))["plan"]["checklist"]
    acks = ",".join(item["id"] for item in items)
    return run_cli(capsys, "deactivate", "run", "--plan", str(plan), "--ack", acks, "--json", *args)


# ---------------------------------------------------------------------------------------------- library


def test_full_standard_edition_deactivation_in_order(lab: Lab) -> None:
    facts = load_lcscmd_facts()
    sim = lab.server(OCS01)
    with lab_server(lab, OCS01) as server:
        reading = read_state(server, OCS01, facts, lcscmd_path=facts.path)
        assert reading.activated is not None and sorted(reading.activated) == sorted(SE_ORDER)
        plan = plan_deactivation(OCS01, product="ocs2007r2", all_roles=True, reading=reading)
        assert [s.role for s in plan.deactivations] == SE_ORDER
        sha = seal(PLAN_KIND, plan_document(plan))["sha256"]
        report = run_plan(server, plan, plan_sha256=sha, facts=facts, acknowledged=("backups",))
    assert report.ok and report.exit_code == 0, report
    assert [r.state for r in report.steps] == ["ok"] * 6
    assert [(c.name, c.state) for c in report.checks] == [
        ("computer", "ok"),
        ("lcscmd", "ok"),
        ("services", "ok"),
        ("roles", "ok"),
        ("sessions", "not-checkable"),
    ]
    assert (
        report.lcscmd_path == facts.path
        and to_builtins(RunReportDocument.of(report))["lcscmd_path"] == facts.path
    )
    assert sim.activated_roles == []
    assert all(s.status == "Stopped" for s in sim.services.values())
    logs = _deactivation_logs(lab)
    assert [next(r for r in SE_ORDER if f"-{r}-s" in p) for p in logs] == SE_ORDER
    for result in report.steps[1:]:
        assert result.outcome is not None and result.outcome.log_text  # the raw log is kept
        assert result.log_path in sim.files


def test_runner_refuses_a_plan_that_does_not_match_the_server(lab: Lab) -> None:
    """The plan names the Standard Edition roles only; the server also runs Archiving and CDR."""
    facts = load_lcscmd_facts()
    plan = plan_deactivation(OCS01, product="ocs2007r2", roles=SE_ORDER[:4])
    with lab_server(lab, OCS01) as server, pytest.raises(Exception) as caught:
        run_plan(server, plan, plan_sha256="x", facts=facts)
    assert "activated but not in the plan's remaining steps: archiving-cdr" in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    assert lab.server(OCS01).activated_roles != [] and _deactivation_logs(lab) == []


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_full_run_with_lab(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSPS_CONFIG", str(_empty_config(tmp_path)))
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    path, planned = _plan_file(capsys, tmp_path, "--all", "--lab")
    assert planned.code == 0, planned.err
    assert planned.json()["roles"] == SE_ORDER and planned.json()["roles_source"] == "live"
    preview = _run(capsys, path, "--lab", "--what-if")
    assert preview.code == 0, preview.err
    previewed = [s["sha256"] for s in preview.json()["steps"]]
    result = _run(capsys, path, "--lab")
    assert result.code == 0, result.err
    doc = result.json()
    assert [s["state"] for s in doc["steps"]] == ["ok"] * 6
    assert [s.get("role") for s in doc["steps"][1:]] == SE_ORDER
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["resume_from"] is None
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    audit = [a for a in audit if a["outcome"] != "starting"]  # intent records precede each change
    steps = [a for a in audit if a["action"] == "deactivate-step"]
    assert [a["parameters"]["step"] for a in steps] == [1, 2, 3, 4, 5, 6]
    assert all(a["outcome"] == "ok" for a in steps)
    audited = [a["parameters"]["step_sha256"] for a in steps]
    assert audited == previewed == [s["sha256"] for s in doc["steps"]]  # what was shown is what ran
    assert audited == list(planned.json()["step_sha256"].values())  # and what the plan listed
    assert len(set(audited)) == 6
    assert any(a["action"] == "deactivate" and a["parameters"]["LogPath"].endswith("Z.log") for a in audit)
    assert (
        audit[0]["action"] == "deactivate-acknowledged"
        and "compliance-records" in audit[0]["parameters"]["items"]
    )


def test_failed_step_stops_the_run_and_resume_finishes_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fails_once: Lab
) -> None:
    sim = fails_once.server(OCS01)
    path, planned = _plan_file(capsys, tmp_path, "--all", "--host", OCS01)
    assert planned.code == 0, planned.err
    first = _run(capsys, path)
    assert first.code == 1, first.err
    doc = first.json()
    assert [s["state"] for s in doc["steps"]] == ["ok", "ok", "ok", "failed"]
    failed = doc["steps"][3]
    assert failed["role"] == "web-components" and doc["stopped_at"] == 4 and doc["resume_from"] == 4
    assert "1 of 2 tasks did not report Success" in failed["detail"]
    assert "Access is denied" in failed["lcscmd"]["log_text"]
    assert "resume with: ocsps deactivate run --plan" in first.err and "--resume-from 4" in first.err
    assert "task 'Remove Web Components Server Active Directory objects': Failure" in first.err
    assert sorted(sim.activated_roles) == ["archiving-cdr", "front-end", "web-components"]

    again = _run(capsys, path)  # progress on record: never silently from the top
    assert again.code == 2 and "continue with --resume-from 4" in again.err
    before = len(_deactivation_logs(fails_once))
    skipping = _run(capsys, path, "--resume-from", "5")  # step 4 is not done: refused, nothing changed
    assert skipping.code == 2
    assert "step 4 (Deactivate Web Components Server) is not recorded as successful" in skipping.err
    assert len(_deactivation_logs(fails_once)) == before
    assert sorted(sim.activated_roles) == ["archiving-cdr", "front-end", "web-components"]

    hint = first.err.split("then resume with: ", 1)[1].splitlines()[0]
    assert first.json()["resume_command"] == hint
    printed = shlex.split(hint)
    assert printed[:3] == ["ocsps", "deactivate", "run"] and "--ack" in printed
    resumed = run_cli(capsys, *printed[1:], "--json")  # the hint, run as printed
    assert resumed.code == 0, resumed.err
    doc = resumed.json()
    assert [(s["step"], s["state"]) for s in doc["steps"]] == [(4, "ok"), (5, "ok"), (6, "ok")]
    assert sim.activated_roles == []
    journal = json.loads(path.with_name(path.name + ".journal.json").read_text())
    assert [journal["steps"][str(n)]["state"] for n in range(1, 7)] == ["ok"] * 6


def test_out_of_order_plan_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, reachable: Lab
) -> None:
    path, planned = _plan_file(capsys, tmp_path, "--roles", ",".join(SE_ORDER))
    assert planned.code == 0, planned.err
    plan = load_plan(path, PLAN_KIND)
    steps = plan["steps"]
    steps[3], steps[4] = steps[4], steps[3]  # Front End before Web Components
    for number, step in enumerate(steps, 1):
        step["step"] = number
    plan["roles"] = [s["role"] for s in steps if s.get("role")]
    save_plan(path, PLAN_KIND, plan)  # sealed again: a well-formed plan that breaks the order
    result = _run(capsys, path)
    assert result.code == 2
    assert (
        "out of order: step 4 deactivates Front End Server (Standard Edition) while Web Components"
        in result.err
    )
    assert _sent(reachable) == 0


def test_edited_plan_is_refused_unless_reapproved(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, reachable: Lab
) -> None:
    path, planned = _plan_file(capsys, tmp_path, "--roles", ",".join(SE_ORDER))
    assert planned.code == 0, planned.err
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["plan"]["change"]["reason"] = "edited after approval"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = _run(capsys, path)
    assert result.code == 2 and "changed after it was written (sha256 mismatch)" in result.err
    assert _sent(reachable) == 0
    shown = _run(capsys, path, "--reapprove", "--what-if")  # accepted once re-approved: checked again
    assert shown.code == 0, shown.err
    assert "# ocsps:action=deactivate" in shown.err
    doc["plan"]["steps"][2]["arguments"][0] = "/Server:ocs02.contoso.com"
    path.write_text(json.dumps(doc), encoding="utf-8")
    edited = _run(capsys, path, "--reapprove")
    assert edited.code == 2 and "step 3: the LcsCmd arguments /Server:ocs02.contoso.com" in edited.err
    assert _sent(reachable) == 0


def test_checklist_must_be_acknowledged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, reachable: Lab
) -> None:
    path, _ = _plan_file(capsys, tmp_path, "--roles", ",".join(SE_ORDER))
    result = run_cli(capsys, "deactivate", "run", "--plan", str(path), "--ack", "backups,off-peak")
    assert result.code == 2
    assert "missing: all-roles-listed, user-notice, sessions-drained" in result.err
    assert "--ack all-roles-listed,backups" in result.err
    unknown = run_cli(capsys, "deactivate", "run", "--plan", str(path), "--ack", "certificates-exported")
    assert unknown.code == 2 and "'certificates-exported' is not on this plan's checklist" in unknown.err
    assert _sent(reachable) == 0


def test_partial_set_is_refused_naming_what_is_missing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, reachable: Lab
) -> None:
    path, result = _plan_file(capsys, tmp_path, "--roles", "front-end,web-components", "--host", OCS01)
    assert result.code == 2
    assert "leaves out av-conferencing, web-conferencing, archiving-cdr" in result.err
    assert not path.exists()
    assert reachable.server(OCS01).activated_roles  # a live read changed nothing


def test_active_sessions_stop_the_run_before_any_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Lab(topology_file=TOPOLOGIES / "se_busy.toml") as lab:
        _connect_env(lab, monkeypatch, tmp_path)
        path, planned = _plan_file(capsys, tmp_path, "--all", "--host", OCS01)
        assert planned.code == 0, planned.err
        result = run_cli(
            capsys,
            "deactivate",
            "run",
            "--plan",
            str(path),
            "--ack",
            "backups,user-notice,off-peak,sessions-drained,conference-directories",
        )
        assert result.code == 1
        assert "sessions are still active: RtcSrv (Active Registered Endpoints=12)" in result.err
        sim = lab.server(OCS01)
        assert sim.services["RtcSrv"].status == "Running"
        assert len(sim.activated_roles) == 4 and _deactivation_logs(lab) == []


def _script_problems(text: str) -> list[str]:
    from ocsps.catalog import load_catalog
    from ocsps.powershell import syntax

    catalog = load_catalog()
    product = catalog.product("ocs2007r2")
    found = [f"{f.grammar}: {f.kind} {f.snippet!r}" for f in syntax.parse(text)]
    found += [n.construct for n in syntax.newer_constructs(text, product.powershell)]
    for call in syntax.commands(text):
        if call.native or call.invocation:
            continue
        accepted = catalog.cmdlet_parameters(product, call.name)
        if accepted is None:
            found.append(f"{call.name} unknown")
        else:
            found += [f"{call.name} -{p}" for p in call.parameters if p.casefold() not in accepted]
    return found


def _step_order(text: str) -> list[str]:
    """The script's step labels, without the step sha256 each deactivation step carries."""
    steps = [line.split("'", 2)[1] for line in text.splitlines() if line.strip().startswith("$ocspsStep = '")]
    return [re.sub(r", step sha256 [0-9a-f]{64}\]$", "]", s) for s in steps if s != "preflight"]


def test_change_board_script_enforces_order_and_stop_on_failure(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocsps.powershell.changeboard import verify_script

    monkeypatch.setenv("OCSPS_CONFIG", str(_empty_config(tmp_path)))
    out = tmp_path / "deactivate.ps1"
    result = run_cli(
        capsys,
        "render",
        "deactivate",
        "--computer",
        OCS01,
        "--roles",
        "front-end,web-components",
        "--roles",
        "web-conferencing,av-conferencing",
        "--change-id",
        "CHG-7",
        "-o",
        str(out),
    )
    assert result.code == 0, result.err
    text = out.read_text(encoding="utf-8-sig")
    assert verify_script(text).ok
    assert _script_problems(text) == []
    assert _step_order(text) == [
        "Confirm the precautions",
        "Stop every Office Communications Server service [plan step 1]",
        "Deactivate A/V Conferencing Server [plan step 2]",
        "Deactivate Web Conferencing Server [plan step 3]",
        "Deactivate Web Components Server [plan step 4]",
        "Deactivate Front End Server (Standard Edition) [plan step 5]",
    ]
    calls = [line for line in text.splitlines() if line.startswith("    } -")]
    assert len(calls) == 6  # the checklist, the stop, four deactivations: each its own script block
    assert all(line.endswith(" -RequireSuccess") for line in calls[2:])  # each stops unless all tasks succeed
    assert "if ($RequireSuccess -and $ocspsRan -and -not $ocspsVerdict) {" in text
    assert "'/Role:AVMCU', '/Action:Deactivate', '/XML')" in text
    # LCSCmd.exe is looked for in the first step, before the step that stops every service
    missing = text.index("LCSCmd.exe was not found at $LcsCmdPath; nothing was stopped")
    assert missing < text.index("$ocspsStep = 'Stop every Office Communications Server service")
    assert "# Change:   CHG-7" in text

    path, planned = _plan_file(
        capsys, tmp_path, "--roles", "front-end,web-components,web-conferencing,av-conferencing"
    )
    assert planned.code == 0, planned.err
    again = tmp_path / "from-plan.ps1"
    rendered = run_cli(
        capsys, "deactivate", "render", "--plan", str(path), "--from-step", "4", "-o", str(again)
    )
    assert rendered.code == 0, rendered.err
    tail = again.read_text(encoding="utf-8-sig")
    assert _step_order(tail)[1:] == [
        "Deactivate Web Components Server [plan step 4]",
        "Deactivate Front End Server (Standard Edition) [plan step 5]",
    ]
    assert _script_problems(tail) == []


def test_roles_listing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSPS_CONFIG", str(_empty_config(tmp_path)))
    result = run_cli(capsys, "deactivate", "roles", "--product", "ocs2007", "--json")
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = result.json()["roles"]
    assert [r["role"] for r in rows][:4] == SE_ORDER[:4]
    assert "uc-applications" not in [r["role"] for r in rows]


def test_plan_json_is_checked_on_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSPS_CONFIG", str(_empty_config(tmp_path)))
    path, result = _plan_file(capsys, tmp_path, "--roles", "mediation", "--product", "ocs2007")
    assert result.code == 0, result.err
    plan = load_plan(path, PLAN_KIND)
    from ocsps.deactivation.plan import DeactivationPlan

    checked = check_plan(DeactivationPlan.from_json(plan))
    assert checked.steps[1].arguments == ("/Mediation:ocs01.contoso.com", "/Action:Deactivate", "/XML")
    journal = Journal.open(tmp_path / "none.json", "abc", OCS01)
    assert journal.done_through == 0


def test_lost_reply_is_unknown_and_the_server_decides_on_resume(lab: Lab, tmp_path: Path) -> None:
    """The connection drops after LcsCmd ran: the step is 'unknown', never retried blindly; on resume the
    server's own state shows the role gone, and the run carries on from the next step."""
    facts = load_lcscmd_facts()
    plan = plan_deactivation(OCS01, product="ocs2007r2", roles=SE_ORDER)
    journal = Journal.open(tmp_path / "journal.json", "sha", OCS01)

    def arm(result: Any) -> None:
        if result.step == 2:  # the reply to step 3's LcsCmd call is lost after the server ran it
            lab.faults(OCS01).drop_next("Receive", after_processing=True)

    with lab_server(lab, OCS01) as server:
        first = run_plan(server, plan, plan_sha256="sha", facts=facts, journal=journal, on_step=arm)
    assert [r.state for r in first.steps] == ["ok", "ok", "unknown"]
    assert first.exit_code == 1 and first.stopped_at == 3
    assert "web-conferencing" not in lab.server(OCS01).activated_roles  # it did run on the server

    journal = Journal.open(tmp_path / "journal.json", "sha", OCS01)
    assert journal.done_through == 2
    with lab_server(lab, OCS01) as server:
        second = run_plan(server, plan, plan_sha256="sha", facts=facts, journal=journal, start=4)
    assert second.ok, second
    assert [(r.step, r.state) for r in second.steps] == [(3, "ok"), (4, "ok"), (5, "ok"), (6, "ok")]
    assert second.steps[0].evidence == "LcsCmd's state check no longer shows the role as activated"
    assert lab.server(OCS01).activated_roles == []
