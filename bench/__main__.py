"""``python -m bench``: run the measurements, print the table, write JSON, Markdown and a PNG chart.

    python -m bench                  full run (about 10 minutes on 2 cores), results/latest.*
    python -m bench --quick          short run (about 3 minutes), results/quick.*
    python -m bench --only drain     one measurement (repeatable: --only fanout --only parse)
    python -m bench --update-readme  also replace the table in bench/README.md
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import drain_polls, fanout, parsing, report, requests_per_op, startup
from bench.common import Config, log, machine_info

SECTIONS: dict[str, Callable[[Config], dict[str, Any]]] = {
    "requests": requests_per_op.measure,
    "drain": drain_polls.measure,
    "fanout": fanout.measure,
    "startup": startup.measure,
    "parse": parsing.measure,
}
HERE = Path(__file__).resolve().parent
FULL = Config()
QUICK = Config(
    repeat=2,
    drain_polls=15,
    fanout_sizes=(1, 10, 50),
    fanout_parallel=(64, 1),
    serial_cap=10,
    wide_parallel=(),
    baseline_fanout_sizes=(1,),
    startup_repeat=3,
    parse_count=2_000,
)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a positive integer")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of ocsps against plain pypsrp, on the loopback lab.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--only", action="append", choices=list(SECTIONS), help="run only these measurements")
    parser.add_argument("--repeat", type=_positive, help="repeats of each figure")
    parser.add_argument("--latency-ms", type=int, help="latency injected per request (default 50)")
    parser.add_argument("--polls", type=_positive, help="polls in the drain measurement")
    parser.add_argument("--fanout-sizes", type=_ints, help="fleet sizes, e.g. 1,10,50,200")
    parser.add_argument("--parallel", type=_ints, help="pool widths for fan-out, e.g. 64,1")
    parser.add_argument("--wide-parallel", type=_ints, help="other pool widths measured once on big fleets")
    parser.add_argument("--baseline-fanout-sizes", type=_ints, help="fleet sizes for the plain pypsrp loop")
    parser.add_argument("--startup-repeat", type=_positive, help="runs of each start-up command")
    parser.add_argument(
        "--startup-command", action="append", help="only these start-up commands (names as in the table)"
    )
    parser.add_argument("--parse-count", type=_positive, help="objects per kind in the parsing measurement")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="directory for the results")
    parser.add_argument("--name", help="file stem of the results (default: latest, or quick with --quick)")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    parser.add_argument("--update-readme", action="store_true", help="replace the table in bench/README.md")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    config = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    for option, field in (
        ("repeat", "repeat"),
        ("latency_ms", "latency_ms"),
        ("polls", "drain_polls"),
        ("fanout_sizes", "fanout_sizes"),
        ("parallel", "fanout_parallel"),
        ("wide_parallel", "wide_parallel"),
        ("baseline_fanout_sizes", "baseline_fanout_sizes"),
        ("startup_repeat", "startup_repeat"),
        ("parse_count", "parse_count"),
    ):
        value = getattr(args, option)
        if value is not None:
            changes[field] = value
    if args.startup_command:
        changes["startup_commands"] = tuple(args.startup_command)
    return dataclasses.replace(config, **changes)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = config_from(args)
    chosen = args.only or list(SECTIONS)
    mode = "quick" if args.quick else "full"
    if args.only or argv_changes_sizes(args):
        mode += ", partial" if args.only else ", custom sizes"
    machine = machine_info()
    machine["loadavg_start"] = _loadavg()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    sections: dict[str, Any] = {}
    for name in SECTIONS:
        if name in chosen:
            section_clock = time.perf_counter()
            sections[name] = SECTIONS[name](config)
            sections[name]["seconds"] = round(time.perf_counter() - section_clock, 1)
    machine["loadavg_end"] = _loadavg()
    result: dict[str, Any] = {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - clock, 1),
        "mode": mode,
        "machine": machine,
        "config": config.to_json(),
        "sections": sections,
    }
    result["goals"] = report.goals(sections)
    table = report.markdown(result)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("quick" if args.quick else "latest")
    report.write_json(result, args.out / f"{stem}.json")
    (args.out / f"{stem}.md").write_text(table, encoding="utf-8")
    written = [f"{stem}.json", f"{stem}.md"]
    if not args.no_chart:
        if report.chart(result, args.out / f"{stem}.png"):
            written.append(f"{stem}.png")
        else:
            log("matplotlib is not installed: no chart (pip install -e '.[bench]')")
    log(f"wrote {', '.join(written)} in {args.out}")
    if args.update_readme:
        if report.update_readme(args.readme, table):
            log(f"updated the table in {args.readme}")
        else:
            log(f"{args.readme} has no {report.README_START} / {report.README_END} markers: not updated")
            return 1
    return 0


def argv_changes_sizes(args: argparse.Namespace) -> bool:
    options = (
        "repeat", "latency_ms", "polls", "fanout_sizes", "parallel", "wide_parallel", "baseline_fanout_sizes",
        "startup_repeat", "startup_command", "parse_count",
    )
    return any(getattr(args, option) is not None for option in options)


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
