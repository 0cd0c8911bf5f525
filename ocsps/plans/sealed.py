"""Plan files: what a change board approved, sealed with a sha256 so an edited plan is refused.

A plan is JSON: ``{"ocsps_plan": kind, "format": 1, "generated_by": ..., "plan": {...}, "sha256": ...}``
where the hash covers the canonical JSON of everything but itself, and the file must be byte for byte what
``save_plan`` wrote. Commands that run plans load them through ``load_plan``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocsps import __version__
from ocsps.catalog import Catalog, load_catalog
from ocsps.errors import UsageError
from ocsps.powershell.changeboard import Step

PLAN_FORMAT = 1
"""The plan file's format. Files written before the field existed have none and read as format 1."""
_SEALED = ("ocsps_plan", "generated_by", "plan")
_FIELDS = frozenset({*_SEALED, "sha256"})


def _digest(doc: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the sealed fields (kind, format, generator and plan).

    ``format`` is covered when present, so a file written before it existed keeps its hash.
    """
    sealed = {name: doc.get(name) for name in _SEALED}
    if "format" in doc:
        sealed["format"] = doc["format"]
    canonical = json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def seal(kind: str, plan: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ocsps_plan": kind,
        "format": PLAN_FORMAT,
        "generated_by": f"ocsps {__version__}",
        "plan": dict(plan),
    }
    doc["sha256"] = _digest(doc)
    return doc


def _file_text(doc: Mapping[str, Any]) -> str:
    """A plan file's exact text: ``save_plan`` writes it, ``parse_plan`` expects it byte for byte."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def save_plan(path: Path, kind: str, plan: Mapping[str, Any]) -> None:
    from ocsps.localfiles import check_output_target

    check_output_target(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(_file_text(seal(kind, plan)), encoding="utf-8")
        tmp.replace(path)
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError, ValueError):
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write plan {path}: {getattr(exc, 'strerror', None) or exc}") from None


def parse_plan(text: str, kind: str, *, source: str, reapprove: bool = False) -> dict[str, Any]:
    """Validate a sealed plan; an edited plan is refused unless ``reapprove`` is given.

    The hash covers the kind, the generator and the plan; the file must also be byte for byte what
    ``save_plan`` wrote, so that an edit the hash does not see (white space, an added field) is refused as
    well: what runs is exactly what was approved, down to the byte.
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{source}: not a plan file ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("plan"), dict):
        raise UsageError(f"{source}: not an ocsps plan file")
    if doc.get("ocsps_plan") != kind:
        raise UsageError(f"{source}: this is a {doc.get('ocsps_plan')!r} plan, expected {kind!r}")
    if doc.get("format", PLAN_FORMAT) != PLAN_FORMAT:
        raise UsageError(
            f"{source}: plan format {doc.get('format')!r} is not one this ocsps reads ({PLAN_FORMAT}); "
            "use the ocsps version that wrote it"
        )
    plan: dict[str, Any] = doc["plan"]
    if _digest(doc) != doc.get("sha256") and not reapprove:
        raise UsageError(
            f"{source}: the plan was changed after it was written (sha256 mismatch); "
            "review it and pass --reapprove to accept the edit"
        )
    if (set(doc) - {"format"} != _FIELDS or text != _file_text(doc)) and not reapprove:
        raise UsageError(
            f"{source}: the plan file was changed after it was written (it is not byte for byte what "
            "ocsps wrote); review it and pass --reapprove to accept the edit"
        )
    return plan


def load_plan(path: Path, kind: str, *, reapprove: bool = False) -> dict[str, Any]:
    from ocsps.localfiles import read_text_bounded

    text = read_text_bounded(path, what="plan", encoding="utf-8")
    return parse_plan(text, kind, source=str(path), reapprove=reapprove)


@dataclass(frozen=True)
class PlanVerification:
    """Whether a sealed plan file is intact, and what it says it is for (read from the file itself).

    The plan's counterpart of :class:`ocsps.powershell.changeboard.Verification`: ``is_ocsps`` is false when
    the text is not a sealed plan at all; the kind, targets and step count of a modified file are what the
    file says, not to be trusted.
    """

    ok: bool
    reason: str
    is_ocsps: bool = True
    kind: str = ""
    generated_by: str = ""
    sha256: str = ""
    targets: Mapping[str, object] = field(default_factory=dict)
    steps: int | None = None


_TARGET_FIELDS = ("computer", "product", "roles", "pool")


def verify_plan(text: str, source: str) -> PlanVerification:
    """Check that a plan file is byte for byte what ``save_plan`` wrote and its sha256 matches.

    Any plan kind is accepted (restart, deactivation, pool roll): the seal is the same for all of them.
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        doc = None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("ocsps_plan"), str)
        or not isinstance(doc.get("plan"), dict)
    ):
        return PlanVerification(False, "not an ocsps sealed plan", is_ocsps=False)
    kind: str = doc["ocsps_plan"]
    plan: dict[str, Any] = doc["plan"]
    targets = {
        key: plan[key] for key in _TARGET_FIELDS if isinstance(plan.get(key), str | list) and plan.get(key)
    }
    steps = len(plan["steps"]) if isinstance(plan.get("steps"), list) else None

    def verdict(ok: bool, reason: str) -> PlanVerification:
        generated_by, sha = str(doc.get("generated_by", "")), str(doc.get("sha256", ""))
        return PlanVerification(ok, reason, True, kind, generated_by, sha, targets, steps)

    try:
        parse_plan(text, kind, source=source)
    except UsageError as exc:
        return verdict(False, exc.message)
    return verdict(True, "plan matches its sha256 and is byte for byte what ocsps wrote")


def restart_steps(plan: Mapping[str, Any], catalog: Catalog | None = None) -> list[Step]:
    """A restart plan's steps as rendered stop/start actions, in the plan's order."""
    from ocsps.plans.restart import plan_steps
    from ocsps.plans.restart_script import rendered_steps

    cat = catalog or load_catalog()
    product, steps = plan_steps(plan, cat)
    return rendered_steps(steps, product, catalog=cat)
