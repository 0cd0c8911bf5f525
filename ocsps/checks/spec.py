"""The preflight rules as data: ``ocsps/catalog/data/checks.toml`` loaded and validated once.

A check's code only chooses an outcome name ("none", "body", "renewed"); the status that outcome carries,
the words shown, the fix and the source cited come from the data file, so that an administrator can
review or correct a rule without reading Python.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from ocsps.catalog import Catalog, CatalogError, load_catalog, read_data

__all__ = [
    "CheckSpec",
    "ChecksData",
    "Outcome",
    "RuleSpec",
    "Status",
    "load_checks_data",
    "parse_checks_data",
    "placeholders",
    "worst",
]


class Status(StrEnum):
    """How a rule came out. ``skip`` means not checked: not applicable, or impossible to check live."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"

    @property
    def rank(self) -> int:
        """Severity for summarising: a check is as bad as its worst finding."""
        return {Status.SKIP: 0, Status.PASS: 1, Status.WARN: 2, Status.FAIL: 3}[self]


def worst(statuses: list[Status]) -> Status:
    """The summary status of several findings; no findings at all means nothing was checked."""
    return max(statuses, key=lambda s: s.rank) if statuses else Status.SKIP


@dataclass(frozen=True)
class Outcome:
    name: str
    status: Status
    text: str


@dataclass(frozen=True)
class RuleSpec:
    """One rule of a check: what it verifies, where the rule comes from, and its possible outcomes."""

    id: str
    title: str
    source: str
    fix: str
    outcomes: Mapping[str, Outcome]
    consequence: str = ""

    def outcome(self, name: str) -> Outcome:
        try:
            return self.outcomes[name]
        except KeyError:
            raise CatalogError(
                f"checks.toml: rule {self.id} has no outcome {name!r}; it has {', '.join(self.outcomes)}"
            ) from None


@dataclass(frozen=True)
class CheckSpec:
    name: str
    module: str
    summary: str
    source: str
    products: tuple[str, ...]
    not_applicable: str
    actions: tuple[str, ...]
    rules: Mapping[str, RuleSpec]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def rule(self, rule_id: str) -> RuleSpec:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise CatalogError(f"checks.toml: check {self.name} has no rule {rule_id!r}") from None

    def setting(self, key: str) -> Any:
        try:
            return self.settings[key]
        except KeyError:
            raise CatalogError(f"checks.toml: check {self.name} has no setting {key!r}") from None

    def applies_to(self, product_id: str) -> bool:
        return product_id in self.products


def placeholders(text: str) -> set[str]:
    """Names a text expects in braces; used to validate the data and by tests."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _str(raw: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise CatalogError(f"checks.toml: {where}: {key} must be text")
    return value


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"checks.toml: {where}: {key} must be a list of text")
    return tuple(value)


def _rule(raw: object, where: str) -> RuleSpec:
    if not isinstance(raw, dict):
        raise CatalogError(f"checks.toml: {where}: every [[rules]] entry must be a table")
    rule_id = _str(raw, "id", where)
    where = f"{where} rule {rule_id}"
    outcomes_raw = raw.get("outcomes")
    if not isinstance(outcomes_raw, dict) or not outcomes_raw:
        raise CatalogError(f"checks.toml: {where}: needs [outcomes.<name>] tables")
    outcomes: dict[str, Outcome] = {}
    for name, spec in outcomes_raw.items():
        if not isinstance(spec, dict):
            raise CatalogError(f"checks.toml: {where}: outcome {name} must be a table")
        status_text = _str(spec, "status", f"{where} outcome {name}")
        try:
            status = Status(status_text)
        except ValueError:
            valid = ", ".join(s.value for s in Status)
            raise CatalogError(
                f"checks.toml: {where} outcome {name}: status {status_text!r}; valid: {valid}"
            ) from None
        outcomes[name] = Outcome(name, status, _str(spec, "text", f"{where} outcome {name}"))
    return RuleSpec(
        id=rule_id,
        title=_str(raw, "title", where),
        source=_str(raw, "source", where),
        fix=_str(raw, "fix", where, default=""),
        consequence=_str(raw, "consequence", where, default=""),
        outcomes=outcomes,
    )


@dataclass(frozen=True)
class ChecksData:
    """Every check's spec, plus the rules shared by all checks (not applicable, could not run)."""

    checks: Mapping[str, CheckSpec]
    common: Mapping[str, RuleSpec]

    def check(self, name: str) -> CheckSpec:
        try:
            return self.checks[name]
        except KeyError:
            raise CatalogError(f"checks.toml has no check {name!r}") from None

    def common_rule(self, rule_id: str) -> RuleSpec:
        try:
            return self.common[rule_id]
        except KeyError:
            raise CatalogError(f"checks.toml has no common rule {rule_id!r}") from None


