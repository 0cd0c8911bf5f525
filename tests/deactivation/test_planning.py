"""The deactivation planner and plan checker, driven by the cases in tests/data/deactivation_plans.

``requests/``  a planning request and the plan it must give (steps, arguments, checklist) or the error.
``tampered/``  a plan written from a request, then edited (steps swapped, removed, arguments changed):
               ``check_plan`` must refuse it with the message given, or accept it (``error: null``).
``state_logs/`` what LcsCmd's state check returned and which roles the reading must show as activated.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ocsps.catalog import Catalog
from ocsps.deactivation.plan import (
    DeactivationPlan,
    StateReading,
    check_acknowledgements,
    check_lcscmd_overrides,
    check_plan,
    choose_log_path,
    load_lcscmd_facts,
    order_roles,
    plan_deactivation,
    plan_document,
    read_state_outcome,
)
from ocsps.deactivation.scripts import change_board_steps, step_script, step_sha256
from ocsps.errors import UsageError
from ocsps.results import LcsCmdOutcome
from tests.conftest import DATA

CASES = DATA / "deactivation_plans"
SE_ROLES = ["av-conferencing", "web-conferencing", "web-components", "front-end"]


def _cases(folder: str) -> list[Path]:
    return sorted((CASES / folder).glob("*.json"))


def _reading(given: dict[str, Any]) -> StateReading:
    activated = given["activated"]
    return StateReading(None if activated is None else tuple(activated), reason=given.get("reason"))


def _plan(request: dict[str, Any], catalog: Catalog) -> DeactivationPlan:
    reading = request.get("reading")
    facts = load_lcscmd_facts(catalog, request.get("overrides"))
    return plan_deactivation(
        request["computer"],
        product=request["product"],
        roles=request.get("roles", []),
        all_roles=request.get("all", False),
        reading=None if reading is None else _reading(reading),
        components=request.get("components", []),
        components_found=request.get("components_found"),
        last_in_pool=request.get("last_in_pool"),
        catalog=catalog,
        facts=facts,
    )


def test_case_folders_are_populated() -> None:
    assert len(_cases("requests")) >= 25
    assert len(_cases("tampered")) >= 15
    assert len(_cases("state_logs")) >= 10


@pytest.mark.parametrize("path", _cases("requests"), ids=lambda p: p.stem)
def test_planning_request(path: Path, catalog: Catalog) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    if "error" in case:
        with pytest.raises(UsageError) as caught:
            _plan(case["request"], catalog)
        assert case["error"] in caught.value.message
        assert "\n" not in caught.value.message
        return
    plan = _plan(case["request"], catalog)
    expected = case["expected"]
    summary = [s.do if s.role is None else f"{s.do} {s.role}" for s in plan.steps]
    if "steps" in expected:
        assert summary == expected["steps"]
    if "roles_source" in expected:
        assert plan.roles_source == expected["roles_source"]
    by_role = {s.role: s for s in plan.deactivations}
    for role, arguments in expected.get("arguments", {}).items():
        assert list(by_role[role].arguments) == arguments
    for role, documented in expected.get("documented", {}).items():
        assert by_role[role].documented is documented
    if "checklist" in expected:
        assert [c.id for c in plan.checklist] == expected["checklist"]
    for text in expected.get("notes_contain", []):
        assert any(text in note for note in plan.notes), plan.notes
    # every plan the planner writes passes the checker, and survives a JSON round trip unchanged
    facts = load_lcscmd_facts(catalog, case["request"].get("overrides"))
    again = DeactivationPlan.from_json(json.loads(json.dumps(plan_document(plan))))
    assert again == plan
    assert check_plan(again, catalog, facts) == plan


def _mutate(doc: dict[str, Any], op: dict[str, Any]) -> None:
    steps: list[dict[str, Any]] = doc["steps"]
    if op["op"] == "swap":
        a, b = op["a"] - 1, op["b"] - 1
        steps[a], steps[b] = steps[b], steps[a]
    elif op["op"] == "remove_step":
        removed = steps.pop(op["step"] - 1)
        if not op.get("keep_role") and removed.get("role"):
            doc["roles"].remove(removed["role"])
    elif op["op"] in ("set", "delete"):
        target: Any = doc
        for key in op["path"][:-1]:
            target = target[key]
        if op["op"] == "set":
            target[op["path"][-1]] = op["value"]
        else:
            del target[op["path"][-1]]
        return
    for number, step in enumerate(steps, 1):  # keep the plan self-consistent apart from the edit
        step["step"] = number
    if op["op"] == "swap":
        doc["roles"] = [s["role"] for s in steps if s.get("role")]


@pytest.mark.parametrize("path", _cases("tampered"), ids=lambda p: p.stem)
def test_tampered_plan(path: Path, catalog: Catalog) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    doc = copy.deepcopy(plan_document(_plan(case["base"], catalog)))
    for op in case["mutate"]:
        _mutate(doc, op)
    facts = load_lcscmd_facts(catalog)
    if case["error"] is None:
        check_plan(DeactivationPlan.from_json(doc), catalog, facts)
        return
    with pytest.raises(UsageError) as caught:
        check_plan(DeactivationPlan.from_json(doc), catalog, facts)
    assert case["error"] in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("path", _cases("state_logs"), ids=lambda p: p.stem)
def test_state_reading(path: Path, catalog: Catalog) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    outcome = LcsCmdOutcome.create(exit_code=case["exit_code"], log=case["log"], log_path=r"C:\t\state.log")
    reading = read_state_outcome(outcome, case["product"], catalog)
    expected = case["expected"]
    if expected["activated"] is None:
        assert reading.activated is None
        assert reading.reason is not None and expected["reason_contains"] in reading.reason
        return
    assert reading.reason is None
    assert list(reading.activated or ()) == expected["activated"]
    assert list(reading.not_activated) == expected["not_activated"]
    assert reading.log_path == r"C:\t\state.log"


def test_order_covers_every_role_of_every_lcscmd_product(catalog: Catalog) -> None:
    """The documented sequence, end to end, for R2 (the longest one) and the group order after it."""
    facts = load_lcscmd_facts(catalog)
    assert order_roles(reversed(list(catalog.roles)), catalog, facts) == [
        "uc-applications",
        "application-host",
        "application-sharing",
        "av-conferencing",
        "web-conferencing",
        "web-components",
        "front-end",
        "front-end-ee",
        "archiving-cdr",
        "mediation",
        "edge",
    ]


def test_acknowledgements(catalog: Catalog) -> None:
    plan = _plan({"computer": "med01.contoso.com", "product": "ocs2007", "roles": ["mediation"]}, catalog)
    acked, missing = check_acknowledgements(plan, ["backups,off-peak", "calls-drained"])
    assert [c.id for c in acked] == ["backups", "off-peak", "calls-drained"]
    assert [c.id for c in missing] == ["all-roles-listed"]
    with pytest.raises(UsageError, match="'sessions-drained' is not on this plan's checklist; its items"):
        check_acknowledgements(plan, ["sessions-drained"])


def test_log_paths_are_new_per_step_and_run(catalog: Catalog) -> None:
    from datetime import UTC, datetime

    plan = _plan({"computer": "ocs01.contoso.com", "product": "ocs2007r2", "roles": ["front-end"]}, catalog)
    facts = load_lcscmd_facts(catalog, {"log_directory": "D:\\Logs\\"})
    when = datetime(2024, 5, 1, 22, 30, 5, 123456, tzinfo=UTC)
    path = choose_log_path(facts, plan.step(2), when)
    assert path == r"D:\Logs\ocsps-deactivate-front-end-s2-20240501-223005-123456Z.log"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"roles": {"frontend": {"args": ["/Server"]}}}, "[lcscmd].roles.frontend: unknown role"),
        (
            {"roles": {"front-end": {"arg": ["/Server"]}}},
            "unknown key 'arg' (did you mean args?); valid keys: args, state_names",
        ),
        ({"roles": {"front-end": {"args": []}}}, "args: must not be empty"),
        ({"roles": {"front-end": {"args": ["/Server:{host}"]}}}, "unknown placeholder {host}"),
        ({"state_args": ["/Server:{fqdn}", "/Role:{role}"]}, "unknown placeholder {role}"),
        ({"path": 5}, "[lcscmd].path: expected str, got int 5"),
        ({"extra_args": "/XML"}, "extra_args: expected array, got str '/XML'"),
        (
            {"log_dir": "C:\\x"},
            "unknown key 'log_dir' (did you mean log_directory?); valid keys: path, log_directory",
        ),
        ({"path": "C:\\x\u0000.exe"}, "U+0000"),
        ({"roles": []}, "roles: expected table, got array"),
        (
            {"roles": {"front-end": {"args": ["/Server:{fqdn}", '/Role:"SE"', "/Action:Deactivate"]}}},
            "holds a double quote; PowerShell 2.0 splits such an argument",
        ),
        (
            {"extra_args": ['/L:"C:\\x y.log"']},
            "[lcscmd].extra_args: '/L:\"C:\\\\x y.log\"' holds a double quote",
        ),
        ({"state_args": ["/Server:{fqdn}", '"/Role:{check_role}"']}, "holds a double quote"),
    ],
)
def test_config_overrides_are_checked(table: dict[str, Any], message: str, catalog: Catalog) -> None:
    with pytest.raises(UsageError) as caught:
        check_lcscmd_overrides(table, "[lcscmd]", catalog)
    assert message in caught.value.message


def test_config_file_lcscmd_table(tmp_path: Path) -> None:
    from ocsps.remote.profiles import load_config

    path = tmp_path / "config.toml"
    path.write_text(
        '[lcscmd]\nlog_directory = "D:\\\\Logs"\n[lcscmd.roles.mediation]\nargs = ["/Mediation:{fqdn}", '
        '"/Action:Deactivate"]\nstate_names = ["Mediation Server role"]\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.lcscmd["log_directory"] == "D:\\Logs"
    facts = load_lcscmd_facts(overrides=config.lcscmd)
    assert facts.commands["mediation"].state_names == ("Mediation Server role",)
    assert facts.commands["mediation"].source == "config"
    assert "log_directory" in facts.overridden
    path.write_text("[lcscmd.roles.nope]\nargs = ['/x']\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"config\.toml: lcscmd\.roles\.nope: unknown role"):
        load_config(path)
    path.write_text(
        "[lcscmd.roles.mediation]\nargs = ['/Mediation:{fqdn}', '/Note:\"a b\"']\n", encoding="utf-8"
    )
    with pytest.raises(UsageError, match=r"holds a double quote; PowerShell 2\.0 splits such an argument"):
        load_config(path)


def test_change_board_steps_follow_the_plan(catalog: Catalog) -> None:
    plan = _plan(
        {
            "computer": "ocs01.contoso.com",
            "product": "ocs2007r2",
            "roles": ["front-end", "web-components"],
            "reading": {"activated": ["front-end", "web-components"]},
        },
        catalog,
    )
    steps = change_board_steps(plan, catalog=catalog)
    hashes = [step_sha256(step_script(plan, s, catalog=catalog)) for s in plan.steps]
    assert [f", step sha256 {h}]" in s.label for s, h in zip(steps[1:], hashes, strict=True)] == [True] * 3
    assert [re.sub(r", step sha256 \w+\]", "]", s.label) for s in steps] == [
        "Confirm the precautions",
        "Stop every Office Communications Server service [plan step 1]",
        "Deactivate Web Components Server [plan step 2]",
        "Deactivate Front End Server (Standard Edition) [plan step 3]",
    ]
    assert steps[0].rendered.bound_parameters["LcsCmdPath"] == plan.lcscmd_path  # checked before the stop
    assert steps[1].rendered.bound_parameters == {"Force": True, "Operation": "Stop"}
    deactivate = steps[3].rendered.bound_parameters
    assert deactivate["RequireSuccess"] is True and "LogPath" not in deactivate
    assert deactivate["LogPrefix"] == "ocsps-deactivate-front-end-s3"
    assert [s.label for s in change_board_steps(plan, from_step=3, catalog=catalog)][1:] == [
        f"Deactivate Front End Server (Standard Edition) [plan step 3, step sha256 {hashes[2]}]"
    ]
    with pytest.raises(UsageError, match="no step 9"):
        change_board_steps(plan, from_step=9, catalog=catalog)


def test_step_sha256_covers_what_each_step_runs(catalog: Catalog) -> None:
    """Every deactivation runs the same script body; the step sha256 tells the steps apart."""
    import dataclasses

    plan = _plan({"computer": "ocs01.contoso.com", "product": "ocs2007r2", "roles": SE_ROLES}, catalog)
    board = [step_script(plan, s, change_board=True, catalog=catalog) for s in plan.steps]
    assert len({r.body_sha256 for r in board[1:]}) == 1  # the body hash alone cannot tell them apart
    hashes = [step_sha256(r) for r in board]
    assert len(set(hashes)) == len(hashes)
    step = plan.steps[1]
    run = step_script(plan, step, log_path="C:\\Windows\\Temp\\x.log", catalog=catalog)
    assert step_sha256(run) == hashes[1]  # the log file name is chosen at run time: not covered
    edited = dataclasses.replace(step, arguments=("/Server:ocs02.contoso.com", *step.arguments[1:]))
    assert step_sha256(step_script(plan, edited, catalog=catalog)) != hashes[1]
    moved = step_script(plan, step, lcscmd_path="D:\\OCS\\LCSCmd.exe", catalog=catalog)
    assert step_sha256(moved) != hashes[1]
