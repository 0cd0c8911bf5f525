"""No recorded session is dropped silently: each is in scope or listed out of scope with its reason."""

from __future__ import annotations

import pytest

from tests.conformance.recordings import MISSING, available, scope


def test_scope_lists_are_disjoint_and_give_reasons() -> None:
    data = scope()
    assert not set(data["in_scope"]) & set(data["out_of_scope"])
    assert all(str(reason).strip() for reason in data["out_of_scope"].values())


@pytest.mark.skipif(not available(), reason=MISSING)
def test_every_recording_is_classified() -> None:
    data = scope()
    listed = set(data["in_scope"]) | set(data["out_of_scope"])
    recorded = {path.stem for path in available()}
    assert recorded - listed == set(), "recordings neither in scope nor out of scope"
    assert listed - recorded == set(), "listed recordings that do not exist"
