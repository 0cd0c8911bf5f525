"""The lab's own facts: pool quorum, readiness, services (dependencies, events), LCSCmd.exe, files.

The lab checks ocsps, so it must not decide with ocsps's tables. These facts are written from the
documentation into the TOML files beside this module (each cites its source) and loaded here, once; the
catalog stays the lab's dictionary for names and display names only.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["LabFacts", "PoolRule", "ServiceEvents", "load_lab_facts"]


class LabFactsError(ValueError):
    """A lab facts file is malformed: a packaging or editing mistake, caught at load time."""


@dataclass(frozen=True)
class PoolRule:
    """For pools of one of ``sizes`` servers, ``up`` must run among the first ``first`` (0: among all)."""

    sizes: tuple[int, ...]
    up: int
    first: int = 0

    def enough(self, members: Sequence[str], down: set[str]) -> bool:
        """Whether the pool keeps quorum with the casefolded names in ``down`` not running."""
        counted = members[: self.first] if self.first else members
        return sum(1 for m in counted if m.casefold() not in down) >= self.up


@dataclass(frozen=True)
class ServiceEvents:
    """The events one service logs, by moment; ``roles``: only on servers of these roles (empty: all)."""

    service: str
    roles: tuple[str, ...]
    events: Mapping[str, int]


@dataclass(frozen=True)
class LabFacts:
    pool_rules: tuple[PoolRule, ...]
    ready: str
    busy: str
    insufficient: str
    readiness_products: frozenset[str]
    front_end_service: str
    dependencies: Mapping[str, Mapping[str, tuple[str, ...]]]  # product id -> service key -> prerequisites
    lcscmd_path: str
    program_files: str
    deactivation_sequence: tuple[tuple[str, ...], ...]  # role keys, step by step (deactivation.toml)
    lcscmd_forms: Mapping[str, tuple[tuple[str, ...], ...]]  # role key -> accepted forms (lcscmd.toml)
    event_logs: Mapping[str, str]  # product id -> the log its services write to
    service_events: tuple[ServiceEvents, ...]

    def pool_rule(self, size: int) -> PoolRule | None:
        return next((r for r in self.pool_rules if size in r.sizes), None)

    def requires(self, product: str, service_key: str) -> tuple[str, ...]:
        return self.dependencies.get(product, {}).get(service_key, ())

    def events_for(self, service_name: str, roles: Sequence[str]) -> dict[str, int]:
        """Moment (drain-started, stopped...) -> event id that ``service_name`` logs on such a server."""
        folded = service_name.casefold()
        for entry in self.service_events:
            if entry.service.casefold() == folded and (not entry.roles or set(entry.roles) & set(roles)):
                return dict(entry.events)
        return {}

    def deactivation_step(self, role_key: str) -> int | None:
        """Where ``role_key`` comes in the documented deactivation sequence (None: not in it)."""
        return next((i for i, step in enumerate(self.deactivation_sequence) if role_key in step), None)


def _read(name: str) -> dict[str, Any]:
    text = resources.files("ocsps.lab.facts").joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _texts(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise LabFactsError(f"{where}: expected a non-empty list of text values")
    return tuple(value)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LabFactsError(f"{where}: expected a whole number of at least 0")
    return value


@cache
def load_lab_facts() -> LabFacts:
    quorum, services, windows = _read("quorum.toml"), _read("services.toml"), _read("windows.toml")
    sequence = _read("deactivation.toml")["sequence"]
    events = _read("events.toml")
    forms: dict[str, tuple[tuple[str, ...], ...]] = {}
    for index, raw in enumerate(_read("lcscmd.toml")["deactivate"], 1):
        where = f"lcscmd.toml deactivate #{index}"
        forms[str(raw["role"])] = tuple(_texts(form, where) for form in raw["forms"])
    service_events = []
    for index, raw in enumerate(events["service_events"], 1):
        where = f"events.toml service_events #{index}"
        moments = {k: _count(v, f"{where} {k}") for k, v in raw.items() if k not in ("service", "roles")}
        roles = _texts(raw["roles"], where) if "roles" in raw else ()
        service_events.append(ServiceEvents(str(raw["service"]), roles, moments))
    if not isinstance(sequence, list):
        raise LabFactsError("deactivation.toml: sequence must be a list of steps")
    rules = []
    for index, raw in enumerate(quorum["pool_quorum"], 1):
        where = f"quorum.toml pool_quorum #{index}"
        sizes = raw["sizes"]
        if not isinstance(sizes, list) or not sizes:
            raise LabFactsError(f"{where}: sizes must list pool sizes")
        rule = PoolRule(
            tuple(_count(s, where) for s in sizes), _count(raw["up"], where), _count(raw["first"], where)
        )
        if rule.up < 1 or (rule.first and rule.first < rule.up):
            raise LabFactsError(f"{where}: up must be at least 1 and no more than first")
        rules.append(rule)
    readiness = quorum["readiness"]
    dependencies: dict[str, dict[str, tuple[str, ...]]] = {}
    for index, raw in enumerate(services["dependency"], 1):
        where = f"services.toml dependency #{index}"
        for product in _texts(raw["products"], where):
            needs = dependencies.setdefault(product, {}).setdefault(str(raw["service"]), ())
            dependencies[product][str(raw["service"])] = needs + _texts(raw["requires"], where)
    return LabFacts(
        pool_rules=tuple(rules),
        ready=str(readiness["ready"]),
        busy=str(readiness["busy"]),
        insufficient=str(readiness["insufficient"]),
        readiness_products=frozenset(_texts(readiness["products"], "quorum.toml readiness")),
        front_end_service=str(quorum["front_end_service"]),
        dependencies=dependencies,
        lcscmd_path=str(windows["lcscmd_path"]),
        program_files=str(windows["program_files"]),
        lcscmd_forms=forms,
        event_logs={str(k): str(v) for k, v in events["logs"].items()},
        service_events=tuple(service_events),
        deactivation_sequence=tuple(
            _texts(step, f"deactivation.toml step #{i}") for i, step in enumerate(sequence, 1)
        ),
    )
