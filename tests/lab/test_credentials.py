"""The lab's NTLM credentials: never left on disk, and one rule for what a lab password may contain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ocsps.lab.auth import CredentialStore, remove_stale_credential_files
from ocsps.lab.topology import default_topology_text
from tests.cli_helpers import run_cli
from tests.conftest import ROOT

LINUX_MEMFD = hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")

_KILLED_LAB = """
import os, sys
from ocsps.lab.runtime import Lab
from ocsps.lab.auth import CredentialStore
lab = Lab(auth="ntlm").start()
print(os.getpid(), CredentialStore.shared().path(lab.listener), flush=True)
sys.stdin.read()
"""


def _ours(pid: int) -> list[str]:
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"ocsps-lab-ntlm-{pid}-")]


@pytest.mark.skipif(not LINUX_MEMFD, reason="anonymous in-memory files need Linux memfd_create")
def test_credentials_live_in_memory_and_vanish_with_a_killed_lab() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_LAB],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        pid_text, path = proc.stdout.readline().split()
        assert path.startswith("/proc/self/fd/"), path  # no directory entry anywhere
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _ours(int(pid_text)) == []


def test_file_fallback_is_named_after_the_process_and_removed_on_unregister() -> None:
    store = CredentialStore(in_memory=False)
    owner = object()
    before = os.environ.get("NTLM_USER_FILE")
    path = store.register(owner, "LAB\\admin", "Passw0rd!")
    try:
        assert Path(path).name.startswith(f"ocsps-lab-ntlm-{os.getpid()}-")
        assert os.stat(path).st_mode & 0o077 == 0
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        assert lines == ["LAB:admin:Passw0rd!", ":admin:Passw0rd!"]
    finally:
        store.unregister(owner)
    assert not os.path.exists(path)
    assert os.environ.get("NTLM_USER_FILE") == before


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_stale_files_of_dead_processes_are_removed_and_nothing_else(tmp_path: Path) -> None:
    dead = _dead_pid()
    stale = tmp_path / f"ocsps-lab-ntlm-{dead}-abc_123.txt"
    alive = tmp_path / f"ocsps-lab-ntlm-{os.getpid()}-abc_123.txt"
    legacy = tmp_path / "ocsps-lab-ntlm-abc_123.txt"  # no process id: cannot tell whose it is
    other = tmp_path / f"notes-{dead}.txt"
    for path in (stale, alive, legacy, other):
        path.write_text("D:u:p\n", encoding="utf-8")
    link = tmp_path / f"ocsps-lab-ntlm-{dead}-link_1.txt"
    link.symlink_to(other)
    removed = remove_stale_credential_files(str(tmp_path))
    assert removed == [str(stale)]
    assert not stale.exists()
    assert alive.exists() and legacy.exists() and other.exists() and link.is_symlink()


def _topology_with_password(tmp_path: Path, password: str) -> Path:
    text = default_topology_text()
    assert "[lab]" in text
    path = tmp_path / "topology.toml"
    lines = [line for line in text.splitlines() if not line.startswith("password")]
    at = lines.index("[lab]") + 1
    lines.insert(at, f'password = "{password}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_topology_check_refuses_a_colon_in_the_lab_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_cli(capsys, "lab", "topology", "--check", str(_topology_with_password(tmp_path, "pa:ss")))
    assert result.code == 2
    assert "must not contain ':'" in result.err and "Traceback" not in result.err
    assert "pa:ss" not in result.err + result.out


@pytest.mark.parametrize("source", ["topology", "option"])
def test_serve_refuses_a_colon_in_the_lab_password_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    if source == "topology":
        args = ["--topology", str(_topology_with_password(tmp_path, "pa:ss"))]
    else:
        args = ["--password", "pa:ss"]
    result = run_cli(capsys, "lab", "serve", "--port", "0", *args)
    assert result.code == 2
    assert "must not contain ':'" in result.err and "Traceback" not in result.err
    assert "pa:ss" not in result.err + result.out
