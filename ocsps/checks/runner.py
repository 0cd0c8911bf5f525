"""Running checks on a server: the only part of ``ocsps.checks`` that talks to one.

One session per server serves every check; an action two checks both need (the service list) runs once.
A check whose essential read fails, or whose answer cannot be parsed, is reported as not run (a failure:
a check that could not run vouches for nothing); so is every check when the session opens but the product
module does not import. Connection faults and timeouts are not caught here: the host failed, and the
caller reports it with its own exit code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ocsps.catalog import Catalog, Product, load_catalog
from ocsps.checks.model import (
    ActionOutput,
    Check,
    CheckContext,
    CheckNotRun,
    CheckOptions,
    CheckResult,
    Finding,
)
from ocsps.checks.registry import load_checks
from ocsps.checks.spec import load_checks_data
from ocsps.errors import RemoteError
from ocsps.results import ParseError

if TYPE_CHECKING:
    from ocsps.remote.server import Server

__all__ = [
    "complete_options",
    "context_for",
    "evaluate_outputs",
    "not_applicable",
    "run_checks",
    "session_failed_result",
    "validate_checks",
]


_Options = TypeVar("_Options", bound=CheckOptions)


def context_for(
    name: str,
    product: Product,
    options: CheckOptions | None = None,
    *,
    host: str = "",
    now: datetime | None = None,
    catalog: Catalog | None = None,
) -> CheckContext:
    data = load_checks_data()
    return CheckContext(
        product=product,
        catalog=catalog or load_catalog(),
        spec=data.check(name),
        data=data,
        options=options or CheckOptions(),
        now=now or datetime.now(UTC),
        host=host,
    )


def validate_checks(names: Sequence[str], product: Product, options: CheckOptions) -> None:
    """Refuse bad options for this product before anything is sent (UsageError, exit 2)."""
    checks = load_checks()
    for name in names:
        ctx = context_for(name, product, options)
        if ctx.spec.applies_to(product.id):
            checks[name].validate(ctx)


def not_applicable(ctx: CheckContext) -> CheckResult:
    reason = ctx.spec.not_applicable.format_map({"product": ctx.product.id})
    finding = ctx.common_finding("applies", "not-applicable", reason=reason)
    return _result(ctx, [finding], None)


def _result(ctx: CheckContext, findings: Sequence[Finding], facts: Any) -> CheckResult:
    return CheckResult(
        check=ctx.spec.name,
        host=ctx.host,
        product=ctx.product.id,
        findings=tuple(findings),
        source=ctx.spec.source,
        facts=facts,
    )


def evaluate_outputs(unit: Check[Any], ctx: CheckContext, outputs: Mapping[str, ActionOutput]) -> CheckResult:
    """Facts then rules, from what the actions returned; pure, and what the data-driven tests exercise."""
    try:
        facts = unit.facts(outputs, ctx)
    except CheckNotRun as exc:
        return _result(ctx, [ctx.common_finding("not-run", exc.outcome, **exc.values)], None)
    except ParseError as exc:
        return _result(ctx, [ctx.common_finding("not-run", "unreadable", error=exc.message)], None)
    return _result(ctx, unit.evaluate(facts, ctx), unit.facts_json(facts))


def session_failed_result(unit: Check[Any], ctx: CheckContext, error: str) -> CheckResult:
    findings = unit.session_failed(error, ctx) or [ctx.common_finding("not-run", "session", error=error)]
    return _result(ctx, findings, None)


def complete_options(
    names: Sequence[str], options: _Options, env: Mapping[str, str] | None = None
) -> _Options:
    """The options with what the caller left unset filled in from the config file (``env`` selects it).

    ``lcscmd_locations``: the config file's ``[lcscmd] path`` when ``deactivation-ready`` is among
    ``names``, so that the check looks where a deactivation run would, whoever runs it.
    """
    if options.lcscmd_locations is not None:
        return options
    from ocsps.deactivation.configured import configured_lcscmd_locations

    found = configured_lcscmd_locations(env) if "deactivation-ready" in names else ()
    return dataclasses.replace(options, lcscmd_locations=found)


def run_checks(
    server: Server,
    names: Sequence[str],
    options: CheckOptions | None = None,
    *,
    now: datetime | None = None,
    timeout: float | None = None,
) -> list[CheckResult]:
    """Run the named checks on one ``ocsps.remote.server.Server``; results in the order of ``names``.

    Options left unset are filled in as :func:`complete_options` does.
    """
    options = complete_options(names, options or CheckOptions())
    checks = load_checks()
    product = server.product
    moment = now or datetime.now(UTC)
    contexts = {n: context_for(n, product, options, host=server.host, now=moment) for n in names}
    applicable = [n for n in names if contexts[n].spec.applies_to(product.id)]
    session_error: str | None = None
    if applicable:
        try:
            server.session.open(import_module=True)
        except RemoteError as exc:  # the product module did not import: the server answered, checks report it
            session_error = exc.message
    cache: dict[tuple[str, str], ActionOutput] = {}
    results = []
    for name in names:
        ctx, unit = contexts[name], checks[name]
        if name not in applicable:
            results.append(not_applicable(ctx))
        elif session_error is not None:
            results.append(session_failed_result(unit, ctx, session_error))
        else:
            outputs = {r.key: _run(server, r.action, r.values, cache, timeout) for r in unit.requests(ctx)}
            results.append(evaluate_outputs(unit, ctx, outputs))
    return results


def _run(
    server: Server,
    action: str,
    values: Mapping[str, object],
    cache: dict[tuple[str, str], ActionOutput],
    timeout: float | None,
) -> ActionOutput:
    rendered = server.render(action, None, **dict(values))
    key = (action, repr(sorted(rendered.bound_parameters.items())))
    if key not in cache:
        result = server.session.run(rendered, timeout=timeout)
        server.check_answers(result.output)
        error = result.errors[0].message if result.errors else None
        cache[key] = ActionOutput(tuple(result.output), error)
    return cache[key]
