"""4. Start-up: whole commands as an administrator types them, against the imports they cannot avoid.

Every command runs in a fresh process (one untimed warm-up first, so byte-code and the page cache are
warm), ``repeat`` rounds of every command in turn; wall time and peak memory come from ``wait4`` on that
process. ``ratio_best`` compares the fastest runs, the figure least disturbed by other load. References:

* ``import typer, jinja2``: the floor for any command line built on them (goal: ``--help``,
  ``--version``, ``render`` and ``plan`` within 1.5x of it);
* a one-command typer app given two options: what typer itself costs once it parses an option (it
  builds pydantic adapters, so pydantic is imported), to separate typer's share from ocsps's;
* ``import pypsrp.client, pypsrp.powershell``: the floor for a remote command (``status --lab`` also
  starts the lab and talks PSRP to every server of the default topology, so it is far above it).

``-X importtime`` of ``--help`` and ``render`` is kept in the JSON: the slowest imports, by own time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ChildRun, Config, child_env, log, ratio, run_child, summary

TYPER_APP = """
import typer
app = typer.Typer(add_completion=False)
@app.command()
def main(service: str = typer.Option(..., "--service"), product: str = typer.Option("", "--product")) -> None:
    print(service, product)
app(["--service", "RTCMEDSRV", "--product", "sfb2015"])
"""

REFERENCE_TYPER = "python -c 'import typer, jinja2'"
REFERENCE_PYPSRP = "python -c 'import pypsrp.client, pypsrp.powershell'"


def _ocsps() -> list[str]:
    found = shutil.which("ocsps", path=str(Path(PYTHON).parent))
    return [found] if found else [PYTHON, "-m", "ocsps"]


def commands() -> dict[str, list[str]]:
    ocsps = _ocsps()
    return {
        "python -c pass": [PYTHON, "-c", "pass"],
        REFERENCE_TYPER: [PYTHON, "-c", "import typer, jinja2"],
        "typer app, two options": [PYTHON, "-c", TYPER_APP],
        "ocsps --help": [*ocsps, "--help"],
        "ocsps --version": [*ocsps, "--version"],
        "ocsps render drain": [
            *ocsps, "render", "drain", "-s", "RTCMEDSRV", "-p", "sfb2015", "--computer", "x.contoso.com"
        ],
        "ocsps plan restart": [*ocsps, "plan", "restart", "--changed", "MSFT_SIPRoutingSetting.DefaultPort"],
        REFERENCE_PYPSRP: [PYTHON, "-c", "import pypsrp.client, pypsrp.powershell"],
        "ocsps status --lab": [*ocsps, "status", "--lab"],
    }


# (command, its reference, goal ratio or None)
COMPARISONS: tuple[tuple[str, str, float | None], ...] = (
    ("ocsps --help", REFERENCE_TYPER, 1.5),
    ("ocsps --version", REFERENCE_TYPER, 1.5),
    ("ocsps render drain", REFERENCE_TYPER, 1.5),
    ("ocsps plan restart", REFERENCE_TYPER, 1.5),
    ("typer app, two options", REFERENCE_TYPER, None),
    ("ocsps render drain", "typer app, two options", None),
    ("ocsps plan restart", "typer app, two options", None),
    ("ocsps status --lab", REFERENCE_PYPSRP, None),
)


def _importtime(argv: list[str], env: dict[str, str], top: int = 12) -> list[dict[str, Any]]:
    """The slowest imports of one command, by their own time (microseconds, from ``-X importtime``)."""
    program = argv[1:] if argv[0] == PYTHON else ["-m", "ocsps", *argv[1:]]
    child = run_child([PYTHON, "-X", "importtime", *program], env=env, timeout=120)
    rows: list[dict[str, Any]] = []
    for line in child.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line.replace("import time:", "|").split("|")
        _, self_us, cumulative_us, name = (part.strip() for part in parts)
        rows.append({"module": name, "self_us": int(self_us), "cumulative_us": int(cumulative_us)})
    total = sum(int(r["self_us"]) for r in rows)
    ocsps_own = sum(int(r["self_us"]) for r in rows if str(r["module"]).startswith("ocsps"))
    pydantic = sum(int(r["self_us"]) for r in rows if str(r["module"]).startswith("pydantic"))
    rows.sort(key=lambda r: int(r["self_us"]), reverse=True)
    return [
        {"module": "(all imports)", "self_us": total, "cumulative_us": total},
        {"module": "(ocsps.* modules)", "self_us": ocsps_own, "cumulative_us": ocsps_own},
        {"module": "(pydantic*, via typer)", "self_us": pydantic, "cumulative_us": pydantic},
        *rows[:top],
    ]


def measure(config: Config) -> dict[str, Any]:
    table = commands()
    chosen = [name for name in table if not config.startup_commands or name in config.startup_commands]
    runs: dict[str, list[ChildRun]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="ocsps-bench-") as tmp:
        env = child_env({"OCSPS_AUDIT_LOG": os.path.join(tmp, "audit.jsonl")})
        for name in chosen:
            warm = run_child(table[name], env=env, timeout=300)
            if warm.returncode != 0:
                raise RuntimeError(f"{name} failed ({warm.returncode}): {warm.stderr.strip()[-400:]}")
        # Round-robin, so that a burst of load elsewhere on the machine hits every command alike.
        for index in range(config.startup_repeat):
            log(f"start-up: round {index + 1}/{config.startup_repeat} of {len(chosen)} commands ...")
            for name in chosen:
                runs[name].append(run_child(table[name], env=env, timeout=300))
        imports = {}
        if not config.startup_commands:
            for name in ("ocsps --help", "ocsps render drain"):
                imports[name] = _importtime(table[name], env)
    results: dict[str, Any] = {}
    for name in chosen:
        argv = table[name]
        results[name] = {
            "argv": [Path(a).name if a in (PYTHON, argv[0]) else a for a in argv],
            "wall": summary([r.wall for r in runs[name]]),
            "cpu": summary([r.cpu for r in runs[name]]),
            "peak_rss_mb": summary([r.peak_rss_mb for r in runs[name]], digits=1),
            "exit_codes": sorted({r.returncode for r in runs[name]}),
        }
    comparisons = []
    for command, reference, goal in COMPARISONS:
        if command not in results or reference not in results:
            continue
        best = min(results[reference]["wall"]["values"])
        comparisons.append(
            {
                "command": command,
                "reference": reference,
                "ratio": ratio(results[command]["wall"], results[reference]["wall"]),
                "ratio_best": round(min(results[command]["wall"]["values"]) / best, 3) if best else None,
                "goal": goal,
            }
        )
    return {"commands": results, "comparisons": comparisons, "imports": imports}
