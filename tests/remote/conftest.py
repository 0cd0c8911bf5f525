"""Every test here gets its own config file and audit log, so nothing touches the operator's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "state" / "audit.jsonl"))
    config = tmp_path / "state" / "config.toml"
    config.parent.mkdir()
    config.write_text("", encoding="utf-8")
    config.chmod(0o600)
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    for name in ("OCSPS_PROFILE", "OCSPS_HOST", "OCSPS_USERNAME", "OCSPS_PASSWORD", "OCSPS_PRODUCT"):
        monkeypatch.delenv(name, raising=False)
