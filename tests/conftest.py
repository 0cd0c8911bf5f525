"""Shared fixtures: where the source documents live, and the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsps.catalog import Catalog, load_catalog

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def seeds_dir() -> Path | None:
    """The product's source documents sit in ``shared/seeds`` beside the repository."""
    for candidate in (ROOT.parent / "shared" / "seeds", ROOT / "shared" / "seeds"):
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()
