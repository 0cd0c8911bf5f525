"""Which checks exist: every ``[checks.<name>]`` of checks.toml, bound to the module it names.

The data file is the list; a module only has to define ``CHECK``. A check named in the data without a
matching module (or the other way round) is a packaging bug, reported at load time, not mid-run.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache
from typing import Any

from ocsps.catalog import CatalogError
from ocsps.checks.model import Check
from ocsps.checks.spec import load_checks_data
from ocsps.errors import UsageError

__all__ = ["load_checks", "select_checks"]


@cache
def load_checks() -> dict[str, Check[Any]]:
    """Check name -> its implementation, in the order of checks.toml."""
    units: dict[str, Check[Any]] = {}
    for name, spec in load_checks_data().checks.items():
        try:
            module = importlib.import_module(f"ocsps.checks.{spec.module}")
        except ImportError as exc:
            raise CatalogError(
                f"checks.toml: check {name}: module {spec.module} cannot be imported ({exc})"
            ) from None
        unit = getattr(module, "CHECK", None)
        if not isinstance(unit, Check):
            raise CatalogError(f"checks.toml: check {name}: ocsps.checks.{spec.module} defines no CHECK")
        if unit.name != name:
            raise CatalogError(
                f"checks.toml: check {name}: ocsps.checks.{spec.module} implements {unit.name!r}"
            )
        units[name] = unit
    return units


def select_checks(names: Iterable[str]) -> list[str]:
    """The checks asked for, in the order given and without repeats; none given means all of them."""
    known = load_checks()
    wanted = list(dict.fromkeys(n.strip().casefold() for n in names if n.strip()))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UsageError(f"unknown check {unknown[0]!r}; choose from: {', '.join(known)}")
    return wanted or list(known)
