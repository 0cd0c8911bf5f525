"""Turning one run's results into the table (Markdown, printed and kept in bench/README.md), JSON and a chart.

Ratios are always ocsps divided by what it is compared with: below 1 ocsps is faster or cheaper.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.common import ratio, spread_text

README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}x"


def _verdict(value: float | None, goal: float | None, below: bool = True) -> str:
    if value is None or goal is None:
        return ""
    met = value < goal if below else value <= goal
    return "met" if met else "not met"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


GOAL_REQUESTS_PER_POLL = 1.2
GOAL_DRAIN_RATIO = 0.35
GOAL_COLD_STATUS_REQUESTS = 9
GOAL_FANOUT_50 = 2.0
GOAL_PARSE = 0.10


def goals(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal of the performance table, in its order, with this run's figure and verdict.

    A goal whose measurement was not part of this run is listed as "not measured", so a partial run
    never reads as if it had met (or missed) a goal it did not look at.
    """
    found: list[dict[str, Any]] = []

    def add(figure: str, value: float | int | None, goal: str, met: bool | None, unit: str = "x") -> None:
        found.append({"figure": figure, "value": value, "goal": goal, "met": met, "unit": unit})

    requests = sections.get("requests")
    per_poll = requests["per_poll"]["ocsps"] if requests else None
    add(
        "WSMan requests per drain poll, steady state",
        per_poll,
        f"<= {GOAL_REQUESTS_PER_POLL}",
        None if per_poll is None else per_poll <= GOAL_REQUESTS_PER_POLL,
        "",
    )
    drain = sections.get("drain")
    drain_ratio = drain["ratio_wall"] if drain else None
    polls = drain["polls"] if drain else 60
    add(
        f"{polls}-poll drain, ocsps / new pool per poll",
        drain_ratio,
        f"<= {GOAL_DRAIN_RATIO}x",
        None if drain_ratio is None else drain_ratio <= GOAL_DRAIN_RATIO,
    )
    cold = requests["one_shot_status"]["ocsps_open_status_close"] if requests else None
    add(
        "HTTP requests for one cold status (NTLM)",
        cold,
        f"<= {GOAL_COLD_STATUS_REQUESTS}",
        None if cold is None else cold <= GOAL_COLD_STATUS_REQUESTS,
        "",
    )
    fanout = sections.get("fanout")
    whole = {str(w["hosts"]): w for w in (fanout or {}).get("whole_command", [])}
    value = whole["50"]["vs_one_host"] if "50" in whole else None
    default = fanout["default_parallel"] if fanout else "default"
    add(
        f"ocsps status whole command, 50 hosts / 1 host (parallel {default})",
        value,
        f"<= {GOAL_FANOUT_50:g}x",
        None if value is None else value <= GOAL_FANOUT_50,
    )
    startup = sections.get("startup")
    comparisons = {c["command"]: c for c in (startup or {}).get("comparisons", []) if c["goal"] is not None}
    for command in STARTUP_GOALS:
        item = comparisons.get(command)
        ratio_value = item["ratio"] if item else None
        goal = item["goal"] if item else 1.5
        add(
            f"start-up {command} / python -c 'import typer, jinja2'",
            ratio_value,
            f"<= {goal}x",
            None if ratio_value is None else ratio_value <= goal,
        )
    parsing = sections.get("parse")
    overhead = parsing["overall"]["overhead"]["median"] if parsing else None
    add(
        "parse time added to pypsrp deserialisation",
        overhead,
        f"<= {GOAL_PARSE * 100:.0f} %",
        None if overhead is None else overhead <= GOAL_PARSE,
        "%",
    )
    return found


STARTUP_GOALS = ("ocsps render drain", "ocsps plan restart", "ocsps --help", "ocsps --version")
"""Start-up commands with a goal, as named in ``bench.startup``."""


