"""Every test here gets its own config file location and audit log, so nothing touches the operator's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "state" / "audit.jsonl"))
    monkeypatch.setenv("OCSPS_CONFIG", str(tmp_path / "state" / "config.toml"))
    for name in ("OCSPS_PROFILE", "OCSPS_HOST", "OCSPS_USERNAME", "OCSPS_PASSWORD", "OCSPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
