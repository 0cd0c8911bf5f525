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
from typing import Annotated, Any

import msgspec

from ocsps.catalog import Catalog, CatalogError, load_catalog, read_data
from ocsps.errors import UsageError
from ocsps.shapes import convert

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


class _OutcomeShape(msgspec.Struct, forbid_unknown_fields=True):
    status: Status
    text: str


class _RuleShape(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    title: str
    source: str
    outcomes: Annotated[dict[str, _OutcomeShape], msgspec.Meta(min_length=1)]
    fix: str = ""
    consequence: str = ""

    def spec(self) -> RuleSpec:
        outcomes = {name: Outcome(name, o.status, o.text) for name, o in self.outcomes.items()}
        return RuleSpec(self.id, self.title, self.source, self.fix, outcomes, self.consequence)


class _CheckShape(msgspec.Struct, forbid_unknown_fields=True):
    module: str
    summary: str
    source: str
    not_applicable: str
    rules: Annotated[list[_RuleShape], msgspec.Meta(min_length=1)]
    products: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class _CommonShape(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[_RuleShape] = msgspec.field(default_factory=list)


class _ChecksFile(msgspec.Struct, forbid_unknown_fields=True):
    checks: Annotated[dict[str, _CheckShape], msgspec.Meta(min_length=1)]
    common: _CommonShape = msgspec.field(default_factory=_CommonShape)


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
    try:
        shape = convert(raw, _ChecksFile, path="checks.toml: ")
    except UsageError as exc:
        raise CatalogError(exc.message) from None
    common = {r.id: r for r in (rule.spec() for rule in shape.common.rules)}
    specs: dict[str, CheckSpec] = {}
    problems: list[str] = []
    for name, entry in shape.checks.items():
        where = f"check {name}"
        rules = [r.spec() for r in entry.rules]
        if len({r.id for r in rules}) != len(rules):
            problems.append(f"{where}: duplicate rule ids")
        spec = CheckSpec(
            name=name,
            module=entry.module,
            summary=entry.summary,
            source=entry.source,
            products=entry.products,
            not_applicable=entry.not_applicable,
            actions=entry.actions,
            rules={r.id: r for r in rules},
            settings=dict(entry.settings),
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
    return ChecksData(checks=specs, common=common)


@cache
def load_checks_data() -> ChecksData:
    """Load the packaged checks.toml once per process, validated against the catalog."""
    return parse_checks_data(dict(read_data("checks")), load_catalog())
