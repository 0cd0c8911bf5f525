"""Server text cannot drive the operator's terminal, and tables never cut a name.

The lab's handlers are wrapped so that what a server sends back (ActivityLevel text, a warning record, an
error record) carries terminal escape sequences: a window-title OSC, a screen clear, BEL. Human output must
show them as visible ``\\x1b`` text, never as the raw bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ocsps.lab.runtime import Lab
from tests.cli_helpers import run_cli

MED01 = "med01.contoso.com"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class _Poisoned:
    """A pipeline sink whose ActivityLevel, warnings and errors carry escape sequences."""

    def __init__(self, out: Any) -> None:
        self._out = out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)

    def write(self, value: Any) -> bool:
        if isinstance(value, Mapping) and "ActivityLevel" in value:
            value = {**value, "ActivityLevel": f"{HOSTILE}Calls=1"}
        return bool(self._out.write(value))

    def write_warning(self, message: str) -> bool:
        return bool(self._out.write_warning(f"{HOSTILE}{message}"))


@pytest.fixture(scope="module")
def hostile_lab() -> Iterator[Lab]:
    with Lab() as lab:
        original = dict(lab.engine.handlers)

        def status(sim: Any, params: Mapping[str, Any], out: Any) -> None:
            out.write_warning("counters are odd")
            original["status"](sim, params, _Poisoned(out))

        lab.engine.handlers["status"] = status
        yield lab


@pytest.fixture
def reach(hostile_lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    path = hostile_lab.connection(MED01)["path"]
    env = {
        "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
        "OCSPS_PORT": str(hostile_lab.port),
        "OCSPS_SSL": "false",
        "OCSPS_PATH": path,
        "OCSPS_AUTH": "ntlm",
        "OCSPS_USERNAME": hostile_lab.username,
        "OCSPS_PASSWORD": hostile_lab.password,
        "OCSPS_PRODUCT": "sfb2015",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return hostile_lab


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--host", MED01, "-s", "RTCMEDSRV"),
        ("status", "--host", MED01, "-s", "RTCMEDSRV", "--json"),
    ],
    ids=["status", "status-json"],
)
def test_escape_sequences_from_the_server_are_shown_not_obeyed(
    capsys: pytest.CaptureFixture[str], reach: Lab, args: tuple[str, ...]
) -> None:
    result = run_cli(capsys, *args)
    assert result.code in (0, 1, 3), result.err
    text = result.out + result.err
    assert not RAW.search(text.replace("\n", "").replace("\t", "")), repr(text)
    assert "\\x1b]0;pwned\\x07" in text or "\\u001b]0;pwned\\u0007" in text, text


def test_error_records_are_shown_not_obeyed(capsys: pytest.CaptureFixture[str]) -> None:
    from ocsps.cli.app import print_error
    from ocsps.errors import ErrorRecord, RemoteError

    capsys.readouterr()
    print_error(
        RemoteError([ErrorRecord(f"{HOSTILE}Access is denied.", fully_qualified_error_id="X")], host=MED01)
    )
    err = capsys.readouterr().err
    assert not RAW.search(err.replace("\n", "")), repr(err)
    assert "\\x1b]0;pwned\\x07" in err and "Access is denied." in err


def test_tables_fold_long_names_at_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.table import Table

    from ocsps.cli.output import console

    names = (
        "med01.contoso-very-long-subdomain.example.com",
        "RTCTELEPHONYCONFERENCINGSERVICE",
        "MSFT_SIPRoutingSetting.DefaultOutboundProxyAddressesAndMore",
    )
    table = Table(title="names")
    for column in ("host", "service", "setting", "note"):
        table.add_column(column)
    table.add_row(*names, "a long explanatory note that takes room in the table as well")
    out = console()
    out.width = 80
    capsys.readouterr()
    out.print(table)
    printed = capsys.readouterr().out
    assert "…" not in printed and "..." not in printed
    body = [line for line in printed.splitlines() if line.startswith("│")]
    for index, name in enumerate(names, start=1):
        assert "".join(line.split("│")[index].strip() for line in body).startswith(name), printed
    assert max(len(line) for line in printed.splitlines()) <= 80
