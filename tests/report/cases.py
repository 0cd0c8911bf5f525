"""The report-building cases: a folder each, with audit lines and records in, the report expected out.

``python -m tests.report.cases`` rewrites every ``expected.json`` and ``expected.md`` from the current
code: run it after a deliberate change, and review the diff line by line before committing it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ocsps.jsonout import to_builtins
from ocsps.report import Report, Selection, build_report, parse_time, render_markdown
from ocsps.report.document import ReportDocument

CASES = Path(__file__).parent / "cases"
GENERATED = "2026-04-01T00:00:00+00:00"


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "input.json").exists())


def build_case(name: str) -> Report:
    folder = CASES / name
    spec: dict[str, Any] = json.loads((folder / "input.json").read_text(encoding="utf-8"))
    chosen = spec["selection"]
    selection = Selection(
        chosen.get("change_id", ""),
        parse_time(chosen["since"]) if "since" in chosen else None,
        parse_time(chosen["until"]) if "until" in chosen else None,
    )
    lines = [json.loads(line) for line in (folder / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    return build_report(
        selection,
        lines,
        patch_records=spec.get("patch_records", []),
        roll_states=spec.get("roll_states", []),
        generated=GENERATED,
        generated_by="ocsps (test)",
    )


def main() -> None:
    for name in case_names():
        report = build_case(name)
        folder = CASES / name
        (folder / "expected.json").write_text(
            json.dumps(to_builtins(ReportDocument.of(report)), indent=2) + "\n", encoding="utf-8"
        )
        (folder / "expected.md").write_text(render_markdown(report), encoding="utf-8")
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
