"""Shared fixtures: where the source documents live, and the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ocsps.catalog import Catalog, load_catalog
from ocsps.remote.connector import lab_settings

if TYPE_CHECKING:
    from ocsps.lab.runtime import Lab
    from ocsps.remote.server import Server

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def seeds_dir() -> Path | None:
    """The product's source documents sit in ``shared/seeds`` beside the repository."""
    for candidate in (ROOT.parent / "shared" / "seeds", ROOT / "shared" / "seeds"):
        if candidate.is_dir():
            return candidate
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Parsed-catalog and template caches go to a fresh directory, never the user's own cache."""
    import os
    import tempfile

    os.environ.setdefault("OCSPS_CACHE_DIR", tempfile.mkdtemp(prefix="ocsps-test-cache-"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--write-reliability-page",
        action="store_true",
        default=False,
        help="rewrite docs/reliability.md from the figures of a full, passing run",
    )


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """A fresh default-topology lab on a free loopback port; the audit log goes to a temp file."""
    from ocsps.lab.runtime import Lab

    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    with Lab() as running:
        yield running


def lab_server(lab: Lab, fqdn: str, **settings: object) -> Server:
    """A ``Server`` for one lab host (not yet opened: use it as a context manager)."""
    from ocsps.remote.server import Server
    from ocsps.remote.session import ServerSession

    return Server(ServerSession(lab_settings(lab, fqdn, **settings), lab.server(fqdn).product))
