"""Start or resume the patch roll of a pool: the one flow the CLI, the Ansible module and scripts share.

``open_rollout`` checks what can be checked before any connection or password prompt: the pool's saved
journal (a resume must be asked what the saved roll was asked, against the same kind of estate; a new roll
is refused over an unfinished one). ``Rollout.run`` then works against the servers: it reads every member
(nothing is sent when all are already current), reads the upgrade domains where the product reports
them, plans, writes the audit intent and the journal, and runs ``patch_pool``.

    rollout = open_rollout(request, state_path(pool), resume=False)
    result = rollout.run(pool_driver, patch_driver, product, post_checks=...)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ocsps import audit
from ocsps.catalog import Product
from ocsps.errors import UsageError
from ocsps.patch.plan import PatchOptions, PatchPlan
from ocsps.patch.pool import (
    PoolPatchDriver,
    PoolPatchResult,
    PoolPatchStatus,
    PostChecks,
    ServerOutcome,
    check_request,
    patch_pool,
    plan_pool_patch,
    read_members,
)
from ocsps.pool import (
    PoolDriver,
    RollEvent,
    RollOptions,
    RollState,
    UpgradeDomain,
    open_saved_roll,
    save_state,
)
from ocsps.pool.survey import read_domains

__all__ = ["PoolPatchRequest", "Rollout", "open_rollout"]

KIND = "patch-pool"


@dataclass(frozen=True)
class PoolPatchRequest:
    """What the operator asks of a pool patch; the same request plans a new roll or vets a resume.

    ``members`` in topology order; ``only`` narrows the roll to some of them. ``domains``: the upgrade
    domains when known offline (a lab topology, a change-board script); None reads them from the pool.
    """

    pool: str
    members: tuple[str, ...]
    installer: str
    options: PatchOptions
    roll_options: RollOptions | None = None
    sql_server: str = ""
    database_update: bool = True
    change_id: str = ""
    only: tuple[str, ...] = ()
    domains: tuple[UpgradeDomain, ...] | None = None
    simulation: bool = False

    def plan(
        self, product: Product, domains: Sequence[UpgradeDomain] | None = None
    ) -> tuple[RollState, list[PatchPlan]]:
        """The roll and each member's patch plan (``plan_pool_patch``), nothing sent."""
        return plan_pool_patch(
            self.pool,
            product,
            self.members,
            self.installer,
            self.options,
            domains=(self.domains or ()) if domains is None else domains,
            roll_options=self.roll_options,
            sql_server=self.sql_server,
            database_update=self.database_update,
            change_id=self.change_id,
            simulation=self.simulation,
            only=self.only,
        )


@dataclass(frozen=True)
class Rollout:
    """A vetted request and the journal it continues (``saved``) or starts at ``path``."""

    request: PoolPatchRequest
    path: Path
    saved: RollState | None

    def run(
        self,
        pool_driver: PoolDriver,
        patch_driver: PoolPatchDriver,
        product: Product,
        *,
        rerun_install: bool = False,
        post_checks: PostChecks | None = None,
        skip_current: bool = True,
        on_event: Callable[[RollEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cancel: threading.Event | None = None,
    ) -> PoolPatchResult:
        """Run the roll to its end, a stop or a fault; the result says what the last reading found.

        With ``skip_current``, a new roll first reads every member: when each already reports the version,
        runs every service, has none Disabled and no restart pending, nothing is sent and the status is
        ``current`` (what a rerun of a finished change, or an Ansible play, should find). Every audit
        record is stamped with the request's change id, when it has one.
        """
        stamp = audit.change(self.request.change_id) if self.request.change_id else contextlib.nullcontext()
        with stamp:
            request = self.request
            before: list[ServerOutcome] = []
            if self.saved is not None:
                state = self.saved
                if state.plan.product != product.id:
                    raise UsageError(
                        f"{self.path} was planned for {state.plan.product}; these servers run {product.id}"
                    )
            else:
                state, _plans = request.plan(product)
                if skip_current:
                    before = read_members(patch_driver, state)
                    if all(m.current for m in before):
                        version = request.options.expect_version
                        return PoolPatchResult(
                            state.plan.pool,
                            product.id,
                            version,
                            PoolPatchStatus.CURRENT,
                            f"every member already reports {version}, in service, no restart pending: "
                            "nothing was sent",
                            state,
                            servers=before,
                            versions_before=_versions(before),
                        )
                if request.domains is None:
                    domains = read_domains(pool_driver, request.pool, product, request.members)
                    state, _plans = request.plan(product, domains)
            audit.require_writable(f"patch pool {request.pool}", list(state.plan.members))
            save_state(self.path, state)
            result = patch_pool(
                pool_driver,
                patch_driver,
                state,
                product,
                save=lambda s: save_state(self.path, s),
                rerun_install=rerun_install,
                post_checks=post_checks,
                on_event=on_event,
                clock=clock,
                sleep=sleep,
                cancel=cancel,
            )
            result.versions_before = _versions(before)
            return result


def open_rollout(
    request: PoolPatchRequest, path: Path, *, resume: bool = False, resume_hint: str = "--resume"
) -> Rollout:
    """Vet the request against the pool's journal at ``path``; a ``UsageError`` says what is wrong
    (nothing to resume, another pool's or another kind's roll, a resume asked something else, a new roll
    over an unfinished one). ``request.plan(product)`` checks a new roll's request offline where the
    product is known before connecting."""
    saved = open_saved_roll(
        path, request.pool, resume=resume, simulation=request.simulation, kind=KIND, resume_hint=resume_hint
    )
    if saved is not None:
        check_request(saved, request.installer, request.options, request.sql_server, request.database_update)
    return Rollout(request, path, saved)


def _versions(members: Sequence[ServerOutcome]) -> dict[str, dict[str, str]]:
    return {m.server: dict(m.versions) for m in members}
