"""The width of a read (status, check): --parallel, then OCSPS_PARALLEL, then the profile, then default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ocsps.operations.fleet as fleet
from ocsps.cli.fanout import DEFAULT_READ_PARALLEL
from ocsps.operations.fleet import DEFAULT_PARALLEL
from tests.cli_helpers import run_cli

CONFIG = """
[default]
parallel = {default}

[profiles.fe]
host = "fe01.contoso.com"
product = "sfb2019"
{profile}
"""


@pytest.fixture
def widths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every width run_parallel is asked for; no host is contacted (each host's work returns nothing)."""
    seen: list[int] = []
    real = fleet.run_parallel

    def recording(hosts: list[str], work: Any, *, parallel: int = DEFAULT_PARALLEL, **kwargs: Any) -> Any:
        seen.append(parallel)
        return real(hosts, lambda host, cancel: [], parallel=parallel, **kwargs)

    monkeypatch.setattr(fleet, "run_parallel", recording)
    monkeypatch.delenv("OCSPS_PARALLEL", raising=False)
    monkeypatch.delenv("OCSPS_PROFILE", raising=False)
    return seen


@pytest.mark.parametrize(
    ("flag", "env", "profile", "default", "expected"),
    [
        (None, None, None, None, DEFAULT_READ_PARALLEL),
        (None, None, None, 12, 12),
        (None, None, 7, 12, 7),
        (None, "5", 7, 12, 5),
        ("3", "5", 7, 12, 3),
        ("1", None, None, None, 1),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["check", "archiving-queue"]])
def test_width_precedence(
    widths: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    flag: str | None,
    env: str | None,
    profile: int | None,
    default: int | None,
    expected: int,
) -> None:
    config = tmp_path / "config.toml"
    text = CONFIG.format(
        default=default if default is not None else 16, profile=f"parallel = {profile}" if profile else ""
    )
    if default is None:
        text = text.replace("parallel = 16\n", "")
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    if env is not None:
        monkeypatch.setenv("OCSPS_PARALLEL", env)
    args = [*command, "--profile", "fe", "--json", *(["--parallel", flag] if flag else [])]
    result = run_cli(capsys, *args)
    assert widths == [expected], result.err


def test_lab_reads_the_environment(
    widths: list[int], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OCSPS_PARALLEL", "9")
    result = run_cli(capsys, "status", "--lab", "--json")
    assert result.code == 0, result.err
    assert widths == [9]


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("env", "0", "OCSPS_PARALLEL: must be 1-256 hosts at once, got 0"),
        ("env", "many", "OCSPS_PARALLEL: expected a whole number, got 'many'"),
        ("env", "257", "OCSPS_PARALLEL: must be 1-256"),
        ("profile", "0", "parallel: must be 1-256 hosts at once, got 0"),
        ("profile", '"8"', "parallel: expected int, got str '8'"),
    ],
)
def test_bad_width_is_refused_before_anything_is_sent(
    widths: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    value: str,
    message: str,
) -> None:
    config = tmp_path / "config.toml"
    profile = f"parallel = {value}" if where == "profile" else ""
    config.write_text(CONFIG.format(default=16, profile=profile), encoding="utf-8")
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    if where == "env":
        monkeypatch.setenv("OCSPS_PARALLEL", value)
    result = run_cli(capsys, "status", "--profile", "fe", "--json")
    assert result.code == 2
    assert message in result.err
    assert widths == []
