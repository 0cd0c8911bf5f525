"""README: the quick start CI runs, and a tour that came from scripts/capture_tour.py."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.docs.helpers import load_script

capture_tour = load_script("capture_tour")
README = (ROOT / "README.md").read_text(encoding="utf-8")

QUICK_START = [
    "python -m pip install . && ocsps drain --service RTCMEDSRV --lab --host med01.contoso.com",
    'python -m pip install ".[test]" && python -m pytest',
]


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_quick_start_is_exactly_two_commands() -> None:
    blocks = re.findall(r"```console\n(.*?)```", _section("Quick start"), re.DOTALL)
    assert len(blocks) == 1
    assert blocks[0].strip().splitlines() == QUICK_START


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [
        line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(c.startswith("python -m pytest") for c in commands), "CI must run the README's test command"
    assert any(c.startswith("python -m pip install") and ".[test" in c for c in commands)


def test_the_tour_is_what_the_capture_script_runs() -> None:
    start, end = README.index(capture_tour.BEGIN), README.index(capture_tour.END)
    tour = README[start:end]
    commands = [line[2:] for line in tour.splitlines() if line.startswith("$ ocsps")]
    assert commands == [step.command for step in capture_tour.TOUR], (
        "README's tour is stale: run python scripts/capture_tour.py"
    )
    for step in capture_tour.TOUR:
        assert f"<!-- --8<-- [start:tour-{step.name}] -->" in tour
        assert f"<!-- --8<-- [end:tour-{step.name}] -->" in tour
    assert "RTCMEDSRV" in tour and "Stopped" in tour and "25050" in tour, "the drain step shows its result"
    assert "# ocsps change-board script" in tour


def test_replace_block_keeps_the_rest_of_the_readme() -> None:
    block = f"{capture_tour.BEGIN}\nnew\n{capture_tour.END}"
    replaced = capture_tour.replace_block(README, block)
    before, after = README.split(capture_tour.BEGIN)[0], README.split(capture_tour.END)[1]
    assert replaced == before + block + after


def test_readme_links_point_at_files() -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README):
        if "://" in target:
            continue
        path = ROOT / target
        if target == "docs/reliability.md" and not path.exists():
            continue  # written by the reliability tests; the documentation build checks it is there
        assert path.exists(), f"README links to missing {target}"
