"""The password appears nowhere: not on stdout or stderr, not in log records at any level (pypsrp,
requests, urllib3 and spnego included), not in the audit log, not in rendered scripts, not in exception
text, whether the run passes, fails, times out, is refused or crashes.

The lab runs with a canary password; every channel is searched for it in clear, in base64 (HTTP Basic
carries ``user:password`` that way), and in UTF-16 (what Windows APIs and NTLM work with).
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsps.errors import OcspsError
from ocsps.jsonout import to_builtins
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import Topology
from ocsps.remote.connector import lab_settings
from ocsps.remote.settings import ConnectionSettingsDocument
from tests.cli_helpers import CliResult, run_cli
from tests.reliability import figures
from tests.reliability.labkit import MED, ArmedLabs, quick_topology, server_for

CANARY = "S3cret-Canary-q7Zx9wLm"
USER = "LAB\\admin"


def _needles(password: str) -> list[bytes]:
    forms = [password, f"{USER}:{password}", f"admin:{password}"]
    found = [password.encode("utf-8"), password.encode("utf-16-le")]
    found += [base64.b64encode(form.encode("utf-8")) for form in forms]
    return found


class Scanner:
    """Searches every channel for the password and counts what it looked at."""

    def __init__(self, password: str = CANARY) -> None:
        self.needles = _needles(password)

    def check(self, channel: str, data: str | bytes) -> None:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        figures.add("secrets", "channels")
        figures.add("secrets", "bytes", len(raw))
        leaked = [n for n in self.needles if n in raw]
        if leaked:
            figures.add("secrets", "leaks")
        assert not leaked, f"the password leaked into {channel}"

    def cli(self, result: CliResult, name: str) -> None:
        figures.add("secrets", "runs")
        self.check(f"{name}: stdout", result.out)
        self.check(f"{name}: stderr", result.err)

    def files(self, *paths: Path) -> None:
        for path in paths:
            if path.exists():
                self.check(str(path.name), path.read_bytes())


@pytest.fixture
def scanner() -> Scanner:
    return Scanner()


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Every log record of every library at DEBUG, to a file, for the duration of the test."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


RUNS: list[tuple[str, list[str], str, int]] = [
    # (name, CLI words after the command, topology tweak, expected exit code)
    ("status passes", ["status", "--json"], "", 0),
    ("status passes, verbose", ["-v", "status"], "", 0),
    ("status passes, quiet", ["-q", "status", "--json"], "", 0),
    ("drain passes", ["drain", "--service", "RTCMEDSRV", "--poll", "0.1s", "--json"], "", 0),
    ("stop fails", ["-v", "stop", "-y", "--service", "RTCMEDSRV", "--json"], "fails_to_stop", 1),
    ("stop fails, human output", ["stop", "-y", "--service", "RTCMEDSRV"], "fails_to_stop", 1),
    ("stop times out", ["-v", "stop", "-y", "-s", "RTCMEDSRV", "--timeout", "1s", "--json"], "stuck", 4),
    ("what-if", ["drain", "--service", "RTCMEDSRV", "--what-if"], "", 0),
    ("refused input", ["stop", "--service", "RTCNOPE"], "", 2),
]


@pytest.mark.parametrize(("name", "words", "tweak", "code"), RUNS, ids=[r[0] for r in RUNS])
def test_cli_runs_never_show_the_password(
    capsys: pytest.CaptureFixture[str],
    armed_lab: ArmedLabs,
    scanner: Scanner,
    debug_log: Path,
    tmp_path: Path,
    name: str,
    words: list[str],
    tweak: str,
    code: int,
) -> None:
    def topology() -> Topology:
        topo = quick_topology()
        svc = topo.server(MED).services["RTCMEDSRV"]
        if tweak == "fails_to_stop":
            svc.fails_to_stop = True
        return topo

    armed_lab.topology = topology
    armed_lab.password = CANARY
    if tweak == "stuck":
        armed_lab.hook = lambda lab: lab.faults(MED).set_stuck(True)
    command, rest = (words[1], words[2:]) if words[0] in ("-v", "-q") else (words[0], words[1:])
    flags = words[:1] if words[0] in ("-v", "-q") else []
    result = run_cli(capsys, *flags, command, *rest, "--lab", "--host", MED)
    assert result.code == code, (result.out, result.err)
    assert armed_lab.started and armed_lab.last.password == CANARY
    scanner.cli(result, name)
    scanner.files(debug_log, tmp_path / "audit.jsonl")


CREDENTIAL_SHAPED: list[tuple[str, dict[str, str], list[str]]] = [
    # (name, environment, CLI words): the password typed where it does not belong; each run is refused
    ("username with :password", {}, ["status", "--host", MED, "-u", f"{USER}:{CANARY}", "-p", "sfb2015"]),
    ("username with :password, json", {}, ["status", "--host", MED, "-u", f"{USER}:{CANARY}", "--json"]),
    (
        "https://user:password@host",
        {},
        ["status", "--host", f"https://admin:{CANARY}@{MED}", "-p", "sfb2015"],
    ),
    (
        "user:password@host",
        {},
        ["stop", "-s", "RTCMEDSRV", "--host", f"admin:{CANARY}@{MED}", "-p", "sfb2015"],
    ),
    ("proxy URL, config show", {"OCSPS_PROXY": f"http://bob:{CANARY}@proxy:3128"}, ["config", "show"]),
    (
        "proxy URL, config show json",
        {"OCSPS_PROXY": f"http://bob:{CANARY}@proxy:3128"},
        ["config", "show", "--json"],
    ),
    ("username variable, status", {"OCSPS_USERNAME": f"{USER}:{CANARY}"}, ["status", "--host", MED]),
]


@pytest.mark.parametrize(("name", "env", "words"), CREDENTIAL_SHAPED, ids=[c[0] for c in CREDENTIAL_SHAPED])
def test_credential_shaped_input_is_not_echoed(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    scanner: Scanner,
    debug_log: Path,
    tmp_path: Path,
    name: str,
    env: dict[str, str],
    words: list[str],
) -> None:
    """A password pasted into ``-u``, ``--host`` or a proxy URL is refused without being printed back."""
    from ocsps.redact import forget_all

    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    config.chmod(0o600)
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    forget_all()
    try:
        result = run_cli(capsys, *words)
    finally:
        forget_all()
    assert result.code in (0, 2), (result.out, result.err)
    scanner.cli(result, name)
    scanner.files(debug_log, tmp_path / "audit.jsonl")


def test_emitted_scripts_and_plans_never_hold_the_password(
    capsys: pytest.CaptureFixture[str], armed_lab: ArmedLabs, scanner: Scanner, tmp_path: Path
) -> None:
    armed_lab.password = CANARY
    armed_lab.topology = quick_topology
    script = tmp_path / "drain.ps1"
    result = run_cli(
        capsys, "drain", "--service", "RTCMEDSRV", "--lab", "--host", MED, "--emit-script", str(script)
    )
    assert result.code == 0, result.err
    scanner.cli(result, "emit-script")
    scanner.files(script)


def test_wrong_password_and_its_error_text(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    scanner: Scanner,
    debug_log: Path,
    tmp_path: Path,
) -> None:
    """A refused password is a secret too: it is not echoed by the error, the logs or the JSON."""
    wrong = "wrong-" + CANARY
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    with Lab(quick_topology(), password=CANARY) as lab:
        settings = lab_settings(lab, MED)
        env = {
            "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
            "OCSPS_PORT": str(lab.port),
            "OCSPS_SSL": "false",
            "OCSPS_PATH": settings.path,
            "OCSPS_AUTH": "ntlm",
            "OCSPS_USERNAME": lab.username,
            "OCSPS_PASSWORD": wrong,
            "OCSPS_PRODUCT": "sfb2015",
            "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "OCSPS_CONFIG": str(tmp_path / "none.toml"),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for words in (["status", "--json"], ["-v", "stop", "-y", "--service", "RTCMEDSRV"]):
            result = run_cli(capsys, *words, "--host", MED)
            assert result.code == 3, (result.out, result.err)
            scanner.cli(result, "wrong password")
        scanner.files(debug_log, tmp_path / "audit.jsonl")


@pytest.mark.parametrize("auth", ["ntlm", "basic"])
def test_library_exceptions_never_hold_the_password(
    scanner: Scanner, debug_log: Path, monkeypatch: pytest.MonkeyPatch, auth: str
) -> None:
    """Exception text, repr and traceback of every failure the library raises."""
    with Lab(quick_topology(), password=CANARY, auth=auth) as lab:
        failures: list[BaseException] = []
        wrong = server_for(lab, password="wrong-" + CANARY)
        with pytest.raises(OcspsError) as refused:
            wrong.status("RTCMEDSRV")
        failures.append(refused.value)
        lab.server(MED).services["RTCMEDSRV"].fails_to_stop = True
        with server_for(lab) as server:
            with pytest.raises(OcspsError) as failed:
                server.stop("RTCMEDSRV")
            failures.append(failed.value)
            lab.faults(MED).set_stuck(True)
            with pytest.raises(OcspsError) as timed_out:
                server.status("RTCMEDSRV", timeout=1)
            failures.append(timed_out.value)
            lab.faults(MED).set_stuck(False)
            lab.faults(MED).drop_next("Receive", after_processing=True)
            with pytest.raises(OcspsError) as unknown:
                server.start("RTCMEDSRV")
            failures.append(unknown.value)
        for exc in failures:
            text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc) + repr(exc.__dict__)
            scanner.check(f"{exc.__class__.__name__} text", text)
        for settings in (server_for(lab).session.settings,):
            document = to_builtins(ConnectionSettingsDocument.of(settings))
            scanner.check("settings repr", repr(settings) + str(document))
    scanner.files(debug_log)
    figures.add("secrets", "runs", len(failures))


CRASH = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, filename=sys.argv[1])
import pypsrp.wsman
original = pypsrp.wsman.WSMan.__init__

def crash(self, *args, **kwargs):
    password = kwargs.get("password")  # a local holding the secret, as in a real crash site
    raise RuntimeError("transport exploded")

pypsrp.wsman.WSMan.__init__ = crash
import ocsps.cli.ops_cmd as ops
def explode(run, document, json_out):
    from ocsps.cli.output import emit_json
    emit_json(document)
    raise RuntimeError("an unexpected bug")
ops._finish = explode
from ocsps.cli import main
main(sys.argv[2:])
"""


