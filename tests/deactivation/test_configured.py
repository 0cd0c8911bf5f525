"""The LcsCmd facts every caller runs with, and the preflight options filled from the same config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsps.checks import CheckOptions, complete_options
from ocsps.deactivation.configured import configured_lcscmd_facts, configured_lcscmd_locations
from ocsps.deactivation.facts import load_lcscmd_facts

ELSEWHERE = "D:\\Tools\\LCSCmd.exe"


def _env(tmp_path: Path, text: str) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    return {"OCSPS_CONFIG": str(config)}


def test_the_config_files_corrections_are_applied(tmp_path: Path) -> None:
    env = _env(tmp_path, f"[lcscmd]\npath = '{ELSEWHERE}'\nlog_directory = 'E:\\Logs'\n")
    facts = configured_lcscmd_facts(env)
    assert (facts.path, facts.locations, facts.log_directory) == (ELSEWHERE, (ELSEWHERE,), "E:\\Logs")
    assert configured_lcscmd_locations(env) == (ELSEWHERE,)


def test_without_corrections_the_catalogs_facts_apply(tmp_path: Path) -> None:
    env = _env(tmp_path, "")
    assert configured_lcscmd_facts(env) == load_lcscmd_facts()
    assert configured_lcscmd_locations(env) == ()
    only_logs = _env(tmp_path, "[lcscmd]\nlog_directory = 'E:\\Logs'\n")
    assert configured_lcscmd_locations(only_logs) == ()  # no path named: the known locations


@pytest.mark.parametrize(
    ("names", "given", "expected"),
    [
        (["deactivation-ready"], None, (ELSEWHERE,)),  # unset: read from the config file
        (["drain-ready", "deactivation-ready"], None, (ELSEWHERE,)),
        (["drain-ready"], None, ()),  # not needed: the config file is not consulted for it
        (["deactivation-ready"], (), ()),  # the caller's explicit answer stands
        (["deactivation-ready"], ("C:\\LCSCmd.exe",), ("C:\\LCSCmd.exe",)),
    ],
)
def test_run_checks_fills_unset_lcscmd_locations(
    tmp_path: Path, names: list[str], given: tuple[str, ...] | None, expected: tuple[str, ...]
) -> None:
    env = _env(tmp_path, f"[lcscmd]\npath = '{ELSEWHERE}'\n")
    options = CheckOptions(service="RTCSRV", lcscmd_locations=given)
    completed = complete_options(names, options, env)
    assert completed.lcscmd_locations == expected and completed.service == "RTCSRV"
