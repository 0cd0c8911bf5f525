"""The accessor and coercion helpers every parser relies on, and properties shared by all results."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pypsrp.complex_objects import GenericComplexObject

from ocsps.errors import OcspsError
from ocsps.jsonout import to_builtins
from ocsps.results import (
    ActivityLevel,
    EventRecord,
    LcsCmdOutcome,
    ParseError,
    PrivacyLevel,
    ServiceState,
    ServiceStatus,
    parse_activity_level,
    parse_service_status,
    parse_wmi_instance,
    parse_wmi_setting,
    prop,
)
from ocsps.results.base import CoercionError, jsonable, to_bool, to_datetime, to_int


def _obj(adapted: dict[str, object] | None = None, extended: dict[str, object] | None = None) -> object:
    obj = GenericComplexObject()
    obj.adapted_properties = adapted or {}
    obj.extended_properties = extended or {}
    return obj


def test_prop_is_case_insensitive_and_prefers_extended() -> None:
    obj = _obj(adapted={"Name": "adapted", "Status": 4}, extended={"name": "extended"})
    assert prop(obj, "NAME") == "extended"
    assert prop(obj, "status") == 4
    assert prop(obj, "Missing", "dflt") == "dflt"
    assert prop({"ExitCode": 0}, "exitcode") == 0
    assert prop("not an object", "Name", None) is None


def test_importing_results_does_not_import_pypsrp() -> None:
    code = "import sys, ocsps.results, ocsps.results.lcscmd_log; print('pypsrp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("text", "expected", "assumed"),
    [
        (
            "2011-06-14T23:41:07.5173302+02:00",
            datetime(2011, 6, 14, 23, 41, 7, 517330, timezone(timedelta(hours=2))),
            False,
        ),
        ("2011-06-14T21:41:07Z", datetime(2011, 6, 14, 21, 41, 7, tzinfo=UTC), False),
        ("2011-06-14t21:41:07z", datetime(2011, 6, 14, 21, 41, 7, tzinfo=UTC), False),
        (
            "2011-06-14 21:41:07,5 +0200",
            datetime(2011, 6, 14, 21, 41, 7, 500000, timezone(timedelta(hours=2))),
            False,
        ),
        ("2011-06-14T21:41", datetime(2011, 6, 14, 21, 41, tzinfo=UTC), True),
        ("2011-06-14T21:41:07.123456789", datetime(2011, 6, 14, 21, 41, 7, 123456, tzinfo=UTC), True),
        ("\\/Date(0)\\/", datetime(1970, 1, 1, tzinfo=UTC), False),
    ],
)
def test_to_datetime_accepts(text: str, expected: datetime, assumed: bool) -> None:
    assert to_datetime(text) == (expected, assumed)


def test_to_datetime_keeps_aware_and_flags_naive_datetimes() -> None:
    aware = datetime(2020, 1, 1, tzinfo=UTC)
    assert to_datetime(aware) == (aware, False)
    assert to_datetime(datetime(2020, 1, 1)) == (aware, True)
    assert to_datetime(None) is None


@pytest.mark.parametrize("text", ["05/01/2024 10:00", "yesterday", "2024-13-45T10:00:00", "", "2024-05-01"])
def test_to_datetime_refuses(text: str) -> None:
    with pytest.raises(CoercionError):
        to_datetime(text)


def test_to_int_and_to_bool() -> None:
    enum = GenericComplexObject()
    enum.property_sets = [7]
    assert to_int(enum) == 7
    assert to_int(" 0x1F ") == 31
    assert to_int(3.0) == 3
    for bad in (True, "3.5", 3.5, "x"):
        with pytest.raises(CoercionError):
            to_int(bad)
    assert to_bool("TRUE") is True
    assert to_bool(0) is False
    for bad in (2, "perhaps", 1.0):
        with pytest.raises(CoercionError):
            to_bool(bad)


def test_jsonable_survives_cycles_bytes_and_enums() -> None:
    a = _obj(adapted={"Name": "a"})
    b = _obj(adapted={"Name": "b", "Peer": a})
    a.adapted_properties["Peer"] = b  # type: ignore[attr-defined]
    value = jsonable({"obj": a, "raw": b"\x00\x01", "level": PrivacyLevel.BODY, "nan": float("nan")})
    json.dumps(value)
    assert isinstance(value, dict)
    assert (value["raw"], value["level"], value["nan"]) == ("AAE=", "Body", "nan")


def test_parse_error_names_kind_and_field() -> None:
    with pytest.raises(OcspsError) as info:
        parse_service_status({"Name": "RTCSRV"})
    error = info.value
    assert isinstance(error, ParseError)
    assert (error.kind, error.field) == ("ServiceStatus", "Status")
    assert "ServiceStatus" in str(error) and "'Status'" in str(error)


def test_results_are_frozen_hashable_and_extra_is_read_only() -> None:
    status = parse_service_status({"Name": "RTCSRV", "Status": "Running", "Custom": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        status.extra["Custom"] = 2  # type: ignore[index]
    assert hash(status) == hash(parse_service_status({"Name": "RTCSRV", "Status": "Running", "Custom": 1}))
    assert status.is_running and not status.is_paused and not status.is_stopped
    assert ServiceStatus("RTCSRV", ServiceState.PAUSED, "Paused").is_paused


@pytest.mark.parametrize(
    ("token", "state"),
    [
        ("running", ServiceState.RUNNING),
        ("Start Pending", ServiceState.START_PENDING),
        ("CONTINUE_PENDING", ServiceState.CONTINUE_PENDING),
        (6, ServiceState.PAUSE_PENDING),
        (0, ServiceState.UNKNOWN),
        ("", ServiceState.UNKNOWN),
        (None, ServiceState.UNKNOWN),
    ],
)
def test_service_state_tokens(token: str | int | None, state: ServiceState) -> None:
    assert ServiceState.from_token(token) is state


def test_activity_level_lookup_and_totals() -> None:
    level = parse_activity_level("Concurrent Calls=2, Active  Conferences=1.5,Concurrent Calls=9,Mode=x")
    assert level.get("concurrent calls") == 2
    assert level.get("ACTIVE CONFERENCES") == 1.5
    assert level.get("absent", -1) == -1
    assert level.as_dict() == {"Concurrent Calls": 2, "Active Conferences": 1.5, "Mode": "x"}
    assert level.total == 12.5
    assert len(level) == 4 and next(iter(level)).name == "Concurrent Calls"
    assert not level.is_idle
    assert ActivityLevel().is_empty and not ActivityLevel().is_idle
    assert parse_activity_level("A=1,B=2").total == 3
    assert isinstance(parse_activity_level("A=1,B=2").total, int)


def test_activity_level_object_with_to_string() -> None:
    obj = GenericComplexObject()
    obj.to_string = "Concurrent Calls=0"
    assert parse_activity_level(obj).is_idle


def test_wmi_helpers() -> None:
    setting = parse_wmi_setting({"Class": "MSFT_SIPVersion", "Property": "MajorVersion", "Value": 3})
    assert setting.qualified_name() == "MSFT_SIPVersion.MajorVersion"
    instance = {"__CLASS": "MSFT_SIPVersion", "__SERVER": "OCS01", "MajorVersion": 4, "MinorVersion": 0}
    (major,) = parse_wmi_instance(instance, ["majorversion"])
    assert (major.property, major.value, major.computer) == ("MajorVersion", 4, "OCS01")
    with pytest.raises(ParseError) as info:
        parse_wmi_instance(instance, ["BuildNumber"])
    assert info.value.field == "BuildNumber"


def test_outcome_create_never_raises_on_a_bad_log() -> None:
    outcome = LcsCmdOutcome.create(exit_code=0, log=b"\x00\x01\x02garbage")
    assert not outcome.succeeded
    assert outcome.failure_reason is not None and "unreadable" in outcome.failure_reason
    assert not LcsCmdOutcome.create(exit_code=0, log="").succeeded
    good = LcsCmdOutcome.create(exit_code=0, log="Task: a\nExecution Result: Success\n")
    assert good.succeeded and good.failure_reason is None
    assert not LcsCmdOutcome.create(exit_code=0, log="Task: a\nExecution Result: Failure\n").succeeded


def test_outcome_reason_lists_at_most_five_failures() -> None:
    log = "".join(f"Task: t{i}\nExecution Result: Failure\n" for i in range(7))
    reason = LcsCmdOutcome.create(exit_code=0, log=log).failure_reason
    assert reason is not None
    assert reason.startswith("7 of 7 tasks did not report Success") and reason.endswith("(+2 more)")


def test_event_time_is_always_aware() -> None:
    record = EventRecord(id=1, time=datetime(2020, 1, 1, tzinfo=UTC))
    assert to_builtins(record)["time"] == "2020-01-01T00:00:00+00:00"
