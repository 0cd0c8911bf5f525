"""A change rehearsed in the lab end to end: drain, restart and a patch under one ticket, then its report.

The commands run as an operator runs them (``--lab``), writing the audit log and the patch record; the
report is then read back as the board would get it: Markdown, the HTML page and the JSON model.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.cli_helpers import CliResult, run_cli
from tests.conftest import DATA, ROOT

TICKET = "CHG-1042"
MED = "med01.contoso.com"
TOPOLOGY = str(Path(__file__).parents[1] / "localstate" / "data" / "two-mediation.toml")
PATCH_TOPOLOGY = str(DATA / "patch" / "cli-no-restart.toml")
VERSION = "6.0.9319.619"
LAB = ["--lab", "--lab-topology", TOPOLOGY]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "report.schema.json").read_text(encoding="utf-8"))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    result = run_cli(capsys, *args)
    assert result.code == 0, result.err
    return result


@pytest.fixture
def rehearsed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """drain + restart on med01 and med02, and a patch of med01, under TICKET; a stop of med02 under none."""
    _run(capsys, "drain", "-s", "RTCMEDSRV", "--poll", "0.1s", *LAB, "--host", MED, "--change-id", TICKET)
    _run(capsys, "stop", "-s", "RTCMEDSRV", *LAB, "--host", "med02.contoso.com")  # not part of the change
    _run(
        capsys,
        "restart",
        "-s",
        "RTCMEDSRV",
        *LAB,
        "--host",
        MED,
        "--host",
        "med02.contoso.com",
        "--change-id",
        TICKET,
    )
    _run(
        capsys,
        "patch",
        "server",
        "--lab",
        "--lab-topology",
        PATCH_TOPOLOGY,
        "--host",
        MED,
        "--installer",
        "C:\\Updates\\SkypeServerUpdateInstaller.exe",
        "--expect-version",
        VERSION,
        "--change-id",
        TICKET,
    )
    return Path(os.environ["OCSPS_AUDIT_LOG"])


class _Text(HTMLParser):
    """The page as a reader sees it: its text, and every tag and attribute it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


