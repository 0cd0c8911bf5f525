"""Commands that touch no server: render, plan restart, catalog; their errors, files and start-up cost."""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer._click.utils import make_default_short_help

import ocsps.cli.output as emit_json_module
from ocsps.catalog import load_catalog
from ocsps.cli.app import COMMANDS, PRODUCTS, LazyGroup, app, command_modules
from ocsps.powershell.changeboard import verify_script
from tests.cli_helpers import run_cli


def test_plan_restart_default_port_names_the_five_services(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "plan", "restart", "--changed", "MSFT_SIPRoutingSetting.DefaultPort", "--json")
    assert result.code == 0, result.err
    services = result.json()["services"]
    names = {s["display_name"].removeprefix("Office Communications Server ") for s in services}
    assert names == {
        "Front End",
        "IM Conferencing",
        "Telephony Conferencing",
        "Web Conferencing",
        "Audio/Video Conferencing",
    }
    for s in services:
        assert s["action"] == "restart"
        assert s["rules"] and all(r["setting"] == "MSFT_SIPRoutingSetting.DefaultPort" for r in s["rules"])


def test_plan_restart_no_restart_needed_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "plan", "restart", "--changed", "MSFT_SIPMediaRelaySetting.BankCertSN", "--json")
    doc = result.json()
    assert doc["services"] == [] and "exempt" in doc["not_needed"][0]["why"]


def test_render_writes_a_verified_script(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "drain.ps1"
    result = run_cli(
        capsys,
        "render",
        "drain",
        "--service",
        "RTCMEDSRV",
        "--product",
        "lync2010",
        "--computer",
        "med01.contoso.com",
        "--change-id",
        "CHG-7",
        "--reason",
        "CU patch",
        "-o",
        str(out),
    )
    assert result.code == 0, result.err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so Windows PowerShell reads non-ASCII correctly"
    text = raw.decode("utf-8-sig")
    assert verify_script(text).ok
    assert "[string]$Name = 'RTCMEDSRV'" in text and "$OcspsChangeId = 'CHG-7'" in text
    tampered = text.replace("'CU patch'", "'CU patcH'")
    assert not verify_script(tampered).ok


def test_plan_emit_script_and_saved_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    script, plan = tmp_path / "restart.ps1", tmp_path / "restart.json"
    result = run_cli(
        capsys,
        "plan",
        "restart",
        "-c",
        "move-archiving-database",
        "--emit-script",
        str(script),
        "-o",
        str(plan),
    )
    assert result.code == 0, result.err
    text = script.read_text(encoding="utf-8-sig")
    assert text.index("Step 1 of 3") < text.index("Step 2 of 3") < text.index("Step 3 of 3")
    assert "-Name 'MSSQLServer' -Operation 'Start'" in text
    assert plan.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "drain", "--service", "RtcSrv", "--product", "ocs2007r2"], "no graceful drain"),
        (["render", "drain", "--service", "RTCNOPE", "--product", "sfb2015"], "unknown service"),
        (["render", "stop", "--service", "RTCSRV", "--product", "lcs2005"], "unknown product"),
        (["render", "explode", "--product", "sfb2015"], "unknown action"),
        (
            [
                "render",
                "drain",
                "--service",
                "RTCMEDSRV",
                "--product",
                "lync2010",
                "--leave-running",
                "RTCCLSAGT",
            ],
            "cannot leave",
        ),
        (
            ["render", "drain", "--service", "RTCMEDSRV", "--product", "sfb2015", "--reason", "a\nb"],
            "line break",
        ),
        (["plan", "restart", "--changed", "MSFT_Nope.X"], "unknown WMI class"),
        (
            ["plan", "restart", "--changed", "DefaultPort", "--product", "sfb2019"],
            "restart rules are documented",
        ),
    ],
)
def test_bad_input_exit_2_and_no_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out.ps1"
    result = run_cli(capsys, *args, *(["-o", str(out)] if args[0] == "render" else []))
    assert result.code == 2
    assert message in result.err
    assert not out.exists()


OFFLINE = [
    ["--help"],
    ["--version"],
    ["render", "drain", "-s", "RTCMEDSRV", "-p", "sfb2015", "--computer", "x.contoso.com"],
    ["render", "status", "--product", "sfb2015"],
    ["plan", "restart", "--changed", "MSFT_SIPRoutingSetting.DefaultPort"],
    ["plan", "restart", "-c", "MSFT_SIPRoutingSetting", "--json"],
    ["catalog", "products"],
    ["catalog", "services", "--product", "lync2013"],
]
UNUSED = ("pypsrp", "requests", "spnego", "psrpcore", "pydantic", "tomllib")
"""The remote stack; pydantic (typer's option conversion); the TOML parser (the catalog is cached)."""


PROBE = """
import sys
from ocsps.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
bad = [m for m in {unused!r} if m in sys.modules]
built = sorted(m for m in sys.modules if m.startswith("ocsps.cli.") and m.endswith("_cmd"))
sys.stderr.write("\\nCATALOG:%s\\nCODE:%s\\n" % ("ocsps.catalog" in sys.modules, code))
sys.stderr.write("IMPORTED:%s\\nBUILT:%s\\n" % (",".join(bad), ",".join(built)))
"""