def test_a_crash_prints_no_password(scanner: Scanner, tmp_path: Path) -> None:
    """An uncaught exception in a real process: the traceback names code, never values."""
    topology = tmp_path / "lab.toml"
    topology.write_text(
        f'[lab]\nusername = "LAB\\\\admin"\npassword = "{CANARY}"\n' + "\n".join(quick_topology_lines()),
        encoding="utf-8",
    )
    log = tmp_path / "crash.log"
    env = {**os.environ, "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"), "COLUMNS": "200"}
    words = [
        "-v",
        "stop",
        "-y",
        "-s",
        "RTCMEDSRV",
        "--lab",
        "--lab-topology",
        str(topology),
        "-H",
        MED,
        "--json",
    ]
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(log), *words],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert b"Traceback" in done.stderr and b"an unexpected bug" in done.stderr
    assert b"could not be understood (RuntimeError)" in done.stdout  # the worker's crash, reported
    figures.add("secrets", "runs")
    scanner.check("crash stdout", done.stdout)
    scanner.check("crash stderr", done.stderr)
    scanner.files(log, tmp_path / "audit.jsonl")


def quick_topology_lines() -> list[str]:
    from tests.reliability.labkit import QUICK_TOPOLOGY

    return [line for line in QUICK_TOPOLOGY.splitlines() if not line.startswith(("[lab]", "username"))]