def parse_checks_data(raw: Mapping[str, Any], catalog: Catalog) -> ChecksData:
    """Build and cross-check the specs: products and actions must exist in the catalog."""
    unknown = sorted(set(raw) - {"checks", "common"})
    if unknown:
        raise CatalogError(f"checks.toml: unknown top-level key {unknown[0]!r}; valid: checks, common")
    common_raw = raw.get("common", {})
    common_rules = common_raw.get("rules", []) if isinstance(common_raw, dict) else None
    if not isinstance(common_rules, list):
        raise CatalogError("checks.toml: [[common.rules]] must be an array of tables")
    common = {r.id: r for r in (_rule(entry, "common") for entry in common_rules)}
    return ChecksData(checks=_checks(raw, catalog), common=common)


def _checks(raw: Mapping[str, Any], catalog: Catalog) -> dict[str, CheckSpec]:
    checks = raw.get("checks")
    if not isinstance(checks, dict) or not checks:
        raise CatalogError("checks.toml: needs [checks.<name>] tables")
    specs: dict[str, CheckSpec] = {}
    problems: list[str] = []
    for name, entry in checks.items():
        where = f"check {name}"
        if not isinstance(entry, dict):
            raise CatalogError(f"checks.toml: {where} must be a table")
        rules_raw = entry.get("rules", [])
        if not isinstance(rules_raw, list) or not rules_raw:
            raise CatalogError(f"checks.toml: {where}: needs [[rules]]")
        rules = [_rule(r, where) for r in rules_raw]
        ids = [r.id for r in rules]
        if len(ids) != len(set(ids)):
            problems.append(f"{where}: duplicate rule ids")
        settings = entry.get("settings", {})
        if not isinstance(settings, dict):
            raise CatalogError(f"checks.toml: {where}: settings must be a table")
        spec = CheckSpec(
            name=name,
            module=_str(entry, "module", where),
            summary=_str(entry, "summary", where),
            source=_str(entry, "source", where),
            products=_strings(entry, "products", where),
            not_applicable=_str(entry, "not_applicable", where),
            actions=_strings(entry, "actions", where),
            rules={r.id: r for r in rules},
            settings=dict(settings),
        )
        problems += [f"{where}: unknown product {p}" for p in spec.products if p not in catalog.products]
        problems += [f"{where}: unknown action {a}" for a in spec.actions if a not in catalog.actions]
        problems += [
            f"{where}: action {a} changes state; checks only read"
            for a in spec.actions
            if a in catalog.actions and catalog.actions[a].changes_state
        ]
        if not spec.module.isidentifier():
            problems.append(f"{where}: module {spec.module!r} is not a module name")
        specs[name] = spec
    if problems:
        raise CatalogError("checks.toml is inconsistent: " + "; ".join(problems))
    return specs


@cache
def load_checks_data() -> ChecksData:
    """Load the packaged checks.toml once per process, validated against the catalog."""
    return parse_checks_data(dict(read_data("checks")), load_catalog())
