"""The pure parts of patching: facts, plan refusals, answer parsing, lab topology knobs."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from ocsps.catalog import CatalogError, load_catalog
from ocsps.errors import OcspsError, UsageError
from ocsps.lab.topology import parse_topology
from ocsps.patch import default_options, load_patch_facts, plan_patch
from ocsps.patch.facts import parse_patch_facts
from ocsps.patch.model import parse_install, parse_patch_state, startup_type
from tests.conftest import DATA

CATALOG = load_catalog()
FACTS = load_patch_facts()
SFB = CATALOG.product("sfb2015")
INSTALLER = "C:\\Updates\\SkypeServerUpdateInstaller.exe"
RAW = tomllib.loads(
    resources.files("ocsps.catalog").joinpath("data", "patch.toml").read_text(encoding="utf-8")
)
BAD_TOPOLOGIES = sorted((DATA / "patch" / "bad_topologies").glob("*.toml"))


def test_facts_name_each_installer_and_the_exit_codes() -> None:
    assert FACTS.for_product("sfb2019").installer == "SkypeServerUpdateInstaller.exe"
    assert FACTS.for_product("lync2013").installer == "LyncServerUpdateInstaller.exe"
    assert [FACTS.exit_meaning(c) for c in (0, 3010, 1603, 1)] == [
        "success",
        "reboot-required",
        "failure",
        "failure",
    ]
    assert [f.name for f in FACTS.reboot_flags] == [
        "component-based-servicing",
        "windows-update",
        "pending-file-rename",
    ]


def _mutated(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = _copy(RAW)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("products", "sfb2015", "verify"), "registry", "verify: one of"),
        (("products", "sfb2015", "installer"), "setup.msi", "expected an .exe"),
        (("products", "sfb2015", "sources"), [], "sources: cite"),
        (("products", "lync2010", "verify"), "Get-CsServerPatchVersion", "cmdlets.toml has no"),
        (("exit_codes", "reboot_required"), [0], "must be distinct"),
        (("defaults", "reboot_timeout"), "soon", "reboot_timeout"),
        (("products", "ocs2007r2"), {"installer": "x.exe"}, "only Lync / Skype for Business"),
        (("database", "products"), ["lync2013"], "the products come from actions.toml patch-database"),
        (("database", "sources"), ["a blog"], "[database].sources: cite"),
        (("products", "lync2013", "verify_filter"), "", "verify_filter: a -like pattern"),
        (("products", "sfb2015", "verify_filter"), "*Skype*", "verify_filter: a -like pattern"),
    ],
    ids=[
        "verify",
        "installer",
        "sources",
        "cmdlet-missing",
        "codes",
        "duration",
        "ocs",
        "db-products-twice",
        "db-source",
        "wmi-no-filter",
        "filter-without-wmi",
    ],
)
def test_bad_facts_are_refused_at_load(path: tuple[str, ...], value: Any, expected: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_patch_facts(_mutated(path, value))
    assert expected in caught.value.message


def test_lync_patch_level_is_read_from_win32_product_and_marked_unconfirmed() -> None:
    for pid in ("lync2010", "lync2013"):
        spec = FACTS.for_product(pid)
        assert (spec.verify, spec.verify_filter, spec.verify_confirmed) == (
            "Win32_Product",
            "*Lync Server*",
            False,
        )
        assert "wmi-product" in spec.sources
    plan = plan_patch(
        "fe13a.contoso.com",
        load_catalog().product("lync2013"),
        "C:\\U\\LyncServerUpdateInstaller.exe",
        default_options("5.0.8308.1001"),
    )
    verify = next(s for s in plan.steps if s.name == "verify")
    assert "UNCONFIRMED" in verify.summary and "[wmi-product]" in verify.summary


def test_a_product_whose_level_cannot_be_read_is_refused() -> None:
    raw = _mutated(("products", "lync2013", "verify"), "none")
    del raw["products"]["lync2013"]["verify_filter"]
    facts = parse_patch_facts(raw)
    with pytest.raises(UsageError, match="cannot verify the patch level"):
        plan_patch(
            "fe13a.contoso.com",
            load_catalog().product("lync2013"),
            "C:\\U\\LyncServerUpdateInstaller.exe",
            default_options("5.0.8308.1001"),
            facts,
        )


def test_plan_uses_the_products_installer_and_switches() -> None:
    plan = plan_patch("med01.contoso.com", SFB, INSTALLER, default_options("6.0.9319.619"))
    assert plan.arguments == ("/silentmode",)
    assert plan.verify == "Get-CsServerPatchVersion"
    assert [s.name for s in plan.steps] == [
        "preflight",
        "out-of-service",
        "hold",
        "install",
        "reboot",
        "verify",
        "back-in-service",
    ]
    unc = plan_patch("m", SFB, "\\\\files\\cu\\SkypeServerUpdateInstaller.exe", default_options("6.0.1"))
    assert unc.unc and not plan.unc


@pytest.mark.parametrize(
    ("product", "installer", "changes", "expected"),
    [
        ("sfb2015", "C:\\U\\LyncServerUpdateInstaller.exe", {}, "is SkypeServerUpdateInstaller.exe"),
        ("sfb2015", "SkypeServerUpdateInstaller.exe", {}, "full Windows path"),
        ("sfb2015", "/tmp/SkypeServerUpdateInstaller.exe", {}, "full Windows path"),
        ("sfb2015", INSTALLER, {"expect_version": ""}, "--expect-version is required"),
        ("sfb2015", INSTALLER, {"expect_version": "latest"}, "--expect-version is required"),
        ("sfb2015", INSTALLER, {"reboot": "later"}, "--reboot takes auto or never"),
        ("sfb2015", INSTALLER, {"then": "kill"}, "--then takes stop or force-stop"),
        ("sfb2015", INSTALLER, {"reboot_timeout": 0.0}, "reboot-timeout must be more than zero"),
        ("ocs2007r2", INSTALLER, {}, "ocsps does not patch ocs2007r2"),
    ],
    ids=[
        "wrong-installer",
        "bare-name",
        "unix-path",
        "no-version",
        "bad-version",
        "reboot",
        "then",
        "zero-deadline",
        "ocs",
    ],
)
def test_plan_refuses(product: str, installer: str, changes: dict[str, Any], expected: str) -> None:
    options = default_options(str(changes.pop("expect_version", "6.0.9319.619")), **changes)
    with pytest.raises(UsageError) as caught:
        plan_patch("srv.contoso.com", CATALOG.product(product), installer, options)
    assert expected in caught.value.message


def _computer(**extra: object) -> dict[str, object]:
    return {
        "Kind": "computer",
        "ComputerName": "med01.contoso.com",
        "BootTime": "20261206000000.000000+000",
        "FreeBytes": "1024",
        "InstallerFound": "True",
        **extra,
    }


def test_patch_state_is_parsed() -> None:
    state = parse_patch_state(
        [
            _computer(),
            {"Kind": "reboot-flag", "Name": "windows-update", "Set": "True"},
            {"Kind": "reboot-flag", "Name": "pending-file-rename", "Set": "False"},
            {"Kind": "service", "Name": "RTCMEDSRV", "State": "Stopped", "StartMode": "Disabled"},
            {"Kind": "component", "Component": "Core Components", "Version": "6.0.9319.619"},
        ],
        ["RTCMEDSRV"],
    )
    assert state.pending_reboot == ["windows-update"]
    assert state.free_bytes == 1024 and state.installer_found is True
    svc = state.service("rtcmedsrv")
    assert svc is not None and svc.stopped and svc.disabled


@pytest.mark.parametrize(
    ("output", "asked", "expected"),
    [
        ([], [], "no computer line"),
        ([{"ComputerName": "x"}], [], "lacks Kind"),
        ([_computer(), {"Kind": "surprise"}], [], "unexpected kind"),
        (
            [_computer(), {"Kind": "service", "Name": "RTCSRV", "State": "", "StartMode": ""}],
            ["RTCMEDSRV"],
            "asked about",
        ),
        ([{k: v for k, v in _computer().items() if k != "BootTime"}], [], "lacks BootTime"),
        (["a line of text"], [], "unexpected output"),
    ],
    ids=["empty", "no-kind", "kind", "other-service", "no-boot", "text"],
)
def test_patch_state_in_another_shape_is_an_error(
    output: list[object], asked: list[str], expected: str
) -> None:
    with pytest.raises(OcspsError) as caught:
        parse_patch_state(output, asked)
    assert expected in caught.value.message


def test_install_outcome() -> None:
    row = {"ComputerName": "m", "Ran": True, "ExitCode": "3010", "LogPath": "C:\\U\\a.log", "LogTail": "x"}
    assert parse_install([row]).exit_code == 3010
    with pytest.raises(OcspsError, match="not a number"):
        parse_install([{**row, "ExitCode": "fail"}])
    with pytest.raises(OcspsError, match="expected one"):
        parse_install([row, row])


@pytest.mark.parametrize(
    ("mode", "expected"), [("Auto", "Automatic"), ("Manual", "Manual"), ("Disabled", "Disabled")]
)
def test_start_modes_map_to_set_service_values(mode: str, expected: str) -> None:
    assert startup_type(mode) == expected


def test_a_start_mode_set_service_cannot_restore_is_an_error() -> None:
    with pytest.raises(OcspsError, match="cannot be restored"):
        startup_type("Boot")


@pytest.mark.parametrize("path", BAD_TOPOLOGIES, ids=[p.stem for p in BAD_TOPOLOGIES])
def test_bad_patch_knobs_are_refused(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(UsageError) as caught:
        parse_topology(path.read_text(), source=path.name)
    assert expected in caught.value.message and path.name in caught.value.message
