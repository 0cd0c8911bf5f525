"""The config file: created private, a warning when others can read it, credentials never shown back."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ocsps.remote import profiles
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes")


@pytest.mark.parametrize("force", [False, True])
def test_config_init_creates_the_file_0600(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, force: bool
) -> None:
    target = tmp_path / "cfg" / "config.toml"
    if force:
        target.parent.mkdir()
        target.write_text("# old\n", encoding="utf-8")
    args = ["config", "init", "--path", str(target)] + (["--force"] if force else [])
    result = run_cli(capsys, *args)
    assert result.code == 0, result.err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_config_others_can_read_is_warned_about_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles._mode_warned.clear()
    config = tmp_path / "open.toml"
    config.write_text('[profiles.fe]\nhost = "fe01.contoso.com"\n', encoding="utf-8")
    config.chmod(0o644)
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    first = run_cli(capsys, "config", "show")
    assert first.code == 0, first.err
    assert first.err.count("can be read by other users") == 1 and "chmod 600" in first.err
    config.chmod(0o600)
    profiles._mode_warned.clear()
    private = run_cli(capsys, "config", "show")
    assert private.code == 0 and "other users" not in private.err
