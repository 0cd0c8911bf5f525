"""What every measurement shares: summaries of repeated figures, machine facts, child processes."""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent
SPAWN = Path(__file__).resolve().parent / "spawn.py"


@dataclass(frozen=True)
class Config:
    """Sizes of one run. ``quick`` shrinks everything; the smoke test shrinks it further."""

    repeat: int = 3
    latency_ms: int = 50
    drain_polls: int = 60
    fanout_sizes: tuple[int, ...] = (1, 10, 50, 200)
    fanout_parallel: tuple[int, ...] = (64, 1)  # the read default (ocsps.cli.fanout), and one at a time
    serial_cap: int = 10
    wide_parallel: tuple[int, ...] = (16, 128)  # the old default and a wider pool, once each
    wide_sizes: tuple[int, ...] = (50, 200)
    baseline_fanout_sizes: tuple[int, ...] = (1,)
    startup_repeat: int = 5
    startup_commands: tuple[str, ...] = ()
    parse_count: int = 10_000

    def to_json(self) -> dict[str, object]:
        return {
            "repeat": self.repeat,
            "latency_ms": self.latency_ms,
            "drain_polls": self.drain_polls,
            "fanout_sizes": list(self.fanout_sizes),
            "fanout_parallel": list(self.fanout_parallel),
            "serial_cap": self.serial_cap,
            "wide_parallel": list(self.wide_parallel),
            "wide_sizes": list(self.wide_sizes),
            "baseline_fanout_sizes": list(self.baseline_fanout_sizes),
            "startup_repeat": self.startup_repeat,
            "startup_commands": list(self.startup_commands),
            "parse_count": self.parse_count,
        }


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """Median and spread of repeated measurements of one figure."""
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "stdev": None, "values": []}
    return {
        "n": len(values),
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "stdev": round(statistics.stdev(values), digits) if len(values) > 1 else 0.0,
        "values": [round(v, digits) for v in values],
    }


def median(figure: Mapping[str, Any]) -> float:
    value = figure.get("median")
    return float(value) if value is not None else float("nan")


def ratio(numerator: Mapping[str, Any], denominator: Mapping[str, Any]) -> float | None:
    """Ratio of two figures' medians, or None when either is missing."""
    top, bottom = numerator.get("median"), denominator.get("median")
    if top is None or not bottom:
        return None
    return round(float(top) / float(bottom), 3)


def spread_text(figure: Mapping[str, Any], unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    """``1.23 s (1.20-1.31, n=3)``: the median, then the range of the repeats."""
    if figure.get("median") is None:
        return "-"
    fmt = f"{{:.{digits}f}}"
    med = fmt.format(float(figure["median"]) * scale)
    if figure.get("n", 0) > 1:
        low, high = fmt.format(float(figure["min"]) * scale), fmt.format(float(figure["max"]) * scale)
        return f"{med} {unit} ({low}-{high}, n={figure['n']})".replace(" )", ")")
    return f"{med} {unit} (n=1)"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """The facts a reader needs to compare two runs of these benchmarks."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mb": _memory_total_mb(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in ("ocsps", "pypsrp", "psrpcore", "pyspnego", "typer")},
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports ``ru_maxrss`` in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class ChildRun:
    """One child process: its wall time, exit code, peak memory and output."""

    wall: float
    returncode: int
    peak_rss_mb: float
    cpu: float
    stdout: str
    stderr: str


def run_child(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 600) -> ChildRun:
    """Run a command to completion through ``spawn.py``, which reports the command's own usage.

    The wall time is the launcher's (fork to exit of the command), so its own start-up is not counted.
    """
    with tempfile.TemporaryDirectory(prefix="ocsps-bench-") as tmp:
        result_path = os.path.join(tmp, "usage.json")
        proc = subprocess.Popen(
            [PYTHON, "-S", "-I", str(SPAWN), result_path, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=REPO,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise RuntimeError(f"{' '.join(argv[:3])} ... did not finish within {timeout:.0f}s") from None
        try:
            with open(result_path, encoding="utf-8") as handle:
                usage: dict[str, Any] = json.load(handle)
        except (OSError, ValueError):
            raise RuntimeError(f"the launcher failed ({proc.returncode}): {stderr.strip()[-400:]}") from None
    return ChildRun(
        wall=float(usage["wall"]),
        returncode=int(usage["returncode"]),
        peak_rss_mb=float(usage["peak_rss_mb"]),
        cpu=float(usage["cpu"]),
        stdout=stdout,
        stderr=stderr,
    )


def last_json_line(text: str) -> dict[str, Any]:
    """Workers print one JSON document as their last line of output."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            loaded: dict[str, Any] = json.loads(line)
            return loaded
    raise ValueError("the worker printed no JSON result")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes: no colour, a fixed width, the repository importable."""
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "COLUMNS": "120"})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("OCSPS_PROFILE", None)
    env.pop("OCSPS_HOST", None)
    env.pop("OCSPS_PARALLEL", None)  # figures are for the default settings
    if extra:
        env.update(extra)
    return env


def log(message: str) -> None:
    """Progress on stderr, so that stdout stays the table."""
    print(message, file=sys.stderr, flush=True)
