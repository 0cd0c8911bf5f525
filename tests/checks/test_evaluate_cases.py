"""Every check's pure steps (parse the recorded outputs, apply the rules) against recorded cases.

A case is ``tests/data/checks/<check>/<name>.json``: the product, the options, the time, what each
request returned (or the session error), and the findings expected as ``[rule, status]`` pairs (compared
as a multiset), with optional ``reason_contains`` snippets. No server and no lab: this is what a check
decides from given facts. See ``tests/data/checks/README.md``.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ocsps.catalog import load_catalog
from ocsps.checks import ActionOutput, CheckResult, context_for, evaluate_outputs, load_checks
from ocsps.checks.runner import session_failed_result
from ocsps.checks.spec import load_checks_data
from ocsps.checks.synthetic import SyntheticOptions
from ocsps.jsonout import to_builtins
from tests.conftest import DATA

CASES = DATA / "checks"


def _cases() -> list[Path]:
    return sorted(CASES.glob("*/*.json"))


def evaluate_case(path: Path) -> tuple[dict[str, Any], CheckResult]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    check = path.parent.name
    product = load_catalog().product(doc["product"])
    now = datetime.fromisoformat(doc["now"].replace("Z", "+00:00"))
    options = SyntheticOptions.from_json(doc.get("options", {}))  # every check's options, plus --pool
    ctx = context_for(check, product, options, host="srv", now=now)
    unit = load_checks()[check]
    unit.validate(ctx)
    if "session_error" in doc:
        return doc, session_failed_result(unit, ctx, doc["session_error"])
    requested = {r.key for r in unit.requests(ctx)}
    outputs = {key: ActionOutput.from_json(value) for key, value in doc["outputs"].items()}
    assert set(outputs) <= requested | {"services"}, (
        f"recorded outputs nobody requests: {set(outputs) - requested}"
    )
    return doc, evaluate_outputs(unit, ctx, outputs)


@pytest.mark.parametrize("path", _cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_check_case(path: Path) -> None:
    doc, result = evaluate_case(path)
    expected = doc["expected"]
    got = Counter((f.rule, f.status.value) for f in result.findings)
    assert got == Counter(tuple(pair) for pair in expected["findings"]), [
        (f.rule, f.status.value, f.reason) for f in result.findings
    ]
    assert result.status.value == expected["status"]
    reasons = "\n".join(f.reason for f in result.findings)
    for snippet in expected.get("reason_contains", []):
        assert snippet in reasons, reasons
    fixes = "\n".join(f.fix for f in result.findings)
    for snippet in expected.get("fix_contains", []):
        assert snippet in fixes, fixes
    for snippet in expected.get("fix_lacks", []):
        assert snippet not in fixes, fixes
    for finding in result.findings:
        assert finding.source, "every finding cites its rule"
        if finding.status.value in ("warn", "fail"):
            assert finding.fix, f"{finding.rule}: a warning or failure says what to do"
    document = to_builtins(result)
    json.dumps(document)  # the --json document can always be written
    assert document["status"] == expected["status"]
    for finding, shown in zip(result.findings, document["findings"], strict=True):
        assert ("fix" in shown) == bool(finding.fix), "an empty fix is left out of the document"


def test_every_check_has_cases() -> None:
    with_cases = {p.parent.name for p in _cases()}
    assert set(load_checks()) <= with_cases


def test_every_outcome_in_the_data_is_reached_by_a_case() -> None:
    """An outcome no case reaches is either dead data or an untested path; both deserve a look.

    The shared "applies / not-applicable" outcome is left to the CLI tests, which run checks on products
    they do not apply to.
    """
    reached: set[tuple[str, str]] = set()
    for path in _cases():
        _, result = evaluate_case(path)
        reached |= {
            (f.check if f.rule not in common_rules() else "common", f"{f.rule}/{f.outcome}")
            for f in result.findings
        }
    data = load_checks_data()
    expected = {
        (name, f"{rule.id}/{outcome}")
        for name, spec in data.checks.items()
        for rule in spec.rules.values()
        for outcome in rule.outcomes
    }
    expected |= {
        ("common", f"{rule.id}/{o}")
        for rule in data.common.values()
        if rule.id != "applies"
        for o in rule.outcomes
    }
    assert sorted(expected - reached) == []


def common_rules() -> set[str]:
    return set(load_checks_data().common)
