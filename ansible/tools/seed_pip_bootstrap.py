"""Let ``ansible-test sanity`` and ``units`` build their virtual environments without the internet.

ansible-test creates each test's environment without pip, then downloads a ``get-pip.py`` bootstrap from
its own CI file server, which this project's machines cannot reach (only package registries are). It
first looks for that script in its cache (``~/.ansible/test/cache/get_pip_<version>.py``), so this writes
one there that does the same job with what is at hand: the pinned pip wheel ansible-test asks for is
fetched from the package index now, with this environment's pip, and the stand-in installs it into each
new environment (``ensurepip``, bundled with Python, first, since the environment has no pip at all). The
tests then install their own requirements and run exactly as they do in ansible-test's CI.

Usage: ``python ansible/tools/seed_pip_bootstrap.py`` (CI runs it before ansible-test).
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

BOOTSTRAP = '''"""get-pip.py stand-in written by ocsps (ansible/tools/seed_pip_bootstrap.py)."""
import ensurepip
import importlib
import runpy
import sys

WHEELS = {wheels!r}
ensurepip.bootstrap()
importlib.invalidate_caches()
# get-pip.py's own switches, which pip install does not know
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", "--no-index", "--find-links", WHEELS, *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
'''


def main() -> None:
    from ansible_test._internal.python_requirements import get_venv_packages

    packages = get_venv_packages(types.SimpleNamespace(version=f"{sys.version_info[0]}.{sys.version_info[1]}"))
    cache = Path("~/.ansible/test/cache").expanduser()
    wheels = cache / "ocsps-pip-bootstrap"
    wheels.mkdir(parents=True, exist_ok=True)
    wanted = [f"{name}=={version}" for name, version in packages.items()]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(wheels), *wanted],
        check=True,
    )
    target = cache / f"get_pip_{packages['pip'].replace('.', '_')}.py"
    target.write_text(BOOTSTRAP.format(wheels=str(wheels)), encoding="utf-8")
    print(f"wrote {target} ({', '.join(wanted)} from {wheels})")


if __name__ == "__main__":
    main()
