"""One encoder writes every document: the rules it applies to types msgspec would write its own way."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path

import pytest

from ocsps.jsonout import to_builtins
from ocsps.results import EventRecord, parse_service_status
from ocsps.results.base import FrozenMap


class Colour(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Sample:
    when: datetime
    colour: Colour
    names: tuple[str, ...] = ()
    extra: object = None
    derived: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "derived", len(self.names))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2020, 1, 1, tzinfo=UTC), "2020-01-01T00:00:00+00:00"),  # isoformat, not msgspec's "Z"
        (
            datetime(2020, 1, 1, 8, 30, 0, 120000, tzinfo=timezone(timedelta(hours=2))),
            "2020-01-01T08:30:00.120000+02:00",
        ),
        (date(2020, 1, 2), "2020-01-02"),
        (timedelta(hours=1, seconds=3), "1:00:03"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (2**13_000, "(an integer of about 3913 digits)"),
        (Path("a") / "b.json", str(Path("a") / "b.json")),
        (Colour.RED, "red"),
        ((1, (2, 3)), [1, [2, 3]]),
    ],
)
def test_scalars_keep_the_text_documents_always_had(value: object, expected: object) -> None:
    assert to_builtins(value) == expected
    assert to_builtins({"v": [value]}) == {"v": [expected]}


def test_a_dataclass_is_its_fields_with_computed_ones() -> None:
    doc = to_builtins(Sample(datetime(2021, 5, 1, tzinfo=UTC), Colour.RED, ("a", "b")))
    assert doc == {
        "when": "2021-05-01T00:00:00+00:00",
        "colour": "red",
        "names": ["a", "b"],
        "extra": None,
        "derived": 2,
    }
    json.dumps(doc)


def test_server_data_in_read_only_mappings_is_bounded() -> None:
    looped: list[object] = ["x"]
    looped.append(looped)
    deep: object = "x"
    for _ in range(5_000):
        deep = [deep]
    extra = FrozenMap({"Looped": looped, "Deep": deep, "Big": 2**13_000, "Raw": b"\x00\x01"})
    doc = to_builtins(EventRecord(id=1, time=datetime(2020, 1, 1, tzinfo=UTC), extra=extra))
    json.dumps(doc)
    assert doc["extra"]["Raw"] == "AAE=" and doc["extra"]["Big"].startswith("(an integer")


def test_leftover_properties_of_a_parsed_result_are_written() -> None:
    status = parse_service_status({"Name": "RTCSRV", "Status": 4, "StartType": "Automatic"})
    doc = to_builtins(status)
    assert doc["status"] == "Running" and doc["extra"] == {"StartType": "Automatic"}


class Legacy:
    def to_json(self) -> dict[str, object]:
        return {"phase": "stopped"}


def test_a_to_json_method_is_not_a_way_around_the_declared_shape() -> None:
    with pytest.raises(TypeError, match="cannot write a Legacy"):
        to_builtins({"report": Legacy()})


def test_an_unknown_type_is_refused_not_dropped() -> None:
    with pytest.raises(TypeError, match="object"):
        to_builtins({"x": object()})
