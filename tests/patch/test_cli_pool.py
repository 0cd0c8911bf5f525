"""``ocsps patch pool`` as a user runs it: bad input sends nothing, --what-if sends nothing, a lab roll ends
with a stated, verified estate, an audit trail with the change id and one state file; a saved unfinished
roll is not overwritten, and a resume asked something else is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.cli_helpers import run_cli
from tests.conftest import DATA, ROOT

INSTALLER = "C:\\Updates\\LyncServerUpdateInstaller.exe"
TOPOLOGY = str(DATA / "patch" / "pools" / "cli-lync2010.toml")
POOL = "pool10.contoso.com"
VERSION = "4.0.7577.726"


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    return path


def _args(*extra: str) -> list[str]:
    return [
        "patch",
        "pool",
        "--lab",
        "--lab-topology",
        TOPOLOGY,
        "--pool",
        POOL,
        "--installer",
        INSTALLER,
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "--expect-version is required"),
        (["--expect-version", VERSION, "--rerun-install"], "--rerun-install only applies with --resume"),
        (["--expect-version", VERSION, "--resume", "--servers", "fe10a.contoso.com"], "keeps its saved plan"),
        (["--expect-version", VERSION, "--change-id", "CHG 1; x"], "--change-id: a change id takes"),
        (["--expect-version", VERSION, "--host", "fe10a.contoso.com"], "members come from the topology"),
        (["--expect-version", VERSION, "--sql-server", "bad name!"], "--sql-server"),
        (["--expect-version", VERSION, "--test-user", "sip:a@contoso.com"], "add --post-checks"),
        (["--expect-version", VERSION, "--post-checks", "--test-user", "not an address"], "--test-user"),
    ],
    ids=[
        "no-version",
        "rerun-without-resume",
        "resume-with-servers",
        "change-id",
        "host-with-lab",
        "sql",
        "test-user-alone",
        "test-user-bad",
    ],
)
def test_bad_input_exits_2_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path, extra: list[str], expected: str
) -> None:
    result = run_cli(capsys, *_args(*extra))
    assert result.code == 2, result.err
    assert expected in result.err
    assert not audit_log.exists()


def test_what_if_prints_the_roll_and_each_servers_steps_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    result = run_cli(capsys, *_args("--expect-version", VERSION, "--what-if", "--json"))
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["plan"]["method"] == "drain" and doc["plan"]["readiness"] == "members"
    assert [u["servers"] for u in doc["plan"]["units"]] == [[f"fe10{x}.contoso.com"] for x in "abc"]
    assert doc["server_steps"] == ["preflight", "hold", "install", "reboot", "verify", "restore"]
    kinds = [s["kind"] for s in doc["steps"]]
    assert "fabric" not in kinds and kinds.count("step") == 3
    state = next(s for s in doc["scripts"] if s["action"] == "patch-state")
    assert "Win32_Product" in state["script"] and "@(Get-CsServerPatchVersion)" not in state["script"]
    assert not audit_log.exists()


def test_a_lab_roll_patches_every_member_with_one_journal_and_the_change_id(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    result = run_cli(
        capsys, *_args("--expect-version", VERSION, "--stable-for", "1s", "--change-id", "CHG-2041", "--json")
    )
    assert result.code == 0, result.err
    doc = result.json()
    schema = json.loads((ROOT / "docs" / "schemas" / "patch-pool.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema).validate(doc)
    assert doc["status"] == "done" and doc["change_id"] == "CHG-2041"
    assert all(s["at_version"] and s["in_service"] for s in doc["servers"])
    assert doc["left_disabled"] == {} and "no service left Disabled" in doc["statement"]
    journal = json.loads(Path(doc["state_file"]).read_text(encoding="utf-8"))
    assert journal["format"] == "ocsps-pool-roll/1" and journal["simulation"] is True
    assert sorted(journal["work"]) == [f"fe10{x}.contoso.com" for x in "abc"]
    assert journal["request"]["done"] is True
    assert not list(audit_log.parent.glob("patch-server-*.json"))  # no second journal
    lines = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["action"] == f"patch pool {POOL}"
    assert {line["change_id"] for line in lines} == {"CHG-2041"}
    installs = [line["host"] for line in lines if line["action"] == "patch-install"]
    assert installs == [f"fe10{x}.contoso.com" for x in "abc"]
    # Resumed, a finished roll sends nothing more, and its result is what the servers say now: a --lab
    # command serves a new lab, at the old version, and the last reading says so.
    again = run_cli(capsys, *_args("--expect-version", VERSION, "--resume", "--json"))
    assert again.code == 1, again.err
    redo = again.json()
    assert redo["status"] == "stopped" and "the last reading does not confirm" in redo["reason"]
    assert redo["statement"].startswith(f"0 of 3 member(s) of {POOL} at {VERSION}")
    after = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    assert [line for line in after[len(lines) :] if line["action"] == "patch-install"] == []


def test_an_unfinished_roll_is_not_overwritten_and_a_resume_must_ask_the_same(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    from ocsps.catalog import load_catalog
    from ocsps.patch import default_options
    from ocsps.patch.pool import plan_pool_patch
    from ocsps.pool import save_state, state_path

    members = [f"fe10{x}.contoso.com" for x in "abc"]
    state, _ = plan_pool_patch(
        POOL,
        load_catalog().product("lync2010"),
        members,
        INSTALLER,
        default_options(VERSION),
        simulation=True,
    )
    save_state(state_path(POOL, simulation=True), state)
    fresh = run_cli(capsys, *_args("--expect-version", VERSION))
    assert fresh.code == 2 and "an unfinished roll of pool10.contoso.com is saved" in fresh.err
    other = run_cli(capsys, *_args("--expect-version", "4.0.7577.999", "--resume"))
    assert other.code == 2 and "was asked something else" in other.err
    assert not audit_log.exists()


@pytest.mark.parametrize(
    ("users", "ok"),
    [
        (["sip:watcher1@contoso.com", "sip:watcher2@contoso.com"], True),
        (
            [],
            False,
        ),  # the lab pool has no health-monitoring test users: the transactions fail, and so does the roll
    ],
    ids=["named-users", "no-test-users"],
)
def test_post_checks_run_the_synthetic_transactions_after_the_roll(
    capsys: pytest.CaptureFixture[str], audit_log: Path, users: list[str], ok: bool
) -> None:
    named = [arg for user in users for arg in ("--test-user", user)]
    result = run_cli(
        capsys, *_args("--expect-version", VERSION, "--stable-for", "1s", "--post-checks", *named, "--json")
    )
    doc = result.json()
    checks = {c["name"]: c["ok"] for c in doc["post_checks"]}
    assert checks == {"synthetic Registration": ok, "synthetic IM": ok}, doc["post_checks"]
    assert (result.code, doc["status"] == "done") == ((0, True) if ok else (1, False)), result.err
    assert all(s["at_version"] and s["in_service"] for s in doc["servers"])  # the roll itself completed
    lines = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    assert [line["action"] for line in lines].count("patch-install") == 3
    recorded = {
        line["parameters"]["check"]: line["outcome"] for line in lines if line["action"] == "check-synthetic"
    }
    assert recorded == {name: "ok" if passed else "failed" for name, passed in checks.items()}
