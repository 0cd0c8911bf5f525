"""The benchmark runner end to end with tiny sizes: every measurement runs, every output is written.

Benchmarks are measured, never asserted: nothing here looks at a time, a ratio or a memory figure, only at
the shape of the results and at the counts the lab itself decides (requests, polls, hosts answered).
(No ``__init__.py`` in this directory: as a package it would be named ``bench`` and hide the runner.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.report import README_END, README_START

TINY = [
    "--latency-ms", "0",
    "--repeat", "1",
    "--polls", "3",
    "--fanout-sizes", "1,2",
    "--parallel", "2",
    "--baseline-fanout-sizes", "1",
    "--startup-repeat", "1",
    "--startup-command", "python -c pass",
    "--startup-command", "ocsps --help",
    "--startup-command", "python -c 'import typer, jinja2'",
    "--parse-count", "20",
]


@pytest.fixture
def readme(tmp_path: Path) -> Path:
    path = tmp_path / "README.md"
    path.write_text(f"# Benchmarks\n\n{README_START}\nold table\n{README_END}\n\nafter\n", encoding="utf-8")
    return path


# Child processes (lab, workers, start-up commands) are slow to start on a loaded machine.
@pytest.mark.timeout(600)
def test_tiny_run_writes_every_result(
    tmp_path: Path, readme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    code = main([*TINY, "--out", str(out), "--name", "smoke", "--update-readme", "--readme", str(readme)])
    assert code == 0

    result = json.loads((out / "smoke.json").read_text(encoding="utf-8"))
    assert set(result["sections"]) == {"requests", "drain", "fanout", "startup", "parse"}
    assert result["machine"]["cpu_count"] and result["machine"]["python"]

    requests = result["sections"]["requests"]
    assert requests["stable"]
    by_op = {(r["tool"], r["operation"]): r for r in requests["rows"]}
    # Requests are decided by the protocol, not by the machine: these are exact.
    assert by_op[("ocsps", "status read")]["wsman"] == requests["per_poll"]["ocsps_status_read"] == 3
    assert by_op[("ocsps", "drain watch")]["Command"] == 1, "a drain watch is one pipeline"
    assert requests["per_poll"]["ocsps"] <= 1.2, "the watch costs about one Receive per status"
    assert by_op[("pypsrp new pool", "status / drain poll")]["Create"] == 1

    drain = result["sections"]["drain"]
    # The watch's server writes a status every interval; the lab's step clock moves when one arrives, so
    # a status or two may come before the step shows: at least the polls asked for, never fewer.
    assert 3 <= drain["ocsps"]["polls"][0] <= 5 and drain["new_pool"]["polls"] == [3]
    assert drain["ocsps"]["phase"] == ["stopped"] and drain["new_pool"]["phase"] == ["stopped"]

    series = result["sections"]["fanout"]["series"]
    assert {(s["tool"], s["parallel"], s["hosts"]) for s in series} == {
        ("ocsps", 2, 1), ("ocsps", 2, 2), ("pypsrp loop", 1, 1),
    }
    assert all(s["ok"] == [s["hosts"]] for s in series), [s["errors"] for s in series]
    whole = result["sections"]["fanout"]["whole_command"]
    assert [(w["hosts"], w["ok"]) for w in whole] == [(1, [1]), (2, [2])], [w["errors"] for w in whole]

    commands = result["sections"]["startup"]["commands"]
    assert set(commands) == {"python -c pass", "ocsps --help", "python -c 'import typer, jinja2'"}
    assert all(c["exit_codes"] == [0] for c in commands.values())

    parse = result["sections"]["parse"]
    assert [r["objects"] for r in parse["rows"][:4]] == [10, 10, 10, 10]
    assert parse["overall"]["objects"] == 40

    # Every goal of the performance table has a row; those this run measured have a verdict.
    verdicts = {g["figure"].split(" (")[0]: g["met"] for g in result["goals"]}
    assert len(verdicts) == 9, list(verdicts)
    unmeasured = [name for name, met in verdicts.items() if met is None]
    assert sorted(unmeasured) == sorted(
        [
            "ocsps status whole command, 50 hosts / 1 host",
            *(
                f"start-up {c} / python -c 'import typer, jinja2'"
                for c in ("ocsps render drain", "ocsps plan restart", "ocsps --version")
            ),
        ]
    ), "the tiny run measures every goal but 50 hosts and the start-up commands it leaves out"

    table = (out / "smoke.md").read_text(encoding="utf-8")
    assert "**1. WSMan requests per operation**" in table and "**Goals**" in table
    assert table in capsys.readouterr().out
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and table.strip() in text and text.endswith("after\n")
    pytest.importorskip("matplotlib")
    assert (out / "smoke.png").stat().st_size > 0


def test_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    from bench.report import update_readme

    path = tmp_path / "README.md"
    path.write_text("no markers\n", encoding="utf-8")
    assert not update_readme(path, "| table |\n")
    assert path.read_text(encoding="utf-8") == "no markers\n"
