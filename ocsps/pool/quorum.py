"""The Front End pool quorum rule, applied: may this server go down now?

If fewer servers run than the quorum table requires, the remaining servers stop every service: the pool
is gone, not degraded. So every take-down is checked against the servers that are down at that moment
(whoever took them down), and a server that cannot be reached counts as down.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ocsps.pool.facts import QuorumRule

__all__ = ["QuorumVerdict", "may_take_down", "spare"]


@dataclass(frozen=True)
class QuorumVerdict:
    allowed: bool
    candidate: str
    running_after: int
    must_run: int
    counted: int
    down_before: tuple[str, ...]
    reason: str


def _fold(names: Collection[str]) -> set[str]:
    return {n.casefold() for n in names}


def _scope(members: Sequence[str], rule: QuorumRule) -> list[str]:
    return list(members[: rule.of_first] if rule.of_first else members)


def may_take_down(
    members: Sequence[str], down: Collection[str], candidate: str, rule: QuorumRule
) -> QuorumVerdict:
    """Whether ``candidate`` may go down while ``down`` already are; ``members`` in topology order."""
    if not rule.covers(len(members)):
        raise ValueError(f"quorum rule for {rule.min_servers}-{rule.max_servers} used on {len(members)}")
    gone = _fold(down) | {candidate.casefold()}
    scope = _scope(members, rule)
    running = [m for m in scope if m.casefold() not in gone]
    before = tuple(m for m in members if m.casefold() in _fold(down))
    allowed = len(running) >= rule.must_run
    among = f" of the first {rule.of_first}" if rule.of_first else ""
    already = f"{', '.join(before)} {'is' if len(before) == 1 else 'are'} down already; " if before else ""
    if allowed:
        reason = (
            f"{candidate} may go down: {len(running)}{among} stay running, "
            f"a pool of {len(members)} needs {rule.must_run}"
        )
    else:
        reason = (
            f"quorum: a pool of {len(members)} must keep {rule.must_run}{among} running; {already}"
            f"taking {candidate} down would leave {len(running)}"
        )
    return QuorumVerdict(allowed, candidate, len(running), rule.must_run, len(scope), before, reason)


def spare(members: Sequence[str], down: Collection[str], rule: QuorumRule) -> int:
    """How many more servers of the counted scope could go down now (negative: quorum already lost)."""
    gone = _fold(down)
    running = [m for m in _scope(members, rule) if m.casefold() not in gone]
    return len(running) - rule.must_run
