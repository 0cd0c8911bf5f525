"""Run-time script checks use one grammar; the second one is a cross-check the test extra brings."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from ocsps.catalog import load_catalog
from ocsps.lab.engine import script_problem
from ocsps.pool.plan import step_from_text

product = load_catalog().product("lync2010")
assert script_problem("Get-Service -Name 'RTCSRV'", "lync2010") is None
step_from_text("step.ps1", "Get-Service -Name 'RTCSRV'", product)
print("tree_sitter_powershell" in sys.modules, "tree_sitter_pwsh" in sys.modules)
"""


def test_runtime_checks_load_only_the_runtime_grammar() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
