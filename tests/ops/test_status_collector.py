"""``ocsps status`` exempts start-up's objects from full collections during its fan-out, and only then.

Objects frozen during the fan-out are never collected; an in-process caller (a test run, a script that
calls ``main`` repeatedly) must get the collector back as it was, or garbage would pile up call after call.
"""

from __future__ import annotations

import gc

import pytest

import ocsps.operations.fleet as fleet
from tests.cli_helpers import run_cli


def test_status_freezes_only_during_the_fan_out(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    run_parallel = fleet.run_parallel

    def watched(*args: object, **kwargs: object) -> object:
        seen.append(gc.get_freeze_count())
        return run_parallel(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fleet, "run_parallel", watched)
    before = gc.get_freeze_count()
    result = run_cli(capsys, "status", "--service", "RTCMEDSRV", "--lab", "--json")
    assert result.code == 0, result.err
    assert len(seen) == 1 and seen[0] > before, "start-up's objects are frozen while the hosts are read"
    assert gc.get_freeze_count() == before, "and handed back to the collector afterwards"
    assert result.json()["hosts"][0]["state"] == "ok"
