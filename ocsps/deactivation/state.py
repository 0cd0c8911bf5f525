"""Which roles LcsCmd's state check shows as activated, read from its log on positive evidence only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocsps.catalog import Catalog, load_catalog
from ocsps.deactivation.facts import LcsCmdFacts, load_lcscmd_facts

if TYPE_CHECKING:
    from ocsps.results import LcsCmdOutcome

__all__ = ["StateReading", "read_state_outcome"]


def _fold(text: str) -> str:
    return " ".join(text.split()).removesuffix(".").casefold()


@dataclass(frozen=True)
class StateReading:
    """Which roles LcsCmd's state check shows as activated; ``activated`` None means it could not tell."""

    activated: tuple[str, ...] | None
    not_activated: tuple[str, ...] = ()
    unplaced: tuple[str, ...] = ()
    reason: str | None = None
    log_path: str | None = None


def read_state_outcome(
    outcome: LcsCmdOutcome, product: str, catalog: Catalog | None = None, facts: LcsCmdFacts | None = None
) -> StateReading:
    """Decide from a CheckLCServerState log which roles are activated, on positive evidence only.

    The log's layout is not documented: a task is placed by the role's ``state_names`` and its result by
    ``activated_results`` / ``not_activated_results``. One entry ocsps cannot place makes the whole
    reading unknown, because an unknown entry could be an activated role the plan would leave out.
    """
    cat = catalog or load_catalog()
    fx = facts or load_lcscmd_facts(cat)
    path = outcome.log_path
    if outcome.exit_code != 0:
        code = "no exit code" if outcome.exit_code is None else f"exit code {outcome.exit_code}"
        return StateReading(None, reason=f"LcsCmd's state check ended with {code}", log_path=path)
    if outcome.log_text is None or outcome.log_error is not None:
        return StateReading(
            None, reason=f"the state log is unreadable: {outcome.log_error or 'not read'}", log_path=path
        )
    roles = [r for r in cat.roles.values() if product in r.products]
    names = [(_fold(n), r.key) for r in roles for n in fx.commands[r.key].state_names]
    yes = {_fold(v) for v in fx.activated_results}
    no = {_fold(v) for v in fx.not_activated_results}
    activated: dict[str, bool] = {}
    unplaced: list[str] = []
    for task in outcome.tasks:
        folded = _fold(task.name)
        matches = sorted(((len(n), key) for n, key in names if n == folded or n in folded), reverse=True)
        best = [key for size, key in matches if size == matches[0][0]] if matches else []
        result = _fold(task.result)
        state = True if result in yes else False if result in no else None
        if len(set(best)) != 1 or state is None or activated.get(best[0], state) != state:
            unplaced.append(f"{task.name}: {task.result or 'no result'}")
            continue
        activated[best[0]] = state
    if unplaced:
        shown = "; ".join(unplaced[:5])
        return StateReading(
            None,
            unplaced=tuple(unplaced),
            reason=f"the state log has entries ocsps cannot place (layout not documented): {shown}",
            log_path=path,
        )
    if not activated:
        return StateReading(None, reason="the state log names no known role", log_path=path)
    return StateReading(
        activated=tuple(k for k, v in activated.items() if v),
        not_activated=tuple(k for k, v in activated.items() if not v),
        log_path=path,
    )
