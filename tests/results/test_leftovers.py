"""Properties a parser did not read are kept in ``extra``, worked out only when read, and never wrong.

The leftovers are computed lazily and aliases are case-folded once per alias list; neither may change what
a parser sees or returns.
"""

from __future__ import annotations

import threading

import pytest

from ocsps.results import parse_event_record, parse_service_status
from ocsps.results.base import EMPTY, Leftovers, PropertyReader


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
