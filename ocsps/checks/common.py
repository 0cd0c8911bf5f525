"""Small pure helpers several checks share: reading outputs, finding catalog services among statuses."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from ocsps.catalog import Catalog, Product, Service
from ocsps.checks.model import ActionOutput, CheckNotRun
from ocsps.results import ServiceStatus

T = TypeVar("T")

__all__ = ["objects", "parse_each", "present_services", "service_matches"]


def objects(outputs: Mapping[str, ActionOutput], key: str, action: str) -> tuple[object, ...]:
    """The objects of an essential request; its failure means the check cannot run."""
    found = outputs.get(key)
    if found is None:
        raise CheckNotRun("remote-error", action=action, error="no answer was recorded")
    if found.error:
        raise CheckNotRun("remote-error", action=action, error=found.error)
    return found.objects


def parse_each(items: Iterable[object], parse: Callable[[object], T]) -> list[T]:
    return [parse(item) for item in items]


def service_matches(service: Service, product: Product, status: ServiceStatus) -> bool:
    """Does a status from the server describe this catalog service?

    OCS short names other than RtcSrv are not documented, so a service is also recognised by its display
    name or the catalog's display-name wildcard, the same way the templates select it.
    """
    names = {service.key.casefold()}
    if service.name:
        names.add(service.name.casefold())
    if status.name.casefold() in names:
        return True
    display = (status.display_name or "").casefold()
    if not display:
        return False
    if display == service.display_name(product).casefold():
        return True
    return bool(service.display_pattern) and fnmatch.fnmatchcase(
        display, (service.display_pattern or "").casefold()
    )


def present_services(
    catalog: Catalog, product: Product, statuses: Iterable[ServiceStatus]
) -> dict[str, ServiceStatus]:
    """Catalog service key -> its status, for every catalog service of the product found on the server."""
    listed = list(statuses)
    found: dict[str, ServiceStatus] = {}
    for service in catalog.services_for(product, include_external=True):
        match = next((s for s in listed if service_matches(service, product, s)), None)
        if match is not None:
            found[service.key] = match
    return found
