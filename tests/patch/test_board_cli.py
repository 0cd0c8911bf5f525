"""``ocsps patch server --emit-script``: writes the two-part script offline, sends and records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsps.powershell.changeboard import verify_script
from tests.cli_helpers import run_cli
from tests.conftest import DATA

INSTALLER = "C:\\Updates\\SkypeServerUpdateInstaller.exe"


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    # no configuration file: nothing may be resolved, nothing may be asked
    monkeypatch.setenv("OCSPS_CONFIG", str(tmp_path / "no-config.toml"))
    return path


def _args(out: Path, *extra: str) -> list[str]:
    return [
        "patch",
        "server",
        "--host",
        "med01.contoso.com",
        "--installer",
        INSTALLER,
        "--emit-script",
        str(out),
        *extra,
    ]


def test_emit_script_writes_one_verified_file_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "patch.ps1"
    result = run_cli(
        capsys,
        *_args(out, "--product", "sfb2019", "--expect-version", "7.0.2046.520", "--change-id", "CHG-1042"),
    )
    assert result.code == 0, result.err
    text = out.read_text(encoding="utf-8-sig")  # written with a BOM, as Windows PowerShell needs
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    check = verify_script(text)
    assert check.ok, check.reason
    assert check.header["Product"].startswith("sfb2019") and check.header["Change"] == "CHG-1042"
    assert "$ocspsExpectVersion = '7.0.2046.520'" in text
    assert not audit_log.exists()
    assert list(tmp_path.iterdir()) == [out]  # one file; no state file, no record


def test_emit_script_reads_a_lab_servers_product_offline(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lab.ps1"
    topology = str(DATA / "patch" / "cli-no-restart.toml")
    result = run_cli(
        capsys, *_args(out, "--lab", "--lab-topology", topology, "--expect-version", "6.0.9319.619")
    )
    assert result.code == 0, result.err
    assert verify_script(out.read_text(encoding="utf-8-sig")).ok
    assert not audit_log.exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--product", "sfb2015"], "--expect-version is required"),
        (["--expect-version", "6.0.9319.619"], "pass --product"),
        (["--product", "ocs2007r2", "--expect-version", "3.5.6907.0"], "does not patch ocs2007r2"),
        (["--product", "lync2013", "--expect-version", "5.0.8308.1001"], "LyncServerUpdateInstaller.exe"),
        (
            ["--product", "sfb2015", "--expect-version", "6.0.9319.619", "--change-id", "CHG 1; x"],
            "--change-id",
        ),
    ],
    ids=["no-version", "no-product", "unpatched-product", "wrong-installer", "bad-change-id"],
)
def test_bad_input_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path, extra: list[str], expected: str
) -> None:
    out = tmp_path / "patch.ps1"
    result = run_cli(capsys, *_args(out, *extra))
    assert result.code == 2, result.err
    assert expected in result.err
    assert not out.exists() and not audit_log.exists()
