"""Reports convert with ``dataclasses.asdict`` and copy: their results' ``extra`` is a read-only dict."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from ocsps.jsonout import to_builtins
from ocsps.lab.runtime import Lab
from ocsps.operations.drain import DrainReportDocument
from ocsps.results import ServiceState, ServiceStatus
from ocsps.results.base import EMPTY, freeze
from tests.conftest import lab_server

pytestmark = pytest.mark.timeout(60)


def test_a_drain_report_from_the_lab_converts_with_asdict(lab: Lab) -> None:
    with lab_server(lab, "med01.contoso.com") as server:
        status = server.status("RTCMEDSRV")
        report = server.drain("RTCMEDSRV", timeout=30, poll=0.1)
    as_dict = dataclasses.asdict(report)
    assert as_dict["last"]["name"] == "RTCMEDSRV" and as_dict["phase"] == report.phase
    assert dataclasses.asdict(status)["name"] == "RTCMEDSRV"
    copied = DrainReportDocument.of(copy.deepcopy(report))
    assert to_builtins(copied)["phase"] == to_builtins(DrainReportDocument.of(report))["phase"]


@pytest.mark.parametrize("extra", [{}, {"StartType": "Automatic", "Pid": 42}])
def test_extra_stays_read_only_and_survives_copies(extra: dict[str, object]) -> None:
    status = ServiceStatus("RTCSRV", ServiceState.RUNNING, "Running", extra=freeze(extra))
    assert dataclasses.asdict(status)["extra"] == extra
    assert pickle.loads(pickle.dumps(status)) == status
    assert copy.deepcopy(status) == status
    for change in (
        lambda m: m.__setitem__("x", 1),
        lambda m: m.update(x=1),
        lambda m: m.pop("Pid", None),
        lambda m: m.clear(),
        lambda m: m.setdefault("x", 1),
    ):
        with pytest.raises(TypeError, match="read-only"):
            change(status.extra)
    assert dict(status.extra) == extra and dict(EMPTY) == {}


def test_an_outcome_holding_a_remote_error_converts_and_pickles() -> None:
    from ocsps.errors import ErrorRecord, RemoteError
    from ocsps.operations.fleet import HostOutcome, HostState

    error = RemoteError([ErrorRecord("Cannot stop", fully_qualified_error_id="X")], host="med01")
    outcome: HostOutcome[str] = HostOutcome("med01", HostState.FAILED, error=error.message, exception=error)
    copied = dataclasses.asdict(outcome)["exception"]
    assert isinstance(copied, RemoteError) and copied.records == error.records
    again = pickle.loads(pickle.dumps(error))
    assert again.message == error.message == "med01: Cannot stop [X]" and again.host == "med01"