@pytest.mark.parametrize("args", OFFLINE, ids=" ".join)
def test_offline_commands_import_only_what_they_use(args: list[str], tmp_path: Path) -> None:
    code = PROBE.format(unused=UNUSED)
    env = {**os.environ, "OCSPS_CACHE_DIR": str(tmp_path / "cache")}
    first, second = (
        subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env
        )
        for _ in range(2)
    )
    for done in (first, second):
        assert "\nCODE:0\n" in done.stderr, done.stderr[-800:]
        lines = dict(
            line.split(":", 1) for line in done.stderr.splitlines() if line[:5] in ("IMPOR", "BUILT")
        )
        if args[0] == "--version":  # the product list is a constant, not a parsed catalog
            assert "\nCATALOG:False\n" in done.stderr
        # the first run parses the TOML files (and fills the cache); the second must not need the parser
        expected_unused = [m for m in UNUSED if not (done is first and m == "tomllib")]
        assert [m for m in lines["IMPORTED"].split(",") if m in expected_unused] == [], done.stderr[-800:]
        command = args[0]
        expected_built = [] if command.startswith("-") else [COMMANDS[command].module]
        assert (lines["BUILT"].split(",") if lines["BUILT"] else []) == expected_built, done.stderr[-800:]
    assert first.stdout == second.stdout, "a cached catalog or template changes nothing"


def test_version_line_lists_the_products(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "--version")
    assert result.code == 0 and result.out.strip().endswith(f"(products: {', '.join(PRODUCTS)})")


def test_version_products_are_the_catalogs() -> None:
    assert tuple(load_catalog().products) == PRODUCTS


def _registering_module(name: str, command: object) -> str:
    for info in app.registered_commands:
        if (
            info.callback is not None
            and (info.name or typer.main.get_command_name(info.callback.__name__)) == name
        ):
            return info.callback.__module__
    for group in app.registered_groups:
        if group.name == name:
            for module in command_modules():
                if any(
                    value is group.typer_instance for value in vars(importlib.import_module(module)).values()
                ):
                    return module
    raise AssertionError(f"ocsps {name} is registered by no command module")


def test_command_table_matches_the_registered_commands() -> None:
    """``ocsps --help`` lists the table without importing anything: it must say what the modules say."""
    for module in command_modules():
        importlib.import_module(module)
    root = typer.main.get_command(app)
    assert isinstance(root, LazyGroup)
    registered = [
        info.name or typer.main.get_command_name(info.callback.__name__)
        for info in app.registered_commands
        if info.callback
    ]
    registered += [group.name for group in app.registered_groups if group.name]
    assert sorted(registered) == sorted(COMMANDS), "add the command to ocsps.cli.app.COMMANDS"
    for name, entry in COMMANDS.items():
        command = root.commands[name]
        assert _registering_module(name, command) == entry.module, name
        for limit in (45, 80, 1000):
            assert make_default_short_help(entry.help, limit) == command.get_short_help_str(limit), (
                f"COMMANDS[{name!r}].help should be {command.get_short_help_str(1000)!r}"
            )


def test_help_builds_no_command_and_lists_them_all(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "--help")
    assert result.code == 0
    listed = [line.split()[0] for line in result.out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS)


def test_a_command_missing_from_the_table_still_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        importlib.import_module("ocsps.cli.app"),
        "COMMANDS",
        {k: v for k, v in COMMANDS.items() if k != "plan"},
    )
    result = run_cli(capsys, "plan", "restart", "-c", "MSFT_SIPRoutingSetting.DefaultPort", "--json")
    assert result.code == 0, result.err
    assert result.json()["services"]


@pytest.mark.parametrize(
    ("args", "collecting"),
    [
        (["catalog", "products", "--json"], False),  # offline: bounded work, no collector
        (["check", "--list", "--json"], True),  # talks to servers (not with --list): the collector is back
    ],
)
def test_garbage_collection_is_back_for_commands_that_talk_to_servers(
    args: list[str], collecting: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[bool] = []
    real = emit_json_module.emit_json

    def spy(document: object) -> None:
        seen.append(gc.isenabled())
        real(document)

    import ocsps.cli.catalog_cmd
    import ocsps.cli.check_cmd

    monkeypatch.setattr(ocsps.cli.catalog_cmd, "emit_json", spy)
    monkeypatch.setattr(ocsps.cli.check_cmd, "emit_json", spy)
    assert gc.isenabled()
    result = run_cli(capsys, *args)
    assert result.code == 0, result.err
    assert seen == [collecting]
    assert gc.isenabled(), "the collector is always restored"


def test_catalog_json_lists_every_product(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "catalog", "products", "--json")
    assert [p["id"] for p in result.json()] == [
        "ocs2007",
        "ocs2007r2",
        "lync2010",
        "lync2013",
        "sfb2015",
        "sfb2019",
    ]
    assert run_cli(capsys, "catalog", "rules", "--json").json()[0]["id"] == "frontend-dbimpexp"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "--version")
    assert result.code == 0 and "sfb2019" in result.out
