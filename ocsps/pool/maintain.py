"""Start or continue a maintenance roll of a pool: the flow ``ocsps pool maintain`` runs, for scripts too.

The journal is vetted first, before any connection (``open_saved_roll``); ``maintain_pool`` then checks a
saved roll against the servers it now reaches, or plans a new one from the upgrade domains the pool
reports, records the audit intent, and walks the roll with the operator's step in each server's window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ocsps import audit
from ocsps.catalog import Product
from ocsps.errors import UsageError
from ocsps.pool.driver import PoolDriver
from ocsps.pool.engine import Operator, RollEngine, RollEvent, StepResume
from ocsps.pool.plan import RollOptions, plan_roll
from ocsps.pool.state import RollState, save_state
from ocsps.pool.survey import read_domains

__all__ = ["maintain_pool"]


def maintain_pool(
    driver: PoolDriver,
    pool: str,
    product: Product,
    members: Sequence[str],
    options: RollOptions,
    *,
    path: Path,
    saved: RollState | None = None,
    only: Sequence[str] = (),
    simulation: bool = False,
    operator: Operator | None = None,
    on_event: Callable[[RollEvent], None] | None = None,
    step_resume: StepResume | None = None,
    cancel: threading.Event | None = None,
) -> RollState:
    """Run the roll (``saved``, or a new one of ``members``) to its end, a pause or a stop; the state,
    saved at ``path`` after every transition, says where it stands. A saved roll must find the product
    and members it was planned for: members added or gone since would break its quorum sums."""
    if saved is not None:
        if saved.plan.product != product.id or {m.casefold() for m in saved.plan.members} != {
            m.casefold() for m in members
        }:
            raise UsageError(
                f"{path} was planned for {saved.plan.product} members {', '.join(saved.plan.members)}; "
                f"these are {product.id} {', '.join(members)}"
            )
        state = saved
    else:
        plan = plan_roll(
            pool, product, members, read_domains(driver, pool, product, members), only=only or None
        )
        state = RollState(plan, options, simulation=simulation)
    audit.require_writable(f"pool maintain {pool}", list(state.plan.members))
    save_state(path, state)
    RollEngine(
        driver,
        state,
        save=lambda s: save_state(path, s),
        operator=operator,
        on_event=on_event,
        step_resume=step_resume,
        cancel=cancel,
    ).run()
    return state
