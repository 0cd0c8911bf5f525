"""Synthetic transactions as the post-checks of a patched pool.

A pool whose members all report the new version can still refuse sign-ins (a database left behind, a
registrar that lost quorum during the roll): the board wants one sign-in and one message tried before the
window closes. The roll itself only knows the ``PostChecks`` hook; this module fills it with
``Test-CsRegistration`` / ``Test-CsIM`` (``ocsps.checks.synthetic``), run once from the pool's first member,
each outcome written to the audit log so that ``ocsps report`` shows it with the change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ocsps import audit
from ocsps.patch.pool import PostCheck, PostChecks

if TYPE_CHECKING:
    from ocsps.remote.server import Server

__all__ = ["synthetic_post_checks"]


def synthetic_post_checks(
    server_for: Callable[[str], Server], users: Sequence[str] = (), *, timeout: float | None = None
) -> PostChecks:
    """The hook: one outcome per transaction, or the check's own findings when none could run.

    ``users``: none (the pool's health-monitoring test users), one SIP address (sign-in), or sender and
    receiver; checked before the roll starts by the caller, again here before anything is sent.
    """

    def run(pool: str, members: Sequence[str]) -> Sequence[PostCheck]:
        from ocsps.checks.synthetic import run_synthetic

        result = run_synthetic(server_for(members[0]), pool, users, timeout=timeout)
        outcomes = [
            PostCheck(
                f"synthetic {t.name}",
                t.succeeded,
                f"{t.result} against {t.target}"
                + (f" in {t.latency_text}" if t.latency_text else "")
                + (f": {t.error}" if t.error else "")
                + (f" ({t.diagnosis})" if t.diagnosis else ""),
            )
            for t in result.transactions
        ]
        if not outcomes:
            reasons = "; ".join(f.reason for f in result.check.findings) or "no transaction ran"
            outcomes = [PostCheck("synthetic transactions", result.ok, reasons)]
        for outcome in outcomes:  # reads are not audited per call: the board's evidence needs these
            audit.record(
                host=result.host,
                action="check-synthetic",
                parameters={"pool": pool, "check": outcome.name, "users": list(users)},
                outcome="ok" if outcome.ok else "failed",
                duration=0.0,
                detail=outcome.message,
            )
        return outcomes

    return run
