"""What every preflight check is made of, and what it produces.

A check is three pure steps around one impure one, in the manner of a pyinfra fact:

1. ``requests(ctx)``: which read-only catalog actions to run, with which values (pure);
2. the runner runs them on the server (the only I/O);
3. ``facts(outputs, ctx)``: the objects that came back, parsed into a typed facts record (pure);
4. ``evaluate(facts, ctx)``: the catalog rules applied to the facts, as findings (pure).

Steps 3 and 4 are tested from recorded outputs in ``tests/data/checks`` without any server. Adding a check
is one module defining a :class:`Check` subclass and ``CHECK``, plus its entry in ``checks.toml``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from ocsps.catalog import Catalog, CatalogError, Product
from ocsps.checks.spec import ChecksData, CheckSpec, RuleSpec, Status, worst
from ocsps.errors import OcspsError
from ocsps.results.base import JsonValue

__all__ = [
    "ActionOutput",
    "Check",
    "CheckContext",
    "CheckNotRun",
    "CheckOptions",
    "CheckResult",
    "Finding",
    "Request",
]

F = TypeVar("F")


class CheckNotRun(OcspsError):
    """A fact the check cannot do without is missing; the runner reports the check as not run."""

    def __init__(self, outcome: str, **values: object) -> None:
        self.outcome = outcome
        self.values = values
        super().__init__(f"check not run ({outcome})")


class Finding(msgspec.Struct, frozen=True, omit_defaults=True):
    """One rule's outcome on one host, with the words and the citation taken from checks.toml.

    A struct whose ``--json`` form leaves out ``fix`` and ``consequence`` when they are empty (a pass
    says neither).
    """

    check: str
    rule: str
    outcome: str
    status: Status
    reason: str
    source: str
    fix: str = ""
    consequence: str = ""


class _Values(dict[str, str]):
    def __init__(self, rule: RuleSpec, values: Mapping[str, object]) -> None:
        super().__init__({k: _text(v) for k, v in values.items()})
        self.rule = rule

    def __missing__(self, key: str) -> str:
        raise CatalogError(
            f"checks.toml: rule {self.rule.id} names {{{key}}}, which its check does not supply"
        )


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "none"
    return str(value)


def make_finding(check: str, rule: RuleSpec, outcome_name: str, values: Mapping[str, object]) -> Finding:
    """Fill a rule's texts with ``values``; the fix and consequence are only shown when not passing."""
    outcome = rule.outcome(outcome_name)
    fill = _Values(rule, values)
    shows_fix = outcome.status is not Status.PASS
    shows_consequence = outcome.status in (Status.WARN, Status.FAIL)
    return Finding(
        check=check,
        rule=rule.id,
        outcome=outcome.name,
        status=outcome.status,
        reason=outcome.text.format_map(fill),
        source=rule.source.format_map(fill),
        fix=rule.fix.format_map(fill) if shows_fix else "",
        consequence=rule.consequence.format_map(fill) if shows_consequence else "",
    )


@dataclass(frozen=True)
class CheckOptions:
    """What the administrator told ``ocsps check``; each check reads the options it knows."""

    queue_path: str | None = None
    service: str | None = None
    changed: tuple[str, ...] = ()
    baseline: Mapping[str, Mapping[str, object]] | None = None
    certificate_renewed_same_subject: bool = False
    roles: tuple[str, ...] = ()
    key_readers: tuple[str, ...] = ()
    event_window_hours: float | None = None
    """How far back the event logs are read (``--since``); None: the check's own default."""
    lcscmd_locations: tuple[str, ...] | None = None
    """Where LCSCmd.exe is looked for when the config file's ``[lcscmd] path`` names it (the place a
    deactivation run would use); empty: the catalog's known locations; None (unset): ``run_checks``
    reads the config file, so every caller honours the same path."""

    @property
    def event_window(self) -> timedelta | None:
        return None if self.event_window_hours is None else timedelta(hours=self.event_window_hours)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CheckOptions:
        """Options as test cases write them (the same keys as the ``--json`` document)."""
        hours = doc.get("event_window_hours")
        return cls(
            queue_path=doc.get("queue_path"),
            service=doc.get("service"),
            changed=tuple(doc.get("changed", ())),
            baseline=doc.get("baseline"),
            certificate_renewed_same_subject=bool(doc.get("certificate_renewed_same_subject", False)),
            roles=tuple(doc.get("roles", ())),
            key_readers=tuple(doc.get("key_readers", ())),
            event_window_hours=None if hours is None else float(hours),
            lcscmd_locations=tuple(doc["lcscmd_locations"]) if "lcscmd_locations" in doc else None,
        )