def _timeline(markdown: str, host: str) -> list[list[str]]:
    """The rows of ``host``'s timeline table, split into cells."""
    section = markdown.split(f"\n## {host}\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("Timeline:\n\n", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_markdown_report_of_the_rehearsed_change(
    rehearsed: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "report.md"
    result = _run(capsys, "report", "--change-id", TICKET, "--output", str(out))
    assert result.out == "" and f"wrote {out}" in result.err
    text = out.read_text(encoding="utf-8")
    assert text.startswith(f"# Post-implementation report: change {TICKET}\n")
    assert "**LAB REHEARSAL.**" in text
    assert "| Outcome | ok |" in text and "| Lab rehearsal | yes |" in text
    commands = text.split("## Commands", 1)[1].split("## Servers", 1)[0]
    assert [line.split(" | ")[1] for line in commands.splitlines() if line.startswith("| 2")] == [
        "drain RTCMEDSRV",
        "restart RTCMEDSRV",
        f"patch server {MED}",
    ]
    assert "stop RTCMEDSRV" not in commands  # the command run without the ticket is not in the report
    med = _timeline(text, MED)
    stages = [row[1] for row in med]
    patch_steps = [s for s, row in zip(stages, med, strict=True) if row[5] == "patch record"]
    assert patch_steps == [
        "preflight",
        "out of service",
        "hold start-up types",
        "install",
        "verify",
        "back in service",
        "done",
    ]
    calls = [s for s, row in zip(stages, med, strict=True) if row[5] == "audit log"]
    assert calls[:3] == ["out of service (drain)", "stop", "start"]  # the drain, then the restart
    assert {"install", "hold start-up types", "restore start-up types"} <= set(calls)
    assert all(row[2] == "ok" and row[6] == "REHEARSAL (lab)" for row in med)
    assert {row[4] for row in med} == {getpass.getuser()}  # every row says who ran it, patch steps too
    med02 = _timeline(text, "med02.contoso.com")
    assert [row[1] for row in med02] == ["stop", "start"]  # the restart only, not the stop outside the change
    assert f"| Core Components | 6.0.9319.0 | {VERSION} | yes |" in text
    assert f"| {MED} | sfb2015 | ok | {VERSION} | yes | REHEARSAL (lab) |" in text


def test_html_report_is_one_self_contained_page(
    rehearsed: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page_path = tmp_path / "report.html"
    result = _run(capsys, "report", "--change-id", TICKET, "--html", str(page_path))
    assert result.out == ""  # the page was asked for; Markdown goes to stdout only when nothing else is
    page = page_path.read_text(encoding="utf-8")
    parsed = _parse(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert parsed.external == [] and "<style>" in page
    text = " ".join(" ".join(parsed.text).split())
    assert "LAB REHEARSAL: every step below ran against the simulated lab" in text
    for host in (MED, "med02.contoso.com"):
        assert page.count(f'">{host}</a>') == 1  # the summary links each server to its timeline
    for stage in ("out of service", "install", "verify", "back in service", "out of service (drain)", "stop"):
        assert f'<td class="stage">{stage}</td>' in page
    assert f"expected version {VERSION}: verified" in text
    glance = page.split('<table class="glance">', 1)[1].split("</table>", 1)[0]
    stages = re.findall(r"<th>([^<]*)</th>", glance)
    assert stages == ["out of service", "install", "verify", "back in service"]  # no reboot: exit code 0
    assert glance.count('<td class="ok">ok<br>') == 4
    assert page.count('class="badge">REHEARSAL (lab)</span>') >= 10


def test_json_model_of_the_change(rehearsed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _run(capsys, "report", "--change-id", TICKET, "--json").json()
    Draft202012Validator(SCHEMA).validate(doc)
    assert doc["format"] == "ocsps-report/1" and doc["change_id"] == TICKET
    assert doc["outcome"] == "ok" and doc["rehearsal"] == "yes"
    servers = {s["host"]: s for s in doc["servers"]}
    assert set(servers) == {MED, "med02.contoso.com"}
    assert servers[MED]["verified"] is True and servers[MED]["expected_version"] == VERSION
    assert servers["med02.contoso.com"]["verified"] is None  # restarted, not patched: nothing to verify
    events = [e for s in doc["servers"] for e in s["events"]]
    assert all(e["rehearsal"] for e in events)
    assert {e["change_id"] for e in events} == {TICKET}
    assert "password" not in json.dumps(doc).casefold()


def test_a_time_window_gathers_everything_in_it(rehearsed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [json.loads(line) for line in rehearsed.read_text(encoding="utf-8").splitlines()]
    doc = _run(capsys, "report", "--since", lines[0]["time"], "--json").json()
    assert doc["change_id"] == "" and doc["selection"].startswith("from ")
    assert "stop RTCMEDSRV" in [c["command"] for c in doc["commands"]]  # the window holds the unticketed stop
    after = _run(capsys, "report", "--since", lines[-1]["time"], "--json").json()
    assert len(after["commands"]) == 0 and len(after["servers"]) == 1  # only the last line's server


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--change-id", "CHG-9"], 1, "nothing in"),
        ([], 2, "name a change (--change-id) or a time window"),
        (["--change-id", "CHG 9"], 2, "--change-id: a change id takes"),
        (["--since", "2026-12-06", "--until", "2026-12-05"], 2, "--until must be later than --since"),
        (["--since", "last week"], 2, "--since 'last week': give a date or time"),
        (["--change-id", TICKET, "--json", "-o", "x.md"], 2, "--json prints the report on stdout"),
        (["--change-id", TICKET, "--html", "/nonexistent-folder/r.html"], 2, "cannot write"),
    ],
    ids=[
        "no-match",
        "nothing-named",
        "bad-ticket",
        "window-backwards",
        "bad-time",
        "json-and-output",
        "no-folder",
    ],
)
def test_exit_codes(
    rehearsed: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    result = run_cli(capsys, "report", *args)
    assert result.code == code and message in result.err
    assert len(result.err.strip().splitlines()) == 1 and result.out == ""
