"""Fixtures for the remote execution core: an in-process lab behind ``responses``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.session.wire import WireLab


@pytest.fixture
def wire() -> Iterator[WireLab]:
    lab = WireLab()
    with lab.active():
        yield lab
