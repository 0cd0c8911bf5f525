"""A restart (one service with its dependents, or a restart plan) as one change-board .ps1.

The script does what ``ocsps.operations.restart.run_steps`` does when ocsps runs the same steps: it looks
every service up before anything stops and skips one that is not on the computer, starts again what it
stopped if a step fails or the script is interrupted (unless ``-OcspsNoRestore``), and lists at the end
the services read as not running. Each step's body is the same text, with the same sha256, that ocsps
sends remotely, so an approval can be matched to an audit entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from ocsps.catalog import Catalog, Product, Service, load_catalog
from ocsps.errors import UsageError
from ocsps.plans.restart import ServiceStep
from ocsps.powershell.changeboard import (
    _PLACEHOLDER,
    ChangeInfo,
    Step,
    _arguments,
    _header,
    _safe_file_name,
    _with_script_sha,
)
from ocsps.powershell.quote import quote_literal
from ocsps.powershell.script import (
    CMDLET_BINDING,
    RenderedScript,
    render_action,
    render_module_import,
    render_template,
)


def rendered_steps(
    steps: Sequence[ServiceStep], product: Product, *, force: bool = False, catalog: Catalog | None = None
) -> list[Step]:
    """Each stop or start as the rendered action ocsps sends (``force``: the stop cmdlet's -Force)."""
    cat = catalog or load_catalog()
    out = []
    for step in steps:
        values: dict[str, object] = dict(cat.service_parameters(product, step.service))
        if step.verb == "stop" and force:
            values["Force"] = True
        label = f"{step.verb} {step.service.display_name(product)}"
        out.append(Step(label, render_action(step.verb, product, values, catalog=cat)))
    return out


def _lookup(product: Product, service: Service, catalog: Catalog) -> str:
    """A read that finds the service or returns nothing (never throws on "not found")."""
    params = catalog.service_parameters(product, service)
    if product.service_control == "cs" and not service.external:
        return f"Get-CsWindowsService -Name {quote_literal(params['Name'])}"
    if "Name" in params:
        return f"Get-Service -Name {quote_literal(params['Name'])}"
    return f"Get-Service -DisplayName {quote_literal(params['DisplayPattern'])}"


def render_restart_board(
    title: str,
    product: Product,
    steps: Sequence[ServiceStep],
    info: ChangeInfo,
    *,
    force: bool = False,
    catalog: Catalog | None = None,
) -> str:
    """The whole restart as one reviewable script; the same inputs always give the same bytes."""
    if not steps:
        raise UsageError("nothing to write: the plan has no steps")
    cat = catalog or load_catalog()
    info = info.checked()
    rendered = rendered_steps(steps, product, force=force, catalog=cat)
    start_of: dict[str, int] = {}
    for index, step in enumerate(steps, 1):
        if step.verb == "start":
            start_of.setdefault(step.service.key, index)
    services = list(dict.fromkeys(s.service for s in steps))
    bodies: dict[str, tuple[int, RenderedScript]] = {}
    for r in rendered:
        bodies.setdefault(r.rendered.body_sha256, (len(bodies) + 1, r.rendered))
    transcript = f"ocsps-{title}-{info.change_id or 'change'}.log"
    text = render_template(
        "_restart_board.ps1.j2",
        header=_header(title, rendered, info),
        script_sha256=_PLACEHOLDER,
        target=quote_literal(info.target),
        change_id=quote_literal(info.change_id),
        reason=quote_literal(info.reason),
        transcript_name=quote_literal(_safe_file_name(transcript)),
        module_import=render_module_import(product).rstrip("\n"),
        bodies=[{"script": _script(r), "sha256": sha} for sha, (_, r) in bodies.items()],
        keys=[quote_literal(s.key) for s in services],
        services=[
            {
                "key": quote_literal(s.key),
                "label": quote_literal(s.display_name(product)),
                "lookup": _lookup(product, s, cat),
                "start": start_of.get(s.key, 0),
                "start_body": bodies[rendered[start_of[s.key] - 1].rendered.body_sha256][0]
                if s.key in start_of
                else 0,
                "start_arguments": _arguments(rendered[start_of[s.key] - 1].rendered)
                if s.key in start_of
                else [],
            }
            for s in services
        ],
        steps=[
            {
                "verb": step.verb,
                "key": quote_literal(step.service.key),
                "label": quote_literal(r.label),
                "only_if_stopped_here": step.only_if_stopped_here,
                "body": bodies[r.rendered.body_sha256][0],
                "arguments": _arguments(r.rendered),
            }
            for step, r in zip(steps, rendered, strict=True)
        ],
    )
    return _with_script_sha(text)


def _script(rendered: RenderedScript) -> str:
    return f"{CMDLET_BINDING}\n{rendered.param_block()}{rendered.body}".rstrip("\n")
