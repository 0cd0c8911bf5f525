"""``ocsps patch pool --emit-script DIR``: one script per member and ORDER.txt, written offline from the lab
topology or from --product and --servers; nothing is sent, nothing is audited, bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsps.powershell.changeboard import verify_script
from tests.cli_helpers import run_cli
from tests.conftest import DATA

POOLS = DATA / "patch" / "pools"


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    # no configuration file: nothing may be resolved, nothing may be asked
    monkeypatch.setenv("OCSPS_CONFIG", str(tmp_path / "no-config.toml"))
    return path


def _written(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8-sig") for p in sorted(folder.iterdir())}


def test_a_lab_lync2013_pool_gets_one_script_per_member_in_upgrade_domain_order(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "board"
    result = run_cli(
        capsys,
        "patch",
        "pool",
        "--lab",
        "--lab-topology",
        str(POOLS / "lync2013-domains.toml"),
        "--pool",
        "pool13.contoso.com",
        "--installer",
        "C:\\Updates\\LyncServerUpdateInstaller.exe",
        "--expect-version",
        "5.0.8308.1001",
        "--sql-server",
        "sql13.contoso.com",
        "--change-id",
        "CHG-3001",
        "--emit-script",
        str(out),
    )
    assert result.code == 0, result.err
    files = _written(out)
    members = [f"fe13{x}.contoso.com" for x in "abcd"]
    assert sorted(files) == sorted([*(f"{m}.ps1" for m in members), "ORDER.txt"])
    order = files["ORDER.txt"]
    listed = [line.split(". ", 1)[1].split(" ", 1)[0] for line in order.splitlines() if line.startswith("  ")]
    assert listed == members  # UpgradeDomain1 (a, b), then UpgradeDomain2 (c, d)
    assert "(upgrade domain UpgradeDomain1)" in order and "-SqlServerFqdn sql13.contoso.com -Update" in order
    for member in members:
        check = verify_script(files[f"{member}.ps1"])
        assert check.ok, check.reason
        assert check.header["Target"] == member and check.header["Change"] == "CHG-3001"
        assert "& $ocspsBodyReadiness" in files[f"{member}.ps1"]
    assert not audit_log.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board"]  # no state file, no record


def test_product_and_servers_are_enough_offline(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sfb"
    result = run_cli(
        capsys,
        "patch",
        "pool",
        "--product",
        "sfb2015",
        "--pool",
        "pool15.contoso.com",
        "--servers",
        "fe15a.contoso.com,fe15b.contoso.com",
        "--servers",
        "fe15c.contoso.com",
        "--installer",
        "C:\\Updates\\SkypeServerUpdateInstaller.exe",
        "--expect-version",
        "6.0.9319.619",
        "--no-database-update",
        "--emit-script",
        str(out),
    )
    assert result.code == 0, result.err
    files = _written(out)
    assert len(files) == 4
    text = files["fe15b.contoso.com.ps1"]
    assert verify_script(text).ok
    assert "& $ocspsBodyFailOver -ComputerName $OcspsTarget" in text
    assert "no database update was asked for" in files["ORDER.txt"]
    assert not audit_log.exists()


_SFB = ["--product", "sfb2015", "--servers", "fe1.contoso.com,fe2.contoso.com", "--no-database-update"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--product", "sfb2015", "--servers", "fe1.contoso.com,fe2.contoso.com"],
            "--sql-server is required",
        ),
        (["--servers", "fe1.contoso.com,fe2.contoso.com", "--no-database-update"], "pass --product"),
        (["--product", "sfb2015", "--no-database-update"], "which servers are in the pool"),
        (
            [*_SFB, "--what-if"],
            "--emit-script writes a new roll",
        ),
        (
            [*_SFB, "--installer", "C:\\Updates\\LyncServerUpdateInstaller.exe"],
            "SkypeServerUpdateInstaller.exe",
        ),
        (
            ["--product", "sfb2015", "--servers", "fe1.contoso.com,fe 2; x", "--no-database-update"],
            "--servers",
        ),
        ([*_SFB, "--pool", "pool$(x)"], "--pool"),
    ],
    ids=["no-sql", "no-product", "no-servers", "with-what-if", "wrong-installer", "bad-server", "bad-pool"],
)
def test_bad_input_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path, extra: list[str], expected: str
) -> None:
    out = tmp_path / "board"
    installer = (
        [] if "--installer" in extra else ["--installer", "C:\\Updates\\SkypeServerUpdateInstaller.exe"]
    )
    result = run_cli(
        capsys,
        "patch",
        "pool",
        "--pool",
        "pool15.contoso.com",
        *installer,
        "--expect-version",
        "6.0.9319.619",
        "--emit-script",
        str(out),
        *extra,
    )
    assert result.code == 2, result.err
    assert expected in result.err
    assert not out.exists() and not audit_log.exists()


def test_a_file_where_the_folder_should_be_is_refused(
    capsys: pytest.CaptureFixture[str], audit_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "board.ps1"
    out.write_text("keep me", encoding="utf-8")
    result = run_cli(
        capsys,
        "patch",
        "pool",
        "--product",
        "lync2010",
        "--pool",
        "pool10.contoso.com",
        "--servers",
        "fe10a.contoso.com,fe10b.contoso.com",
        "--installer",
        "C:\\Updates\\LyncServerUpdateInstaller.exe",
        "--expect-version",
        "4.0.7577.726",
        "--emit-script",
        str(out),
    )
    assert result.code == 2, result.err
    assert "takes a folder" in result.err
    assert out.read_text(encoding="utf-8") == "keep me"
