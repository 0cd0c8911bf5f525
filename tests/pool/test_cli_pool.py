"""``ocsps pool status | maintain`` end to end: the CLI against lab pools over real PSRP.

Timings are shrunk with the command's own flags (--stable-for, --busy-interval, --poll), so a roll that
waits twenty minutes between units in production takes a fraction of a second here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocsps.powershell.changeboard import verify_script
from tests.cli_helpers import CliResult, run_cli
from tests.conftest import DATA

POOL_DATA = DATA / "pool"
FAST = ["--stable-for", "0.05s", "--ready-poll", "0.05s", "--busy-interval", "0.05s", "--poll", "0.05s"]
STEP = ["--step-script", str(POOL_DATA / "patch-step.ps1")]


@pytest.fixture(autouse=True)
def _audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    return path


def _maintain(capsys: pytest.CaptureFixture[str], topology: str, pool: str, *extra: str) -> CliResult:
    return run_cli(
        capsys,
        "pool",
        "maintain",
        "--pool",
        pool,
        "--lab",
        "--lab-topology",
        str(POOL_DATA / topology),
        "--json",
        *extra,
    )


def _events(doc: dict[str, Any], event: str) -> list[str]:
    return [h.get("server", "") for h in doc["history"] if h["event"] == event]


def test_status_of_the_default_lab_pool(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "pool", "status", "--pool", "pool01.contoso.com", "--lab", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["command"] == "pool status" and doc["readiness"]["state"] == "Ready"
    assert [(m["host"], m["condition"], m["upgrade_domain"]) for m in doc["members"]] == [
        ("fe01.contoso.com", "up", "UpgradeDomain1"),
        ("fe02.contoso.com", "up", "UpgradeDomain2"),
        ("fe03.contoso.com", "up", "UpgradeDomain3"),
    ]
    assert doc["quorum"]["must_run"] == 2 and doc["quorum"]["can_lose"] == 1
    assert doc["fabric"]["healthy"] is True and doc["problems"] == []
    assert all(s["status"] == "Running" for s in doc["members"][0]["services"])


def test_status_of_a_pool_at_quorum_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        capsys,
        "pool",
        "status",
        "--pool",
        "pool01.contoso.com",
        "--lab",
        "--lab-topology",
        str(POOL_DATA / "sfb2015-at-quorum.toml"),
    )
    assert result.code == 1
    assert "InsufficientActiveFrontEnds" in result.out and "at quorum" in result.out
    assert "fe03.contoso.com" in result.out


def test_lync2013_pool_rolled_by_upgrade_domain(capsys: pytest.CaptureFixture[str], _audit: Path) -> None:
    result = _maintain(capsys, "lync2013-three-domains.toml", "pool13.contoso.com", *FAST, *STEP)
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["status"] == "done"
    assert [u["name"] for u in doc["plan"]["units"]] == ["UpgradeDomain1", "UpgradeDomain2", "UpgradeDomain3"]
    names = [f"fe13{c}.contoso.com" for c in "abcdef"]
    assert _events(doc, "taking-down") == names and _events(doc, "returned") == names
    gates = [h["message"] for h in doc["history"] if h["event"] == "readiness" and "held" in h["message"]]
    assert [g.split(":")[0] for g in gates] == [
        "before the first unit",
        "before unit 2 of 3 (UpgradeDomain2)",
        "before unit 3 of 3 (UpgradeDomain3)",
        "after the last unit",
    ]
    audit = [json.loads(line) for line in _audit.read_text().splitlines()]
    audit = [a for a in audit if a["outcome"] != "starting"]  # intent records precede each change
    assert [a["action"] for a in audit if a["host"] == names[0]] == [
        "pool-drain-server",
        "pool-step",
        "pool-start-server",
    ]
    assert all(a["outcome"] == "ok" for a in audit)
    assert "StepScript" not in audit[1]["parameters"] and audit[1]["parameters"]["StepScriptLines"] == 2
    assert Path(doc["state_file"]).name == "pool-roll-lab-pool13.contoso.com.json"
    assert json.loads(Path(doc["state_file"]).read_text())["status"] == "done"


def test_sfb2015_pool_rolled_one_server_at_a_time(capsys: pytest.CaptureFixture[str], _audit: Path) -> None:
    result = _maintain(capsys, "sfb2015-four.toml", "pool15.contoso.com", *FAST, *STEP, "--wait-time", "30m")
    assert result.code == 0, result.err
    doc = result.json()
    names = [f"fe15{c}.contoso.com" for c in "abcd"]
    assert doc["status"] == "done" and [u["servers"] for u in doc["plan"]["units"]] == [[n] for n in names]
    audit = [json.loads(line) for line in _audit.read_text().splitlines()]
    audit = [a for a in audit if a["outcome"] != "starting"]  # intent records precede each change
    assert [(a["host"], a["action"]) for a in audit] == [
        (n, action) for n in names for action in ("pool-failover", "pool-step", "pool-failback")
    ]
    assert audit[0]["parameters"] == {"ComputerName": names[0], "WaitTimeSeconds": 1800}


def test_busy_three_times_stops_and_resume_goes_on_from_there(capsys: pytest.CaptureFixture[str]) -> None:
    first = _maintain(capsys, "sfb2015-busy.toml", "pool15.contoso.com", *FAST, *STEP)
    assert first.code == 1, first.err
    doc = first.json()
    assert doc["status"] == "stopped"
    assert "before unit 2 of 4" in doc["reason"] and "'Busy' (3 of 3 times)" in doc["reason"]
    assert (
        doc["servers"]["fe15a.contoso.com"] == "returned" and doc["servers"]["fe15b.contoso.com"] == "pending"
    )
    assert "--resume" in first.err

    refused = _maintain(capsys, "sfb2015-busy.toml", "pool15.contoso.com", *STEP)
    assert refused.code == 2 and "unfinished roll" in refused.err

    # The resumed run starts a fresh lab: fe15a is not taken out again; the pool turns Busy again after fe15b.
    second = _maintain(capsys, "sfb2015-busy.toml", "pool15.contoso.com", "--resume")
    assert second.code == 1, second.err
    again = second.json()
    after = again["history"][[h["event"] for h in again["history"]].index("resume") :]
    assert [h.get("server") for h in after if h["event"] == "taking-down"] == ["fe15b.contoso.com"]
    assert "before unit 3 of 4" in again["reason"]


def test_a_pool_at_quorum_refuses_to_take_a_server_down(capsys: pytest.CaptureFixture[str]) -> None:
    result = _maintain(capsys, "sfb2015-at-quorum.toml", "pool01.contoso.com", *FAST, *STEP)
    assert result.code == 1
    doc = result.json()
    assert doc["status"] == "stopped" and "InsufficientActiveFrontEnds" in doc["reason"]
    assert _events(doc, "taking-down") == [] and set(doc["servers"].values()) == {"pending"}


def test_missing_replicas_refuse_the_roll(capsys: pytest.CaptureFixture[str]) -> None:
    result = _maintain(capsys, "sfb2015-missing-replicas.toml", "pool15.contoso.com", *FAST, *STEP)
    assert result.code == 1
    assert "missing replicas" in result.json()["reason"] and "QuorumLossRecovery" in result.json()["reason"]


def test_pause_without_a_terminal_leaves_the_roll_paused(capsys: pytest.CaptureFixture[str]) -> None:
    result = _maintain(capsys, "sfb2015-four.toml", "pool15.contoso.com", *FAST, "--step", "pause")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["status"] == "paused" and doc["servers"]["fe15a.contoso.com"] == "awaiting-operator"
    assert "do its maintenance now" in doc["reason"] and "--resume" in result.err


def test_what_if_prints_the_whole_roll_and_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    result = _maintain(capsys, "lync2013-three-domains.toml", "pool13.contoso.com", "--what-if")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["what_if"] is True
    kinds = [s["kind"] for s in doc["steps"]]
    assert kinds.count("take-down") == 6 and kinds.count("gate") == 4 and kinds[0] == "fabric"
    text = run_cli(capsys, "pool", "maintain", "--pool", "pool01.contoso.com", "--lab", "--what-if", *STEP)
    assert text.code == 0
    assert "nothing is sent" in text.out and "Invoke-CsComputerFailOver" in text.out
    assert "3. fe01.contoso.com: fail over" in text.out


def test_emit_script_for_a_roll_by_hand(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "roll.ps1"
    result = run_cli(
        capsys,
        "pool",
        "maintain",
        "--pool",
        "pool09.contoso.com",
        "--product",
        "sfb2019",
        "--servers",
        "a.contoso.com,b.contoso.com",
        "--servers",
        "c.contoso.com",
        "--emit-script",
        str(out),
        "--change-id",
        "CHG-42",
    )
    assert result.code == 0, result.err
    text = out.read_text(encoding="utf-8-sig")
    assert verify_script(text).ok
    assert text.count("Invoke-CsComputerFailBack -ComputerName") == 3
    assert "Get-CsUpgradeDomainInfo" in text and "CHG-42" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lab", "--what-if", "--force-failover"], "never combine --force-failover with --what-if"),
        (["--lab", "--resume"], "nothing to resume"),
        (["--lab", "--resume", "--stable-for", "1m"], "drop --stable-for"),
        (["--lab", "--step", "reboot"], "--step takes 'pause'"),
        (["--lab", "--step", "pause", "--step-script", "x.ps1"], "not both"),
        (["--lab", "--rerun-step"], "only apply with --resume"),
        (["--lab", "--servers", "fe09.contoso.com", "--what-if"], "fe09.contoso.com is not a member"),
        (["--lab", "--host", "fe01.contoso.com"], "narrow the roll with --servers"),
        (["--product", "sfb2015", "--what-if"], "which servers are in the pool"),
        (["--servers", "a.contoso.com,b.contoso.com", "--what-if"], "pass --product"),
        (["--lab", "--lab-topology", str(POOL_DATA / "sfb2015-four.toml"), "--what-if"], "has no pool"),
        (["--lab", "--stable-for", "soon"], "cannot read duration"),
    ],
)
def test_bad_usage_sends_nothing(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    result = run_cli(capsys, "pool", "maintain", "--pool", "pool01.contoso.com", *args)
    assert result.code == 2, result.err
    assert message in result.err


def test_step_script_that_does_not_parse_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.ps1"
    bad.write_text("if ($x {\n")
    result = run_cli(
        capsys,
        "pool",
        "maintain",
        "--pool",
        "pool01.contoso.com",
        "--lab",
        "--step-script",
        str(bad),
        "--what-if",
    )
    assert result.code == 2 and "does not parse as PowerShell" in result.err


class _Terminal:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answers", "status", "asked"),
    [
        (["", "maybe", "continue", "c", "continue", "CONTINUE"], "done", 4),
        (["continue", "stop"], "paused", 2),
    ],
)
def test_pause_at_a_terminal_asks_the_operator(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answers: list[str],
    status: str,
    asked: int,
) -> None:
    replies = iter(answers)
    monkeypatch.setattr("ocsps.cli.pool_cmd.sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", lambda: next(replies))
    result = _maintain(capsys, "sfb2015-four.toml", "pool15.contoso.com", *FAST, "--step", "pause")
    assert result.code == 0, result.err
    assert result.json()["status"] == status
    assert result.err.count("Type 'continue' when the work is done") == len(answers)
    awaited = [h for h in result.json()["history"] if h["event"] == "awaiting-operator"]
    assert len(awaited) == asked


def test_resume_of_a_real_pool_takes_its_members_from_the_saved_roll(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import contextmanager

    from ocsps.errors import UsageError
    from ocsps.pool import RollState, save_state, state_path
    from tests.pool.fakes import options, sfb_plan

    plan = sfb_plan(3)
    save_state(state_path(plan.pool), RollState(plan, options()))
    seen: list[list[str]] = []

    @contextmanager
    def intercept(opts: object, pool: str, servers: list[str], timeout: float) -> Any:
        seen.append(servers)
        raise UsageError("intercepted before connecting")
        yield

    monkeypatch.setattr("ocsps.cli.pool_cmd._pool_driver", intercept)
    result = run_cli(capsys, "pool", "maintain", "--pool", plan.pool, "--product", "sfb2015", "--resume")
    assert result.code == 2 and "intercepted" in result.err
    assert seen == [list(plan.members)]


def _resume_hint(err: str) -> list[str]:
    import shlex

    (line,) = [line for line in err.splitlines() if "continue with: " in line]
    words = shlex.split(line.split("continue with: ", 1)[1])
    assert words[0] == "ocsps"
    return words[1:]


def test_a_lab_roll_is_kept_apart_and_its_resume_hint_runs_as_printed(
    capsys: pytest.CaptureFixture[str], _audit: Path
) -> None:
    first = _maintain(capsys, "sfb2015-busy.toml", "pool15.contoso.com", *FAST, *STEP)
    assert first.code == 1, first.err
    assert first.json()["state_file"] == str(_audit.parent / "pool-roll-lab-pool15.contoso.com.json")
    saved = json.loads(Path(first.json()["state_file"]).read_text(encoding="utf-8"))
    assert saved["simulation"] is True

    # Without --lab there is no saved roll of that name: a rehearsal never resumes against real servers.
    real = run_cli(capsys, "pool", "maintain", "--pool", "pool15.contoso.com", "-p", "sfb2015", "--resume")
    assert real.code == 2 and "nothing to resume" in real.err

    hint = _resume_hint(first.err)
    assert "--lab" in hint and "--lab-topology" in hint
    resumed = run_cli(capsys, *hint)
    assert resumed.code == 1, resumed.err  # the lab pool turns Busy again after the next server
    assert "before unit 3 of 4" in resumed.err


def test_a_lab_state_file_is_refused_for_real_servers(
    capsys: pytest.CaptureFixture[str], _audit: Path
) -> None:
    first = _maintain(capsys, "sfb2015-busy.toml", "pool15.contoso.com", *FAST, *STEP)
    assert first.code == 1, first.err
    lab_file = Path(first.json()["state_file"])
    lab_file.rename(_audit.parent / "pool-roll-pool15.contoso.com.json")
    result = run_cli(capsys, "pool", "maintain", "--pool", "pool15.contoso.com", "-p", "sfb2015", "--resume")
    assert result.code == 2 and "ran against the lab" in result.err


def test_maintain_help_shows_the_defaults_pools_toml_sets() -> None:
    """Help names each default's value and its key; the test keeps the two in step with the data."""
    import tomllib
    from importlib import resources

    from typer.main import get_command

    from ocsps.cli import app

    defaults = tomllib.loads(
        resources.files("ocsps.catalog").joinpath("data", "pools.toml").read_text(encoding="utf-8")
    )["defaults"]
    command = get_command(app).commands["pool"].commands["maintain"]  # type: ignore[attr-defined]
    helps = {opt: param.help for param in command.params for opt in param.opts if param.help}
    keyed = {
        "--stable-for": "stable_for",
        "--max-busy": "max_busy",
        "--busy-interval": "busy_interval",
        "--ready-poll": "ready_poll",
        "--wait-time": "failover_wait_time",
        "--drain-timeout": "drain_timeout",
        "--poll": "service_poll",
    }
    for option, key in keyed.items():
        assert f"(default {defaults[key]}: pools.toml {key})" in helps[option], option
