"""Preflight checks (``ocsps check``): catch before a maintenance window what would make it fail.

Each check is one module here plus its entry in ``ocsps/catalog/data/checks.toml``: the module says
which read-only actions to run, parses what comes back and picks an outcome per rule; the data says what
each outcome means (pass, warn, fail, skip), in which words, with which fix and citing which source.
Only :mod:`ocsps.checks.runner` talks to a server.
"""

from __future__ import annotations

from ocsps.checks.model import (
    ActionOutput,
    Check,
    CheckContext,
    CheckNotRun,
    CheckOptions,
    CheckResult,
    Finding,
    Request,
)
from ocsps.checks.registry import load_checks, select_checks
from ocsps.checks.runner import complete_options, context_for, evaluate_outputs, run_checks, validate_checks
from ocsps.checks.spec import ChecksData, CheckSpec, RuleSpec, Status, load_checks_data

__all__ = [
    "ActionOutput",
    "Check",
    "CheckContext",
    "CheckNotRun",
    "CheckOptions",
    "CheckResult",
    "CheckSpec",
    "ChecksData",
    "Finding",
    "Request",
    "RuleSpec",
    "Status",
    "complete_options",
    "context_for",
    "evaluate_outputs",
    "load_checks",
    "load_checks_data",
    "run_checks",
    "select_checks",
    "validate_checks",
]
