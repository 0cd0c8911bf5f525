"""``ocsps pool maintain`` reads its timing flags by the library's rules (the Ansible modules' too)."""

from __future__ import annotations

import pytest

from tests.cli_helpers import run_cli


def _what_if(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    result = run_cli(capsys, "pool", "maintain", "--pool", "pool01.contoso.com", "--lab", "--what-if", *flags)
    return result.code, result.out, result.err


def test_stable_for_zero_is_accepted_as_in_the_modules(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _what_if(capsys, "--stable-for", "0")
    assert code == 0, err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-busy", "0"], "--max-busy must be at least 1"),
        (["--busy-interval", "0"], "--busy-interval: duration '0' is out of range"),
        (["--poll", "soon"], "--poll: cannot read duration 'soon'"),
        (["--stable-for", "8d"], "--stable-for: cannot read duration"),
    ],
)
def test_bad_timings_are_refused_with_the_flag(
    capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    code, _out, err = _what_if(capsys, *flags)
    assert code == 2 and message in err, err
