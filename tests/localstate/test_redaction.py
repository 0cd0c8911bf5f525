"""Credential-shaped input is never shown back: not in errors, JSON, ``config show`` or the audit log.

Each case is a command line (and environment) carrying the password ``S3cret-Pw0rd``; whatever the command
answers, that text must not appear on stdout, stderr or in the audit log.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocsps import audit
from ocsps.redact import escape_controls, redact
from tests.cli_helpers import run_cli

SECRET = "S3cret-Pw0rd"
MED01 = "med01.contoso.com"

CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "username-with-password": (
        {},
        ["status", "--host", MED01, "-u", f"CONTOSO\\admin:{SECRET}", "-p", "sfb2015"],
    ),
    "username-json": (
        {},
        ["status", "--host", MED01, "-u", f"CONTOSO\\admin:{SECRET}", "-p", "sfb2015", "--json"],
    ),
    "url-host": ({}, ["status", "--host", f"https://admin:{SECRET}@{MED01}", "-p", "sfb2015"]),
    "userinfo-host": ({}, ["status", "--host", f"admin:{SECRET}@{MED01}", "-p", "sfb2015"]),
    "userinfo-host-stop": (
        {},
        ["stop", "-s", "RTCMEDSRV", "--host", f"admin:{SECRET}@{MED01}", "-p", "sfb2015"],
    ),
    "proxy-env-show": ({"OCSPS_PROXY": f"http://bob:{SECRET}@proxy:3128"}, ["config", "show"]),
    "proxy-env-json": ({"OCSPS_PROXY": f"http://bob:{SECRET}@proxy:3128"}, ["config", "show", "--json"]),
    "username-env-show": ({"OCSPS_USERNAME": f"CONTOSO\\admin:{SECRET}"}, ["config", "show"]),
    "username-env-status": ({"OCSPS_USERNAME": f"CONTOSO\\admin:{SECRET}"}, ["status", "--host", MED01]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_password_is_never_echoed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    env, args = CASES[case]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = run_cli(capsys, *args)
    assert SECRET not in result.out and SECRET not in result.err, result.out + result.err
    assert "Traceback" not in result.err
    log = Path(os.environ["OCSPS_AUDIT_LOG"])
    assert not log.exists() or SECRET not in log.read_text(encoding="utf-8")


def test_the_audit_log_masks_credentials_in_parameters_and_outcomes(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit.record(
        host=MED01,
        action="stop",
        parameters={"Proxy": f"http://bob:{SECRET}@proxy:3128", "Accounts": [f"CONTOSO\\svc:{SECRET}"]},
        outcome=f"failed: could not log on as CONTOSO\\admin:{SECRET}",
        duration=0.1,
        path=log,
    )
    text = log.read_text(encoding="utf-8")
    assert SECRET not in text and text.count("***") == 3


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("C:\\Program Files\\Microsoft Office Communications Server 2007\\Server\\", True),
        ("fe01.contoso.com:5986", True),
        ("CONTOSO\\admin: access denied", True),
        ("https://fe01.contoso.com:5986/wsman", True),
        ("admin@contoso.com", True),
        ("sip:alice@contoso.com joined; SIPS:bob@contoso.com left", True),
        ("mailto:ops@contoso.com", True),
        ("2026-01-01T10:20:30+00:00", True),
        (f"https://u:{SECRET}@h/", False),
    ],
)
def test_ordinary_text_is_left_alone(text: str, kept: bool) -> None:
    assert (redact(text) == text) is kept


def test_control_characters_become_visible() -> None:
    assert escape_controls("a\x1b]0;title\x07b\x1b[2Jc\x9bd\u202ee\rf\r\ng") == (
        "a\\x1b]0;title\\x07b\\x1b[2Jc\\x9bd\\u202ee\\x0df\ng"
    )
