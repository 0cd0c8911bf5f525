"""``ocsps lab serve`` and ``ocsps lab topology`` as a user runs them: a real process, real signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from ocsps.lab.topology import default_topology_text, parse_topology
from tests.cli_helpers import default_sigint, run_cli
from tests.conftest import ROOT
from tests.docs.helpers import clean_env, ocsps_command, run_ocsps

SERVERS = [s.fqdn for s in parse_topology(default_topology_text(), source="default").servers]


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ocsps_command("lab", "serve", "--port", "0", *args),
        env=clean_env(tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
        preexec_fn=default_sigint,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    proc = _start(tmp_path, "--json")
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, f"no ready line; stderr: {proc.stderr.read() if proc.stderr else ''}"
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _stop(proc: subprocess.Popen[str], signum: signal.Signals) -> tuple[int, str, str]:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_serve_json_then_status_through_the_environment_then_sigterm(
    served: tuple[subprocess.Popen[str], dict[str, object]], tmp_path: Path
) -> None:
    proc, doc = served
    assert doc["command"] == "lab serve" and doc["simulation"] is True
    assert doc["address"] == "127.0.0.1" and isinstance(doc["port"], int) and doc["port"] > 0
    servers = doc["servers"]
    assert isinstance(servers, list)
    assert [s["fqdn"] for s in servers] == SERVERS
    med01 = next(s for s in servers if s["fqdn"] == "med01.contoso.com")
    assert med01["url"] == f"http://127.0.0.1:{doc['port']}/wsman/med01.contoso.com"
    assert med01["path"] == "wsman/med01.contoso.com" and med01["product"] == "sfb2015"

    env = clean_env(
        tmp_path,
        OCSPS_CONNECT_ADDRESS=str(doc["address"]),
        OCSPS_PORT=str(doc["port"]),
        OCSPS_PATH=str(med01["path"]),
        OCSPS_SSL="false",
        OCSPS_AUTH=str(doc["auth"]),
        OCSPS_USERNAME=str(doc["username"]),
        OCSPS_PASSWORD=str(doc["password"]),
        OCSPS_PRODUCT=str(med01["product"]),
    )
    status = run_ocsps("status", "--host", "med01.contoso.com", "--json", env=env)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    schema = json.loads((ROOT / "docs" / "schemas" / "status.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    (host,) = document["hosts"]
    assert host["host"] == "med01.contoso.com" and host["state"] == "ok"
    names = {s["name"]: s["status"] for s in host["result"]}
    assert names["RTCMEDSRV"] == "Running"

    wrong = dict(env, OCSPS_PASSWORD="not-the-password")
    refused = run_ocsps("status", "--host", "med01.contoso.com", env=wrong)
    assert refused.returncode == 3, refused.stderr

    code, out, err = _stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert out == "", "after the ready line, stdout stays quiet"
    assert "lab: stopped" in err


def test_serve_human_lines_and_ctrl_c(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in SERVERS]
        code, _, err = _stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert code == 0, err
    for fqdn, line in zip(SERVERS, lines, strict=True):
        words = line.split()
        assert words[0] == fqdn, line
        assert words[2].startswith("http://127.0.0.1:") and words[2].endswith(f"/wsman/{fqdn}")
        assert words[3] == "ntlm" and words[4] == "LAB\\admin" and len(words[5]) >= 12
    assert "this is a simulation" in err
    assert "OCSPS_PATH=wsman/fe01.contoso.com ocsps status --host fe01.contoso.com" in err
    assert "lab: stopped" in err


@pytest.mark.parametrize("bind", ["0.0.0.0", "10.1.2.3", "lab.contoso.com"])
def test_serve_refuses_anything_but_loopback(tmp_path: Path, bind: str) -> None:
    result = run_ocsps("lab", "serve", "--bind", bind, "--port", "0", env=clean_env(tmp_path))
    assert result.returncode == 2
    assert "loopback" in result.stderr and result.stdout == ""


def test_serve_port_in_use_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_ocsps("lab", "serve", "--port", str(port), env=clean_env(tmp_path))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "hint: choose another --port, or --port 0 for a free one" in result.stderr


def test_serve_password_and_basic_auth(tmp_path: Path) -> None:
    env = clean_env(tmp_path, OCSPS_LAB_PASSWORD="rehearsal-only-1")
    proc = subprocess.Popen(
        ocsps_command("lab", "serve", "--port", "0", "--json", "--auth", "basic"),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        doc = json.loads(proc.stdout.readline())
        code, _, err = _stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert code == 0, err
    assert doc["auth"] == "basic" and doc["password"] == "rehearsal-only-1"
    assert {s["password"] for s in doc["servers"]} == {"rehearsal-only-1"}


def test_topology_prints_the_default_and_checks_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    printed = run_cli(capsys, "lab", "topology")
    assert printed.code == 0
    assert printed.out == default_topology_text()
    assert [s.fqdn for s in parse_topology(printed.out, source="printed").servers] == SERVERS

    edited = tmp_path / "estate.toml"
    edited.write_text(printed.out.replace('fqdn = "med01.contoso.com"', 'fqdn = "med02.contoso.com"'))
    checked = run_cli(capsys, "lab", "topology", "--check", str(edited))
    assert checked.code == 0, checked.err
    assert checked.out.splitlines()[3].startswith("med02.contoso.com  sfb2015")
    assert f"{edited}: {len(SERVERS)} servers, valid" in checked.err

    broken = tmp_path / "broken.toml"
    broken.write_text('[[servers]]\nfqdn = "med01.contoso.com"\nproduct = "sfb2015"\ndrain_secs = 3\n')
    refused = run_cli(capsys, "lab", "topology", "--check", str(broken))
    assert refused.code == 2
    assert "unknown key 'drain_secs'" in refused.err
