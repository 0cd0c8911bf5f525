"""Properties a parser did not read are kept in ``extra``, worked out only when read, and never wrong.

The leftovers are computed lazily and aliases are case-folded once per alias list; neither may change what
a parser sees or returns.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from ocsps.results import ParseError, parse_event_record, parse_service_status
from ocsps.results.base import EMPTY, Leftovers, Names, PropertyReader, known_names


def test_leftovers_are_what_no_lookup_asked_for() -> None:
    reader = PropertyReader({"Name": "RTCSRV", "STATUS": "Running", "Future": 1, "Other": None}, "Probe")
    assert reader.lookup("name") == ("Name", "RTCSRV")
    assert reader.lookup("State", "Status") == ("STATUS", "Running")
    extra = reader.extra()
    reader.lookup("Future")  # asked after: the leftovers were fixed when extra() was called
    assert dict(extra) == {"Future": 1, "Other": None}
    assert extra == {"Future": 1, "Other": None} and len(extra) == 2 and list(extra) == ["Future", "Other"]
    with pytest.raises(TypeError):
        extra["Future"] = 2  # type: ignore[index]


def test_nothing_left_over_is_the_shared_empty_mapping() -> None:
    status = parse_service_status({"Name": "RTCSRV", "Status": "Running"})
    assert status.extra is EMPTY


@pytest.mark.parametrize(
    ("names", "present", "expected"),
    [
        (("Name", "ServiceName"), {"servicename": "a"}, ("servicename", "a")),
        (("SERVICENAME", "Name"), {"Name": "b", "ServiceName": "c"}, ("ServiceName", "c")),
        (("Name",), {"NAME": None, "name2": 1}, ("NAME", None)),
        (("Straße",), {"STRASSE": "x"}, ("STRASSE", "x")),  # case folding, not lower-casing
        (("Missing",), {"Name": 1}, None),
    ],
)
def test_aliases_match_case_insensitively_in_order(
    names: tuple[str, ...], present: dict[str, object], expected: tuple[str, object] | None
) -> None:
    for _ in range(2):  # the second time through the folded-alias cache
        reader = PropertyReader(present, "Probe")
        assert reader.lookup(*names) == expected
        assert reader.has(*names) == (expected is not None)
        assert PropertyReader(present, "Probe").find(Names(*names)) == expected  # aliases folded in advance


def test_names_read_through_aliases_folded_in_advance_count_as_asked() -> None:
    present = {"NAME": "RTCSRV", "Other": 1}
    reader = PropertyReader(present, "Probe")
    assert reader.find_required_text(Names("ServiceName", "Name")) == "RTCSRV"
    assert dict(reader.extra()) == {"Other": 1}


def test_known_names_count_as_asked_before_any_lookup() -> None:
    known = known_names(Names("Name", "ServiceName"), Names("Straße"))
    reader = PropertyReader({"servicename": "a", "STRASSE": 1, "Future": 2, "Later": 3}, "Probe", known)
    assert reader.lookup("Later") == ("Later", 3)  # a lookup by plain names still counts
    assert dict(reader.extra()) == {"Future": 2}
    everything = PropertyReader({"NAME": "a", "strasse": 1}, "Probe", known)
    assert everything.extra() is EMPTY


@pytest.mark.parametrize(
    ("names", "present", "required", "expected"),
    [
        (("Name",), {"Name": "  RTCSRV "}, True, "RTCSRV"),
        (("Name", "ServiceName"), {"ServiceName": 7}, False, "7"),
        (("Name",), {"Other": 1}, False, None),
        (("Name",), {"Name": None}, False, None),
    ],
)
def test_text_through_names_reads_as_text_does(
    names: tuple[str, ...], present: dict[str, object], required: bool, expected: str | None
) -> None:
    plain = PropertyReader(present, "Probe")
    folded = PropertyReader(present, "Probe")
    if required:
        assert plain.required_text(*names) == folded.find_required_text(Names(*names)) == expected
    else:
        assert plain.text(*names) == folded.find_text(Names(*names)) == expected


@pytest.mark.parametrize(
    ("present", "field", "problem"),
    [
        ({"Other": 1}, "Name", "(or ServiceName) is missing"),
        ({"ServiceName": None}, "ServiceName", "is null"),
        ({"Name": "   "}, "Name", "(or ServiceName) is empty"),
        ({"Name": b"x"}, "Name", "is binary data, expected text"),
    ],
)
def test_required_text_through_names_fails_as_required_text_does(
    present: dict[str, object], field: str, problem: str
) -> None:
    for read in (
        lambda reader: reader.required_text("Name", "ServiceName"),
        lambda reader: reader.find_required_text(Names("Name", "ServiceName")),
    ):
        with pytest.raises(ParseError) as caught:
            read(PropertyReader(present, "Probe"))
        assert (caught.value.field, caught.value.problem) == (field, problem)


def test_every_alias_a_status_or_event_parser_reads_is_known_and_the_rest_is_kept() -> None:
    service_aliases = [
        *("ServiceName", "State", "DisplayName", "PSComputerName", "MachineName", "SystemName"),
        *("ComputerName", "RoleNames", "Roles", "RoleName"),
    ]
    service = {"Name": "RTCSRV", "Status": "Running", "Future": 1} | {
        alias.upper(): None for alias in service_aliases
    }
    assert dict(parse_service_status(service).extra) == {"Future": 1}
    event_aliases = [
        *("EventID", "InstanceId", "TimeGenerated", "TimeWritten", "LevelDisplayName", "EntryType", "Level"),
        *("ProviderName", "Source", "Message", "MachineName", "ComputerName", "PSComputerName", "LogName"),
        *("Log", "RecordId", "Index"),
    ]
    event = {"Id": 25049, "TimeCreated": "2024-05-01T08:00:00Z", "Future": 1} | {
        alias.lower(): None for alias in event_aliases
    }
    assert dict(parse_event_record(event).extra) == {"Future": 1}


def test_type_names_are_read_when_asked() -> None:
    names = ["Microsoft.Rtc.Management.Deployment.Core.NTService", "System.Object"]
    obj = SimpleNamespace(types=names, adapted_properties={"Name": "RTCSRV"})
    assert PropertyReader(obj, "Probe").types == tuple(names)
    assert PropertyReader({"Name": "RTCSRV"}, "Probe").types == ()


def test_leftovers_built_from_many_threads_at_once_agree() -> None:
    events = [
        parse_event_record({"Id": 25049, "TimeCreated": "2024-05-01T08:00:00Z", f"Custom{i}": i, "Tag": "t"})
        for i in range(200)
    ]
    seen: list[dict[str, object]] = []
    lock = threading.Lock()

    def read(extra: object) -> None:
        assert isinstance(extra, Leftovers)
        value = dict(extra)
        with lock:
            seen.append(value)

    for index, event in enumerate(events):
        threads = [threading.Thread(target=read, args=(event.extra,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen[-4:] == [{f"Custom{index}": index, "Tag": "t"}] * 4
