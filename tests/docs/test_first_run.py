"""The first minutes with ocsps: version, config init, hints, completion, colours, --quiet / --verbose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ocsps import __version__
from ocsps.catalog import load_catalog
from ocsps.remote.profiles import default_config_text, load_config
from tests.cli_helpers import run_cli
from tests.conftest import ROOT
from tests.docs.helpers import clean_env, ocsps_command, run_ocsps

COLOUR = re.compile(r"\x1b\[(?:3[0-7]|9[0-7]|38;)")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("OCSPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_version_names_every_product(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "--version")
    assert result.code == 0
    assert result.out.startswith(f"ocsps {__version__} ")
    for product in load_catalog().products:
        assert product in result.out


def test_no_server_ends_with_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "status")
    assert result.code == 2 and result.out == ""
    lines = result.err.strip().splitlines()
    assert lines[0] == "ocsps: error: no server given"
    assert lines[-1].startswith("hint: use --host, OCSPS_HOST, a profile")
    assert "--lab" in lines[-1]


def test_config_init_writes_a_commented_profile_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "conf" / "config.toml"
    written = run_cli(capsys, "config", "init", "--path", str(target))
    assert written.code == 0, written.err
    assert written.out.strip() == str(target)
    text = target.read_text(encoding="utf-8")
    assert text == default_config_text()
    assert sum(1 for line in text.splitlines() if line.startswith("#")) > 20, "commented"
    config = load_config(target)
    assert "lab" in config.profile_names
    assert config.values("lab")["ssl"] is False

    again = run_cli(capsys, "config", "init", "--path", str(target))
    assert again.code == 2
    assert "already exists; pass --force" in again.err
    target.write_text("# mine\n", encoding="utf-8")
    forced = run_cli(capsys, "config", "init", "--path", str(target), "--force")
    assert forced.code == 0 and target.read_text(encoding="utf-8") == default_config_text()


def test_config_path_show_and_ocsps_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere.toml"
    monkeypatch.setenv("OCSPS_CONFIG", str(target))
    assert run_cli(capsys, "config", "path").out.strip() == str(target)
    assert run_cli(capsys, "config", "init").code == 0
    monkeypatch.setenv("OCSPS_PASSWORD", "never-shown")
    monkeypatch.setenv("OCSPS_PORT", "15985")
    shown = run_cli(capsys, "config", "show", "--profile", "lab", "--json")
    assert shown.code == 0, shown.err
    doc = shown.json()
    assert doc["path"] == str(target) and doc["exists"] is True and doc["profile"] == "lab"
    assert doc["values"]["host"] == "127.0.0.1" and doc["values"]["auth"] == "ntlm"
    assert doc["environment"] == {"OCSPS_PORT": "15985", "OCSPS_PASSWORD": "(set)"}
    assert "never-shown" not in shown.out
    missing = run_cli(capsys, "config", "show", "--profile", "nope")
    assert missing.code == 2 and "no profile 'nope'" in missing.err


def test_status_with_the_lab_profile_of_config_init(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile ``config init`` writes reaches ``ocsps lab serve``'s first server once the port is set."""
    from ocsps.lab.runtime import Lab

    target = tmp_path / "config.toml"
    assert run_cli(capsys, "config", "init", "--path", str(target)).code == 0
    monkeypatch.setenv("OCSPS_CONFIG", str(target))
    with Lab() as lab:
        monkeypatch.setenv("OCSPS_PORT", str(lab.port))
        monkeypatch.setenv("OCSPS_PASSWORD", lab.password)
        result = run_cli(capsys, "status", "--profile", "lab", "--product", "sfb2015", "--json")
    assert result.code == 0, result.err
    (host,) = result.json()["hosts"]
    assert host["state"] == "ok" and {s["name"] for s in host["result"]} >= {"RTCSRV", "REPLICA"}


def test_shell_completion_installs_and_completes(tmp_path: Path) -> None:
    # The shell is named, not detected: detection reads the parent process, which under CI or a background
    # job is not a shell. typer's own switch makes --install-completion take the shell as a value.
    env = clean_env(
        tmp_path, HOME=str(tmp_path), SHELL="/bin/bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"
    )
    installed = run_ocsps("--install-completion", "bash", env=env)
    assert installed.returncode == 0, installed.stderr
    assert "ocsps" in (tmp_path / ".bashrc").read_text(encoding="utf-8")
    completing = dict(env, _OCSPS_COMPLETE="complete_bash", COMP_WORDS="ocsps dr", COMP_CWORD="1")
    words = subprocess.run(ocsps_command(), env=completing, capture_output=True, text=True, check=False)
    assert words.stdout.split() == ["drain"]
    completing.update(COMP_WORDS="ocsps lab se", COMP_CWORD="2")
    words = subprocess.run(ocsps_command(), env=completing, capture_output=True, text=True, check=False)
    assert words.stdout.split() == ["serve"]


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    pty = pytest.importorskip("pty", reason="needs a POSIX pseudo-terminal")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocsps", *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_colours_only_on_a_terminal_without_no_color(tmp_path: Path) -> None:
    args = ["status", "--lab", "--host", "med01.contoso.com"]
    env = clean_env(tmp_path, TERM="xterm-256color")
    env.pop("FORCE_COLOR", None)
    coloured = _on_a_terminal(args, env)
    assert "Running" in coloured and COLOUR.search(coloured), "a terminal gets colours"
    plain = _on_a_terminal(args, dict(env, NO_COLOR="1"))
    assert "Running" in plain and not COLOUR.search(plain), "NO_COLOR turns them off"
    piped = run_ocsps(*args, env=env)
    assert piped.returncode == 0 and "Running" in piped.stdout
    assert "\x1b[" not in piped.stdout + piped.stderr, "no escape codes at all when not a terminal"


NO_PERFMON = """
[[servers]]
fqdn = "med01.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
in_perfmon_group = false
drain_seconds = 0.3
"""


def test_quiet_and_verbose(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    topology = tmp_path / "no-perfmon.toml"
    topology.write_text(NO_PERFMON, encoding="utf-8")
    status = ["status", "--lab", "--lab-topology", str(topology)]
    warning = "warning: med01.contoso.com: Unable to read performance counters"

    default = run_cli(capsys, *status)
    assert default.code == 0 and warning in default.err and "info:" not in default.err
    quiet = run_cli(capsys, "--quiet", *status)
    assert quiet.code == 0 and "Service status" in quiet.out and quiet.err == ""
    verbose = run_cli(capsys, "--verbose", *status)
    assert verbose.code == 0 and warning in verbose.err
    assert re.search(r"^info: lab listening on http://127\.0\.0\.1:\d+$", verbose.err, re.MULTILINE)

    drain = ["drain", "-s", "RTCMEDSRV", "--lab", "--lab-topology", str(topology), "--poll", "0.2s"]
    talkative = run_cli(capsys, *drain)
    assert talkative.code == 0 and "med01.contoso.com: RTCMEDSRV requested" in talkative.err
    silent = run_cli(capsys, "--quiet", *drain, "--json")
    assert silent.code == 0 and silent.err == ""
    assert json.loads(silent.out)["hosts"][0]["result"]["phase"] == "stopped"