@dataclass(frozen=True)
class CheckContext:
    """Everything a check's pure steps may consult: the product, the rules, the options and the time."""

    product: Product
    catalog: Catalog
    spec: CheckSpec
    data: ChecksData
    options: CheckOptions = field(default_factory=CheckOptions)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    host: str = ""

    def finding(self, rule_id: str, outcome: str, **values: object) -> Finding:
        base: dict[str, object] = {"product": self.product.id, "host": self.host}
        base.update(values)
        return make_finding(self.spec.name, self.spec.rule(rule_id), outcome, base)

    def common_finding(self, rule_id: str, outcome: str, **values: object) -> Finding:
        base: dict[str, object] = {
            "product": self.product.id,
            "host": self.host,
            "check_source": self.spec.source,
        }
        base.update(values)
        return make_finding(self.spec.name, self.data.common_rule(rule_id), outcome, base)


@dataclass(frozen=True)
class Request:
    """One read-only action a check needs, under the key its facts step looks it up by."""

    key: str
    action: str
    values: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionOutput:
    """What one request returned: the objects, and the first error record's message if there was one."""

    objects: tuple[object, ...] = ()
    error: str | None = None

    @classmethod
    def from_json(cls, doc: object) -> ActionOutput:
        """A recorded output: a list of objects, or ``{"objects": [...], "error": "..."}``."""
        if isinstance(doc, list):
            return cls(tuple(doc))
        if isinstance(doc, Mapping):
            return cls(tuple(doc.get("objects", ())), doc.get("error"))
        raise ValueError("a recorded output is a list of objects or a table with objects and error")


@dataclass(frozen=True)
class CheckResult:
    """One check on one host: its summary status, its findings and the facts they rest on."""

    check: str
    host: str
    product: str
    findings: tuple[Finding, ...]
    source: str
    facts: JsonValue = None
    status: Status = field(init=False, compare=False)
    """The worst status among the findings."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", worst([f.status for f in self.findings]))


class Check(ABC, Generic[F]):
    """Base of every check; subclasses set ``name`` to their checks.toml key."""

    name: ClassVar[str]

    def validate(self, ctx: CheckContext) -> None:
        """Refuse bad options for this product before anything is sent (raise UsageError)."""
        return None

    @abstractmethod
    def requests(self, ctx: CheckContext) -> Sequence[Request]:
        """The read-only actions to run; pure."""

    @abstractmethod
    def facts(self, outputs: Mapping[str, ActionOutput], ctx: CheckContext) -> F:
        """Parse what the actions returned; pure. Raise CheckNotRun when an essential fact is missing."""

    @abstractmethod
    def evaluate(self, facts: F, ctx: CheckContext) -> list[Finding]:
        """Apply the rules to the facts; pure."""

    def facts_json(self, facts: F) -> JsonValue:
        """The facts for ``--json``, so that an administrator sees what each verdict rests on.

        A check's facts record is its document (see ``docs/architecture.md``, JSON output).
        """
        from ocsps.jsonout import to_builtins

        document: JsonValue = to_builtins(facts)
        return document

    def session_failed(self, error: str, ctx: CheckContext) -> list[Finding] | None:
        """Findings when the session itself could not open; None means the generic 'not run'."""
        return None
