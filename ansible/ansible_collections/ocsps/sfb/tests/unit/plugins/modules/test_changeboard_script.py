"""Unit tests of the changeboard_script module: it writes what ``ocsps render`` writes; bad input fails."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import changeboard_script

pytest.importorskip("ocsps")

BASE = {"computer": "srv01.contoso.com", "change_id": "CHG-1042", "reason": "Cumulative update"}


def _run(monkeypatch, capsys, **args):
    args = {**BASE, **args}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        changeboard_script.main()
    return json.loads(capsys.readouterr().out)


def _cli(capsys, tmp_path, *words):
    """What ``ocsps render`` writes for the same request."""
    from ocsps.cli import main

    out = tmp_path / "cli.ps1"
    args = [
        *words,
        "--computer",
        BASE["computer"],
        "--change-id",
        BASE["change_id"],
        "--reason",
        BASE["reason"],
    ]
    try:
        main(["render", *args, "-o", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    capsys.readouterr()
    return out.read_text(encoding="utf-8-sig")


CASES = [
    (
        {"action": "drain", "service": "RTCMEDSRV", "product": "lync2010"},
        ["drain", "-s", "RTCMEDSRV", "-p", "lync2010"],
    ),
    (
        {"action": "stop", "service": "RTCMEDSRV", "product": "sfb2019", "force": True},
        ["stop", "-s", "RTCMEDSRV", "-p", "sfb2019", "--param", "Force=true"],
    ),
    (
        {"action": "start", "service": "ocs-frontend", "product": "ocs2007"},
        ["start", "-s", "ocs-frontend", "-p", "ocs2007"],
    ),
    ({"action": "status", "product": "sfb2015"}, ["status", "-p", "sfb2015"]),
    (
        {"action": "restart", "service": "RTCMEDIARELAY", "product": "lync2013"},
        ["restart", "-s", "RTCMEDIARELAY", "-p", "lync2013"],
    ),
    (
        {"action": "restart", "service": "ocs-application-host", "product": "ocs2007r2", "force": True},
        ["restart", "-s", "ocs-application-host", "-p", "ocs2007r2", "--param", "Force=true"],
    ),
]


@pytest.mark.parametrize(("args", "words"), CASES, ids=[f"{c[0]['action']}-{c[0]['product']}" for c in CASES])
def test_the_module_writes_what_ocsps_render_writes(monkeypatch, capsys, tmp_path, args, words):
    dest = tmp_path / "board.ps1"
    result = _run(monkeypatch, capsys, dest=str(dest), **args)
    assert result["changed"] is True, result
    raw = dest.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig") == _cli(capsys, tmp_path, *words)


def test_restart_writes_the_board_that_brings_the_dependents_back(monkeypatch, capsys, tmp_path):
    """Not the bare restart of the one service (its dependents left down): the stops and starts, in order."""
    from ocsps.catalog import load_catalog
    from ocsps.powershell.changeboard import verify_script
    from ocsps.powershell.script import render_action

    dest = tmp_path / "restart.ps1"
    result = _run(
        monkeypatch, capsys, action="restart", service="RTCMEDIARELAY", product="sfb2019", dest=str(dest)
    )
    text = dest.read_text(encoding="utf-8-sig")
    cat = load_catalog()
    product = cat.product("sfb2019")
    bare = render_action(
        "restart", product, cat.service_parameters(product, cat.find_service(product, "RTCMEDIARELAY"))
    )
    steps = [line.split(";")[0] for line in text.splitlines() if line.startswith("# Step ")]
    assert steps == [
        "# Step 1: stop Skype for Business Server Audio/Video Authentication",
        "# Step 2: stop Skype for Business Server Audio/Video Edge",
        "# Step 3: start Skype for Business Server Audio/Video Edge",
        "# Step 4: start Skype for Business Server Audio/Video Authentication",
    ]
    assert bare.body_sha256 not in text
    assert (
        result["body_sha256s"] == list(verify_script(text).body_hashes) and len(result["body_sha256s"]) == 4
    )
    assert "body_sha256" not in result, "four bodies: no single body hash"


def test_one_step_returns_its_body_hash(monkeypatch, capsys, tmp_path):
    dest = tmp_path / "drain.ps1"
    result = _run(monkeypatch, capsys, action="drain", service="RTCMEDSRV", product="sfb2015", dest=str(dest))
    assert result["body_sha256s"] == [result["body_sha256"]]
    assert f"body sha256 {result['body_sha256']}" in dest.read_text(encoding="utf-8-sig")


def test_written_once_and_check_mode_writes_nothing(monkeypatch, capsys, tmp_path):
    dest = tmp_path / "stop.ps1"
    args = {"action": "stop", "service": "RTCMEDSRV", "product": "sfb2019", "dest": str(dest)}
    rehearsed = _run(monkeypatch, capsys, _ansible_check_mode=True, **args)
    assert rehearsed["changed"] is True and not dest.exists()
    assert _run(monkeypatch, capsys, **args)["changed"] is True
    assert _run(monkeypatch, capsys, **args)["changed"] is False


def test_product_choices_are_the_catalog_products():
    from ocsps.catalog import load_catalog

    documented = yaml.safe_load(changeboard_script.DOCUMENTATION)["options"]["product"]["choices"]
    assert changeboard_script.PRODUCTS == documented == list(load_catalog().products)


HOSTILE = [
    ("newline in the computer", {"computer": "srv01\nWrite-Host pwned"}, "computer"),
    ("code in the reason", {"reason": "x'; Remove-Item C:\\ -Recurse; '\x00"}, "reason"),
    ("code in the service", {"service": "RTCMEDSRV'; Stop-Computer; '"}, "RTCMEDSRV"),
    ("an action that is code", {"action": "stop; Stop-Computer"}, "stop; Stop-Computer"),
    ("an unknown product", {"product": "lcs2005"}, "lcs2005"),
    ("force that is not a boolean", {"force": "perhaps"}, "force"),
    ("force on a start", {"action": "start", "force": True}, "Force"),
    ("a restart without a service", {"action": "restart", "service": None}, "service"),
    ("a drain where the product has none", {"action": "drain", "product": "ocs2007r2"}, "drain"),
]


@pytest.mark.parametrize(("case", "bad", "named"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_fails_the_task_and_writes_nothing(monkeypatch, capsys, tmp_path, case, bad, named):
    dest = tmp_path / "board.ps1"
    args = {"action": "stop", "service": "RTCMEDSRV", "product": "sfb2019", "dest": str(dest), **bad}
    result = _run(monkeypatch, capsys, **args)
    assert result.get("failed") is True, result
    assert named in result["msg"] and "internal error" not in result["msg"]
    assert not dest.exists()
