"""Stop order from the ``requires`` graph: cases in tests/data/stop_order, plus the packaged catalog."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ocsps.catalog import Catalog, CatalogError, _build, read_data
from tests.conftest import DATA

CASES = sorted((DATA / "stop_order").glob("*.toml"))
_NAMES = ["products", "services", "cmdlets", "events", "restart_rules", "roles", "actions"]


def _raw_with(services: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    raw = {n: copy.deepcopy(dict(read_data(n))) for n in _NAMES}
    extra = [{"display": s["key"], "products": ["ocs2007r2"], "roles": ["FrontEnd"], **s} for s in services]
    raw["services"] = {"services": [*raw["services"]["services"], *extra]}
    return raw


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_stop_order_case(path: Path) -> None:
    case = tomllib.loads(path.read_text())
    raw = _raw_with(case["services"])
    if "error" in case:
        with pytest.raises(CatalogError, match=case["error"]):
            _build(raw)
        return
    catalog = _build(raw)
    chosen = [catalog.service_by_key(s["key"]) for s in case["services"]]
    assert [s.key for s in catalog.stop_sequence(chosen)] == case["order"]


def test_order_follows_the_graph_even_where_numbers_disagree(catalog: Catalog) -> None:
    """The numbers only break ties: an unchecked catalog with a contradicting number still orders right."""
    import dataclasses

    edge, auth = catalog.service_by_key("ocs-av-edge"), catalog.service_by_key("ocs-av-authentication")
    wrong = dataclasses.replace(auth, stop_order=edge.stop_order + 10)
    unchecked = dataclasses.replace(catalog, services=(edge, wrong))
    assert [s.key for s in unchecked.stop_sequence([edge, wrong])] == ["ocs-av-authentication", "ocs-av-edge"]


@pytest.mark.parametrize("product_id", ["ocs2007", "ocs2007r2", "lync2010", "lync2013", "sfb2015", "sfb2019"])
def test_every_dependent_stops_before_what_it_requires(catalog: Catalog, product_id: str) -> None:
    product = catalog.product(product_id)
    order = [s.key for s in catalog.services_for(product, include_external=True)]
    for service in catalog.services_for(product, include_external=True):
        for prereq in service.requires:
            assert order.index(service.key) < order.index(prereq), (service.key, prereq)


def test_dependents_known_from_the_catalog(catalog: Catalog) -> None:
    r2 = catalog.product("ocs2007r2")
    host = catalog.service_by_key("ocs-application-host")
    assert {s.key for s in catalog.dependents_of(r2, host)} == {
        "ocs-response-group",
        "ocs-conferencing-attendant",
        "ocs-conferencing-announcement",
        "ocs-outside-voice-control",
    }
    edge = catalog.service_by_key("ocs-av-edge")
    assert [s.key for s in catalog.dependents_of(r2, edge)] == ["ocs-av-authentication"]
