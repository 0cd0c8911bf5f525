"""Commands that touch no server: render, plan restart, catalog; their errors, files and start-up cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["render", "status", "--product", "sfb2015"],
        ["plan", "restart", "-c", "MSFT_SIPRoutingSetting"],
        ["catalog", "products"],
    ],
)
def test_offline_commands_do_not_import_the_remote_stack(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from ocsps.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('pypsrp', 'requests', 'spnego', 'psrpcore') if m in sys.modules]\n"
        "sys.stderr.write('REMOTE:' + ','.join(bad) + '\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    assert "REMOTE:\n" in done.stderr, done.stderr[-500:]


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
