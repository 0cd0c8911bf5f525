"""Shared by the documentation tests: the repository's scripts, and ocsps run as a user would run it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import ROOT

SCRIPTS = ROOT / "scripts"
DOCS = ROOT / "docs"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (the scripts are run by hand and by CI; they are not a package)."""
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"ocsps_scripts_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any OCSPS_* setting, an audit log and config file of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCSPS_") and k not in ("NO_COLOR",)}
    env["OCSPS_AUDIT_LOG"] = str(tmp_path / "audit.jsonl")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["COLUMNS"] = "100"
    env.update(extra)
    return env


def ocsps_command(*args: str) -> list[str]:
    """The ocsps command line for this interpreter (what ``ocsps`` on the PATH runs)."""
    return [sys.executable, "-m", "ocsps", *args]


def run_ocsps(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ocsps_command(*args),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
