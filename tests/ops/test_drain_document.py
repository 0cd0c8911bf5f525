"""``drain --json`` per host: the document of a drain report, checked against saved documents.

The saved documents (``tests/data/drain_documents/<name>.json``) were written by the report's former
hand-written method; the document struct must give the same keys, in the same order, with the same values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator

from ocsps.jsonout import to_builtins
from ocsps.operations.drain import DrainReport, DrainReportDocument, Phase, Then
from ocsps.results import EventRecord, ServiceState, ServiceStatus, parse_activity_level
from ocsps.results.base import freeze
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "drain_documents"
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "drain.schema.json").read_text(encoding="utf-8"))
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _reports() -> dict[str, DrainReport]:
    busy = ServiceStatus(
        "RTCMEDSRV",
        ServiceState.PAUSED,
        "Paused",
        activity=parse_activity_level("Inbound Calls=3,Rate=1.5,x"),
    )
    unread = ServiceStatus(
        "RTCMEDSRV", ServiceState.STOPPED, "Stopped", activity=parse_activity_level(",junk")
    )
    event = EventRecord(
        25049,
        T0,
        level="Information",
        source="LS Mediation Server",
        message="drain",
        extra=freeze({"Pid": 4}),
    )
    return {
        "forced": DrainReport(
            "med01.contoso.com",
            "RTCMEDSRV",
            phase=Phase.FORCED,
            started=T0,
            finished=T0 + timedelta(seconds=12.34567),
            polls=3,
            last=busy,
            events=[event],
            then=Then.FORCE_STOP,
            note="deadline reached",
            decisions=["re-read: draining"],
            drained=unread,
        ),
        "requested": DrainReport("med01.contoso.com", "RTCMEDSRV", started=T0, finished=T0, waited=False),
        "no-counters": DrainReport(
            "med01.contoso.com",
            "RTCMEDSRV",
            phase=Phase.FAILED,
            started=T0,
            finished=T0,
            last=unread,
            error="x",
        ),
    }


def test_every_report_has_its_saved_document() -> None:
    assert sorted(p.stem for p in DATA.glob("*.json")) == sorted(_reports())


@pytest.mark.parametrize("name", sorted(_reports()))
def test_the_document_is_the_saved_one(name: str) -> None:
    document = to_builtins(DrainReportDocument.of(_reports()[name]))
    assert json.dumps(document, indent=2) + "\n" == (DATA / f"{name}.json").read_text(encoding="utf-8")
    host_schema = SCHEMA["properties"]["hosts"]["items"]["properties"]["result"]
    Draft202012Validator(host_schema).validate(document)
