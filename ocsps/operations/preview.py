"""What a change would send, rendered: the scripts a rehearsal shows, with their values bound.

One function per action, so that ``ocsps drain|stop|start --what-if`` and the check mode of the Ansible
``service`` module show the same scripts with the same values as a run sends: the status read first, then
the change. (A restart's steps come from ``ocsps.plans.restart_script.rendered_steps``.)
"""

from __future__ import annotations

from collections.abc import Iterable

from ocsps.catalog import Catalog, Product, Service
from ocsps.powershell.script import RenderedScript, render_action
from ocsps.remote.server import drain_watch_values


def _service(catalog: Catalog, product: Product, service: str | Service) -> Service:
    return service if isinstance(service, Service) else catalog.find_service(product, service)


def preview_change(
    catalog: Catalog, product: Product, service: str | Service, action: str, *, force: bool = False
) -> list[RenderedScript]:
    """The read and the ``stop``/``start``/``restart`` call ``change_service`` sends; ``force`` adds the
    stop cmdlet's ``-Force`` (a start has none)."""
    named: dict[str, object] = dict(catalog.service_parameters(product, _service(catalog, product, service)))
    extra: dict[str, object] = {"Force": True} if force and action != "start" else {}
    return [
        render_action("status", product, named, catalog=catalog),
        render_action(action, product, {**named, **extra}, catalog=catalog),
    ]


def preview_drain(
    catalog: Catalog,
    product: Product,
    service: str | Service,
    *,
    poll: float,
    until: float,
    wait: bool = True,
    leave_running: Iterable[str] = (),
) -> list[RenderedScript]:
    """The read and the request a drain sends: the request and its watch in one pipeline, or with
    ``wait`` False the request alone (``-NoWait``). ``leave_running`` is decided by the catalog
    (``Catalog.leave_running``): a name it cannot keep is a usage error."""
    svc = _service(catalog, product, service)
    named: dict[str, object] = dict(catalog.service_parameters(product, svc))
    keep = dict(catalog.leave_running(product, leave_running).values)
    if wait:
        timing = drain_watch_values(catalog, product, svc, poll=poll, until=until)
        change = render_action("drain-watch", product, {**named, **timing, **keep}, catalog=catalog)
    else:
        change = render_action("drain", product, {**named, "NoWait": True, **keep}, catalog=catalog)
    return [render_action("status", product, named, catalog=catalog), change]