def markdown(result: dict[str, Any]) -> str:
    """The whole table, in Markdown: one block per measurement, then the goals."""
    machine = result["machine"]
    config = result["config"]
    sections = result["sections"]
    out: list[str] = []
    load = machine.get("loadavg_start"), machine.get("loadavg_end")
    out.append(
        f"Run {result['started']} ({result['mode']}, {result['duration_s']:.0f} s) on "
        f"{machine['cpu_count']} x {machine['cpu_model']}, {machine.get('memory_mb')} MB, "
        f"Python {machine['python']} ({machine['platform']}); "
        f"load average {load[0]} at start, {load[1]} at end. "
        f"Latency {config['latency_ms']} ms per request where stated; medians with (min-max, n). "
        "Ratios are ocsps / comparison."
    )
    requests = sections.get("requests")
    if requests:
        out += ["", "**1. WSMan requests per operation** (counted at the lab; HTTP includes NTLM legs)", ""]
        rows = [
            [
                r["tool"], r["operation"], str(r["http"]), str(r["Create"]), str(r["Command"]),
                str(r["Receive"]), str(r["Signal"]), str(r["Delete"]), str(r["http_401"]), r["note"],
            ]
            for r in requests["rows"]
        ]
        header = ["tool", "operation", "HTTP", "Create", "Command", "Receive", "Signal", "Delete", "401"]
        header.append("note")
        out += _table(header, rows)
        per = requests["per_poll"]
        out += [
            "",
            f"Per drain poll: ocsps {per['ocsps']}, new pool per call {per['pypsrp_new_pool']} "
            f"({_fmt_ratio(per['ratio'])}), protocol minimum {per['protocol_minimum']}. "
            f"One status from cold: ocsps {requests['one_shot_status']['ocsps_open_status_close']} requests "
            f"(open, status, close), pypsrp {requests['one_shot_status']['pypsrp_first_call']}. "
            f"Stable over {requests['repeats']} repeats: {'yes' if requests['stable'] else 'no'}.",
        ]
    drain = sections.get("drain")
    if drain:
        out += [
            "",
            f"**2. Drain with {drain['polls']} polls at {drain['latency_ms']} ms per request** "
            f"(poll interval {drain.get('poll_interval_s', 0) * 1000:g} ms for both)",
            "",
        ]
        rows = []
        for key, label in (("ocsps", "ocsps, one open pool"), ("new_pool", "pypsrp, new pool per call")):
            item = drain[key]
            rows.append(
                [
                    label,
                    spread_text(item["wall"]),
                    spread_text(item["per_poll"], "ms", 1000, 0),
                    "/".join(str(p) for p in sorted(set(item["polls"]))),
                    "/".join(str(r) for r in sorted(set(item["requests"]))),
                    str(item["pools_opened"]),
                ]
            )
        rows.append(
            ["ratio", _fmt_ratio(drain["ratio_wall"]), _fmt_ratio(drain["ratio_per_poll"]), "", "", ""]
        )
        out += _table(["variant", "wall", "per poll", "polls", "HTTP requests", "pools opened"], rows)
    fanout = sections.get("fanout")
    if fanout:
        out += [
            "",
            f"**3. Fan-out: status of every service on N servers at {fanout['latency_ms']} ms** "
            f"(lab in a separate process on the same machine; default parallel {fanout['default_parallel']})",
            "",
        ]
        rows = []
        for s in fanout["series"]:
            label = s["tool"] + (" (other width, n=1)" if s.get("wide") else "")
            idle = s["idle_rss_mb"]["median"]
            rows.append(
                [
                    label,
                    str(s["parallel"]),
                    str(s["hosts"]),
                    spread_text(s["wall"]),
                    _fmt_ratio(s.get("vs_one_host")),
                    spread_text(s["cpu"]),
                    f"{s['peak_rss_mb']['median']:.1f} MB (+{s['peak_rss_mb']['median'] - idle:.1f})",
                    "/".join(str(v) for v in sorted(set(s["ok"]))),
                ]
            )
        header = ["tool", "parallel", "hosts", "wall", "vs 1 host", "client CPU", "peak RSS (+ over idle)"]
        header.append("ok")
        out += _table(header, rows)
        whole = fanout.get("whole_command") or []
        if whole:
            out += [
                "",
                f"`ocsps status --json`, whole command with default settings (parallel "
                f"{fanout['default_parallel']}), process start to exit:",
                "",
            ]
            rows = [
                [
                    str(w["hosts"]),
                    spread_text(w["wall"]),
                    _fmt_ratio(w.get("vs_one_host")),
                    spread_text(w["cpu"]),
                    f"{w['peak_rss_mb']['median']:.1f} MB",
                    "/".join(str(v) for v in sorted(set(w["ok"]))),
                ]
                for w in whole
            ]
            out += _table(["hosts", "wall", "vs 1 host", "CPU", "peak RSS", "ok"], rows)
    startup = sections.get("startup")
    if startup:
        out += ["", "**4. Start-up** (fresh process each run, after one warm-up)", ""]
        commands = startup["commands"]
        rows = [
            [
                name,
                spread_text(item["wall"], "ms", 1000, 0),
                spread_text(item["cpu"], "ms", 1000, 0) if "cpu" in item else "",
                f"{item['peak_rss_mb']['median']:.1f} MB",
            ]
            for name, item in commands.items()
        ]
        out += _table(["command", "wall", "CPU (user + system)", "peak RSS"], rows)
        out += [""]
        rows = []
        for c in startup["comparisons"]:
            mine, theirs = commands.get(c["command"], {}), commands.get(c["reference"], {})
            cpu = ratio(mine["cpu"], theirs["cpu"]) if "cpu" in mine and "cpu" in theirs else None
            rows.append(
                [
                    c["command"], c["reference"], _fmt_ratio(c["ratio"]), _fmt_ratio(c.get("ratio_best")),
                    _fmt_ratio(cpu), f"<= {c['goal']}x" if c["goal"] else "",
                    _verdict(c["ratio"], c["goal"], below=False),
                ]
            )
        header = ["command", "reference", "ratio of medians", "ratio of best runs", "ratio of CPU medians"]
        out += _table([*header, "goal", ""], rows)
        out += [
            "",
            "The verdict is on the ratio of medians; CPU time is the figure least moved by other load on a "
            "shared machine.",
        ]
    parsing = sections.get("parse")
    if parsing:
        out += [
            "",
            f"**5. Parsing {parsing['count_per_kind']} service and "
            f"{parsing['count_per_kind']} event objects** "
            "(pypsrp deserialisation of the CLIXML vs ocsps parsers on the result)",
            "",
        ]
        rows = [
            [
                r["shape"], str(r["objects"]), spread_text(r["deserialize"], "ms", 1000, 0),
                spread_text(r["parse"], "ms", 1000, 0), f"{r['overhead']['median'] * 100:.1f} %",
            ]
            for r in parsing["rows"]
        ]
        overall = parsing["overall"]
        rows.append(
            [
                "all", str(overall["objects"]), spread_text(overall["deserialize"], "ms", 1000, 0),
                spread_text(overall["parse"], "ms", 1000, 0), f"{overall['overhead']['median'] * 100:.1f} %",
            ]
        )
        out += _table(["shape", "objects", "pypsrp deserialise", "ocsps parse", "added"], rows)
    found = result.get("goals") or []
    if found:
        out += ["", "**Goals**", ""]
        rows = []
        for g in found:
            value, unit = g["value"], g.get("unit", "x")
            if value is None:
                shown = "-"
            elif unit == "%":
                shown = f"{value * 100:.1f} %"
            elif unit == "x":
                shown = f"{value:.2f}x"
            else:
                shown = str(value)
            verdict = "not measured" if g["met"] is None else ("met" if g["met"] else "not met")
            rows.append([g["figure"], shown, g["goal"], verdict])
        out += _table(["figure", "measured", "goal", ""], rows)
    return "\n".join(out) + "\n"


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def update_readme(readme: Path, table: str) -> bool:
    """Replace the block between the table markers; False when the markers are missing."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    new = text[: start + len(README_START)] + "\n" + table.rstrip("\n") + "\n" + text[end:]
    readme.write_text(new, encoding="utf-8")
    return True


def chart(result: dict[str, Any], path: Path) -> bool:
    """A small PNG of the main figures; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sections = result["sections"]
    panels = [name for name in ("requests", "drain", "fanout", "fanout_memory", "startup", "parse")
              if name in sections or (name == "fanout_memory" and "fanout" in sections)]
    if not panels:
        return False
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.4 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, name in zip(flat, panels, strict=False):
        {
            "requests": _plot_requests,
            "drain": _plot_drain,
            "fanout": _plot_fanout,
            "fanout_memory": _plot_memory,
            "startup": _plot_startup,
            "parse": _plot_parse,
        }[name](ax, sections)
    for ax in flat[len(panels):]:
        ax.axis("off")
    fig.suptitle(
        f"ocsps benchmarks ({result['mode']}, {result['machine']['cpu_count']} CPUs, "
        f"Python {result['machine']['python']}, {result['config']['latency_ms']} ms latency)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def _err(figure: dict[str, Any], scale: float = 1.0) -> tuple[float, list[float]]:
    med = float(figure["median"]) * scale
    return med, [med - float(figure["min"]) * scale, float(figure["max"]) * scale - med]


def _plot_requests(ax: Any, sections: dict[str, Any]) -> None:
    req = sections["requests"]
    one = req["one_shot_status"]
    labels = ["drain poll", "status from cold"]
    ocsps = [req["per_poll"]["ocsps"], one["ocsps_open_status_close"]]
    plain = [req["per_poll"]["pypsrp_new_pool"], one["pypsrp_first_call"]]
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], ocsps, 0.4, label="ocsps")
    ax.bar([x + 0.2 for x in xs], plain, 0.4, label="pypsrp new pool")
    minimum = req["per_poll"]["protocol_minimum"]
    ax.axhline(minimum, color="grey", linestyle=":", linewidth=1, label="minimum per poll")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("HTTP requests")
    ax.set_title("1. requests per operation", fontsize=9)
    ax.legend(fontsize=7)


