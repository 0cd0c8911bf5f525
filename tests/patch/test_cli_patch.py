"""``ocsps patch server`` as a user runs it: bad input sends nothing, --what-if sends nothing, a lab run
ends with a stated state, an audit trail and a record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.cli_helpers import run_cli
from tests.conftest import DATA, ROOT

INSTALLER = "C:\\Updates\\SkypeServerUpdateInstaller.exe"
TOPOLOGY = str(DATA / "patch" / "cli-no-restart.toml")


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    return path


def _args(*extra: str) -> list[str]:
    return [
        "patch",
        "server",
        "--lab",
        "--lab-topology",
        TOPOLOGY,
        "--host",
        "med01.contoso.com",
        "--installer",
        INSTALLER,
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "--expect-version is required"),
        (["--expect-version", "6.0.9319.619", "--reboot", "maybe"], "--reboot takes auto or never"),
        (["--expect-version", "6.0.9319.619", "--change-id", "CHG 1; rm"], "--change-id: a change id takes"),
        (["--expect-version", "6.0.9319.619", "--host", "med02.contoso.com"], "exactly one --host"),
    ],
    ids=["no-version", "reboot", "change-id", "two-hosts"],
)
def test_bad_input_exits_2_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path, extra: list[str], expected: str
) -> None:
    result = run_cli(capsys, *_args(*extra))
    assert result.code == 2
    assert expected in result.err
    assert not audit_log.exists()


def test_what_if_prints_the_steps_and_scripts_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    result = run_cli(capsys, *_args("--expect-version", "6.0.9319.619", "--what-if", "--json"))
    assert result.code == 0, result.err
    doc = result.json()
    assert [s["name"] for s in doc["plan"]["steps"]][3:5] == ["install", "reboot"]
    actions = [s["action"] for s in doc["scripts"]]
    assert {"patch-state", "patch-set-startup", "patch-install", "patch-restart"} <= set(actions)
    install = next(s for s in doc["scripts"] if s["action"] == "patch-install")
    assert install["parameters"]["Switches"] == ["/silentmode"]
    assert INSTALLER not in install["script"]  # bound as a parameter, never in the text
    assert not audit_log.exists()


def test_lab_run_patches_and_records(capsys: pytest.CaptureFixture[str], audit_log: Path) -> None:
    result = run_cli(capsys, *_args("--expect-version", "6.0.9319.619", "--change-id", "CHG-1042", "--json"))
    assert result.code == 0, result.err
    doc = result.json()
    schema = json.loads((ROOT / "docs" / "schemas" / "patch-server.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema).validate(doc)
    assert doc["status"] == "done" and doc["exit_code"] == 0
    assert doc["left_disabled"] == [] and doc["change_id"] == "CHG-1042"
    assert "no service left Disabled by this run" in doc["statement"]
    assert {c["version"] for c in doc["final"]["components"]} == {"6.0.9319.619"}
    record = json.loads(Path(doc["record"]).read_text(encoding="utf-8"))
    assert record["format"] == "ocsps-patch-server/1" and record["simulation"] is True
    lines = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    actions = [line["action"] for line in lines]
    assert actions[0] == "patch server med01.contoso.com"
    assert {line["change_id"] for line in lines} == {"CHG-1042"}
    assert actions.count("patch-set-startup") == 2 and "patch-install" in actions
    assert "patch-restart" not in actions  # exit 0, nothing pending: no restart


def test_options_are_refused_before_any_connection_setting_is_resolved(
    capsys: pytest.CaptureFixture[str], audit_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config file that does not exist: the bad option is reported first, before connection settings are
    resolved (which, at a terminal, would ask for a password)."""
    monkeypatch.setenv("OCSPS_CONFIG", str(audit_log.parent / "no-config.toml"))
    result = run_cli(
        capsys,
        "patch",
        "server",
        "--host",
        "med01.contoso.com",
        "--product",
        "sfb2015",
        "--installer",
        INSTALLER,
    )
    assert result.code == 2 and "--expect-version is required" in result.err


def _saved_run(expect_version: str, done: list[str]) -> None:
    from ocsps.catalog import load_catalog
    from ocsps.patch import PatchRecord, PatchStatus, default_options, plan_patch, save_record, state_path

    plan = plan_patch(
        "med01.contoso.com", load_catalog().product("sfb2015"), INSTALLER, default_options(expect_version)
    )
    record = PatchRecord(plan, status=PatchStatus.INTERRUPTED, done=done, simulation=True)
    save_record(state_path("med01.contoso.com", simulation=True), record)


@pytest.mark.parametrize(
    ("saved", "extra", "expected"),
    [
        (None, ["--rerun-install"], "--rerun-install only applies with --resume"),
        (None, ["--resume"], "there is nothing to resume"),
        ("6.0.9319.600", ["--resume"], "expect-version 6.0.9319.600 (saved) vs 6.0.9319.619"),
        ("6.0.9319.619", [], "an unfinished patch run of med01.contoso.com is saved"),
        ("6.0.9319.619", ["--resume", "--what-if"], "does not combine with --resume"),
    ],
    ids=["rerun-alone", "nothing-saved", "other-version", "unfinished", "what-if"],
)
def test_resume_is_refused_when_the_record_does_not_match(
    capsys: pytest.CaptureFixture[str], audit_log: Path, saved: str | None, extra: list[str], expected: str
) -> None:
    if saved is not None:
        _saved_run(saved, ["preflight", "out-of-service", "hold"])
    result = run_cli(capsys, *_args("--expect-version", "6.0.9319.619", *extra))
    assert result.code == 2, result.err
    assert expected in result.err
    assert not audit_log.exists()


def test_a_resumed_lab_run_continues_from_the_record(
    capsys: pytest.CaptureFixture[str], audit_log: Path
) -> None:
    """A run interrupted before anything was done resumes from its record: the run count goes on and the
    resumed run patches the server, every step read from the server as it goes."""
    _saved_run("6.0.9319.619", [])
    result = run_cli(capsys, *_args("--expect-version", "6.0.9319.619", "--resume", "--json"))
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["status"] == "done" and doc["runs"] == 1
    assert any(h["message"] == "resuming: done before: nothing; at step preflight" for h in doc["history"])
    assert doc["done"] == ["preflight", "out-of-service", "hold", "install", "verify", "back-in-service"]
    assert doc["left_disabled"] == []
