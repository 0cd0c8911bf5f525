"""TLS: certificates are validated unless the operator turns that off explicitly, and then ocsps says so.

The lab serves https with a throw-away self-signed certificate: unknown to the client's trust store, so
a default connection must be refused before anything runs, the certificate given with ``--ca-bundle``
must be accepted, and ``--no-verify-tls`` (or ``OCSPS_VERIFY=false``, or ``verify = false`` in a profile)
must work only with a warning on stderr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsps.errors import ConnectError
from ocsps.lab.runtime import Lab
from ocsps.lab.wsman import LabServer
from ocsps.remote.connector import lab_settings
from ocsps.remote.profiles import resolve_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from ocsps.remote.settings import ConnectionSettings
from tests.cli_helpers import run_cli
from tests.reliability import figures
from tests.reliability.labkit import MED, Recorder, quick_topology

WARNING = "warning: TLS certificate validation is OFF"


def _check(ok: bool) -> None:
    figures.add("tls", "checks")
    figures.add("tls", "passed" if ok else "failed")
    assert ok


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Lab, Recorder]]:
    """One https lab for the module: its certificate is self-signed, so no trust store knows it."""
    lab = Lab(quick_topology())
    lab.listener = LabServer(
        lab.listener.hosts,
        executor=lab.engine,
        credentials=(lab.username, lab.password),
        auth="ntlm",
        https=True,
    )
    recorder = Recorder().wrap(lab)
    with lab:
        yield lab, recorder


@pytest.fixture
def https_lab(
    served: tuple[Lab, Recorder], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Lab, Recorder]:
    """The lab, with the environment pointing the CLI at it, and the executions counted from zero."""
    lab, recorder = served
    recorder.executed.clear()
    config = tmp_path / "config.toml"
    config.write_text("[profiles.insecure]\nverify = false\n", encoding="utf-8")
    env = {
        "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
        "OCSPS_PORT": str(lab.port),
        "OCSPS_PATH": f"wsman/{MED}",
        "OCSPS_AUTH": "ntlm",
        "OCSPS_USERNAME": lab.username,
        "OCSPS_PASSWORD": lab.password,
        "OCSPS_PRODUCT": "sfb2015",
        "OCSPS_CONFIG": str(config),
        "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("OCSPS_SSL", "OCSPS_VERIFY", "OCSPS_CA_BUNDLE", "OCSPS_PROFILE", "OCSPS_HOST"):
        monkeypatch.delenv(key, raising=False)
    return lab, recorder


def test_validation_is_on_by_default() -> None:
    settings = ConnectionSettings(host=MED)
    _check(settings.ssl is True and settings.cert_validation is True and not settings.insecure)
    resolved = resolve_settings({"host": MED}, {}, None, None, None)
    _check(resolved.cert_validation is True and resolved.wsman_kwargs()["cert_validation"] is True)


def test_unknown_certificate_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], https_lab: tuple[Lab, Recorder]
) -> None:
    _lab, recorder = https_lab
    result = run_cli(capsys, "status", "--host", MED, "--json")
    (host,) = result.json()["hosts"]
    _check(result.code == 3 and "certificate could not be verified" in host["error"])
    _check(WARNING not in result.err)
    _check(sum(recorder.executed.values()) == 0)


def test_library_refuses_the_unknown_certificate(https_lab: tuple[Lab, Recorder]) -> None:
    lab, recorder = https_lab
    settings = lab_settings(lab, MED, ssl=True, cert_validation=True, encryption="auto")
    server = Server(ServerSession(settings, lab.server(MED).product, retry_backoff=0.05))
    with pytest.raises(ConnectError) as caught:
        server.status("RTCMEDSRV")
    server.close()
    _check(caught.value.exit_code == 3 and "TLS" in caught.value.message and caught.value.hint is not None)
    _check(sum(recorder.executed.values()) == 0)


def test_the_issuing_certificate_is_accepted_without_warning(
    capsys: pytest.CaptureFixture[str], https_lab: tuple[Lab, Recorder]
) -> None:
    lab, _ = https_lab
    assert lab.listener.cert_path is not None
    result = run_cli(capsys, "status", "--host", MED, "--ca-bundle", lab.listener.cert_path, "--json")
    _check(result.code == 0 and result.json()["hosts"][0]["state"] == "ok")
    _check(WARNING not in result.err)


@pytest.mark.parametrize(
    ("how", "args", "env"),
    [
        ("flag", ["--no-verify-tls"], {}),
        ("environment", [], {"OCSPS_VERIFY": "false"}),
        ("profile", ["--profile", "insecure"], {}),
    ],
)
def test_turning_validation_off_is_explicit_and_warned(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    https_lab: tuple[Lab, Recorder],
    how: str,
    args: list[str],
    env: dict[str, Any],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = run_cli(capsys, "status", "--host", MED, *args, "--json")
    _check(result.code == 0 and result.json()["hosts"][0]["state"] == "ok")
    _check(WARNING in result.err and WARNING not in result.out)


def test_a_contradiction_is_refused(
    capsys: pytest.CaptureFixture[str], https_lab: tuple[Lab, Recorder]
) -> None:
    lab, recorder = https_lab
    assert lab.listener.cert_path is not None
    result = run_cli(
        capsys, "status", "--host", MED, "--no-verify-tls", "--ca-bundle", lab.listener.cert_path
    )
    _check(result.code == 2 and sum(recorder.executed.values()) == 0)


def test_the_certificate_is_checked_for_the_host_named_not_the_address_dialled(
    capsys: pytest.CaptureFixture[str], https_lab: tuple[Lab, Recorder]
) -> None:
    """A certificate valid for the address dialled (127.0.0.1) or another server proves nothing."""
    lab, recorder = https_lab
    assert lab.listener.cert_path is not None
    other = "evil.contoso.com"
    result = run_cli(capsys, "status", "--host", other, "--ca-bundle", lab.listener.cert_path, "--json")
    (host,) = result.json()["hosts"]
    _check(result.code == 3 and "certificate could not be verified" in host["error"])
    _check(sum(recorder.executed.values()) == 0)
    right = run_cli(capsys, "status", "--host", MED, "--ca-bundle", lab.listener.cert_path, "--json")
    _check(right.code == 0)


def test_a_missing_ca_bundle_is_a_usage_error_before_connecting(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    https_lab: tuple[Lab, Recorder],
    tmp_path: Path,
) -> None:
    _lab, recorder = https_lab
    missing = str(tmp_path / "no-such-ca.pem")
    flag = run_cli(capsys, "status", "--host", MED, "--ca-bundle", missing)
    _check(flag.code == 2 and "ca_bundle" in flag.err and "not found" in flag.err)
    monkeypatch.setenv("OCSPS_CA_BUNDLE", missing)
    env = run_cli(capsys, "status", "--host", MED)
    _check(env.code == 2 and "not found" in env.err)
    monkeypatch.delenv("OCSPS_CA_BUNDLE")
    config = Path(str(tmp_path / "ca.toml"))
    config.write_text(f'[profiles.ca]\nca_bundle = "{missing}"\n', encoding="utf-8")
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    profile = run_cli(capsys, "status", "--host", MED, "--profile", "ca")
    _check(profile.code == 2 and "not found" in profile.err)
    _check(sum(recorder.executed.values()) == 0)


def test_the_library_warns_when_validation_is_off(
    https_lab: tuple[Lab, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    import ocsps

    lab, _ = https_lab
    caplog.set_level(logging.WARNING, logger="ocsps.remote")
    with ocsps.connect(
        MED,
        product="sfb2015",
        auth="ntlm",
        username=lab.username,
        password=lab.password,
        verify=False,
        connect_address="127.0.0.1",
        port=lab.port,
        path=f"wsman/{MED}",
    ) as server:
        server.status("RTCMEDSRV")
    warned = [r.getMessage() for r in caplog.records if "validation is OFF" in r.getMessage()]
    _check(len(warned) == 1 and MED in warned[0])


def test_clear_text_is_warned_on_every_run_and_audited(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Basic auth over http with encryption never: the password and every command cross in clear."""
    with Lab(quick_topology(), auth="basic") as lab:
        audit = tmp_path / "audit.jsonl"
        config = tmp_path / "config.toml"
        config.write_text("", encoding="utf-8")
        config.chmod(0o600)
        for key, value in {
            "OCSPS_HOST": MED,
            "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
            "OCSPS_PORT": str(lab.port),
            "OCSPS_SSL": "false",
            "OCSPS_PATH": f"wsman/{MED}",
            "OCSPS_AUTH": "basic",
            "OCSPS_ENCRYPTION": "never",
            "OCSPS_USERNAME": lab.username,
            "OCSPS_PASSWORD": lab.password,
            "OCSPS_PRODUCT": "sfb2015",
            "OCSPS_CONFIG": str(config),
            "OCSPS_AUDIT_LOG": str(audit),
        }.items():
            monkeypatch.setenv(key, value)
        for _ in range(2):
            read = run_cli(capsys, "status", "-s", "RTCMEDSRV", "--json")
            _check(read.code == 0 and read.err.count("CLEAR TEXT") == 1 and "CLEAR TEXT" not in read.out)
        stop = run_cli(capsys, "stop", "-s", "RTCMEDSRV", "--yes", "--json")
        _check(stop.code == 0 and stop.err.count("CLEAR TEXT") == 1)
    records = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    (entry,) = [r for r in records if r["outcome"] != "starting"]  # the intent record precedes the change
    _check(entry["action"] == "stop" and "CLEAR TEXT" in entry["detail"])