def _plot_drain(ax: Any, sections: dict[str, Any]) -> None:
    drain = sections["drain"]
    names = ["ocsps", "new pool"]
    values = [_err(drain["ocsps"]["wall"]), _err(drain["new_pool"]["wall"])]
    ax.bar(names, [v[0] for v in values], yerr=list(zip(*[v[1] for v in values], strict=True)), capsize=4,
           color=["C0", "C1"])
    ax.set_ylabel("seconds")
    ax.set_title(f"2. drain, {drain['polls']} polls", fontsize=9)


def _plot_fanout(ax: Any, sections: dict[str, Any]) -> None:
    fanout = sections["fanout"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in fanout["series"]:
        label = f"{s['tool']} p{s['parallel']}"
        groups.setdefault(label, []).append(s)
    for label, items in groups.items():
        items.sort(key=lambda s: s["hosts"])
        ax.plot([s["hosts"] for s in items], [s["wall"]["median"] for s in items], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_ticks(ax, [s["hosts"] for s in fanout["series"]])
    ax.set_xlabel("hosts")
    ax.set_ylabel("seconds")
    ax.set_title("3. fan-out status", fontsize=9)
    ax.legend(fontsize=7)


def _plot_memory(ax: Any, sections: dict[str, Any]) -> None:
    fanout = sections["fanout"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in fanout["series"]:
        groups.setdefault(f"{s['tool']} p{s['parallel']}", []).append(s)
    for label, items in groups.items():
        items.sort(key=lambda s: s["hosts"])
        peaks = [s["peak_rss_mb"]["median"] for s in items]
        ax.plot([s["hosts"] for s in items], peaks, marker="o", label=label)
    ax.set_xscale("log")
    _plain_ticks(ax, [s["hosts"] for s in fanout["series"]])
    ax.set_xlabel("hosts")
    ax.set_ylabel("peak RSS, MB")
    ax.set_title("3. fan-out client memory", fontsize=9)
    ax.legend(fontsize=7)


def _plain_ticks(ax: Any, hosts: list[int]) -> None:
    """Numbers as numbers on log axes (1, 10, 50, 200 rather than powers of ten)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xticks(sorted(set(hosts)))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())


def _plot_startup(ax: Any, sections: dict[str, Any]) -> None:
    commands = sections["startup"]["commands"]
    names = list(commands)
    values = [_err(commands[n]["wall"], 1000) for n in names]
    ys = range(len(names))
    ax.barh(list(ys), [v[0] for v in values], xerr=list(zip(*[v[1] for v in values], strict=True)), capsize=3,
            color=["C0" if n.startswith("ocsps") else "C7" for n in names])
    ax.set_yticks(list(ys), [n.replace("python -c ", "") for n in names], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("ms")
    ax.set_title("4. start-up", fontsize=9)


def _plot_parse(ax: Any, sections: dict[str, Any]) -> None:
    rows = [r for r in sections["parse"]["rows"] if not r["shape"].endswith(", all")]
    xs = range(len(rows))
    deserialize = [r["deserialize"]["median"] * 1000 for r in rows]
    parse = [r["parse"]["median"] * 1000 for r in rows]
    ax.bar([x - 0.2 for x in xs], deserialize, 0.4, label="pypsrp deserialise", color="C7")
    ax.bar([x + 0.2 for x in xs], parse, 0.4, label="ocsps parse", color="C0")
    ax.set_xticks(list(xs), [r["shape"].replace(", ", "\n") for r in rows], fontsize=6)
    ax.set_ylabel("ms")
    ax.set_title("5. parsing", fontsize=9)
    ax.legend(fontsize=7)
