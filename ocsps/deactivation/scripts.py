"""The script each plan step runs, and a step sha256 that covers what that step does.

Every deactivation step runs the same template body: what differs from one role to the next is only the
values bound to it (LCSCmd.exe's path and its arguments). A hash of the body alone is therefore the same
for every step and proves nothing about which role a step deactivates; the step sha256 covers the action,
the body and every bound value that decides what the step does. The log file's name (chosen when the step
runs, so that an old log is never read as this run's result) and how a failure is handled
(``RequireSuccess``, which only the change-board script needs) are left out, so that the hash of a plan
step is the same in ``deactivate plan``, ``--what-if``, the change-board script and the run's audit
record whenever LCSCmd.exe is at the path the plan names.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING

from ocsps.deactivation.plan import STOP_SERVICES, DeactivationPlan, DeactivationStep, LcsCmdFacts

if TYPE_CHECKING:
    from ocsps.catalog import Catalog
    from ocsps.powershell.changeboard import Step
    from ocsps.powershell.script import RenderedScript

__all__ = ["NOT_COVERED", "change_board_steps", "step_script", "step_sha256"]

# Bound values a step sha256 leaves out: where the log goes (chosen at run time) and failure handling.
NOT_COVERED = frozenset({"LogPath", "LogDirectory", "LogPrefix", "RequireSuccess"})


def step_sha256(rendered: RenderedScript) -> str:
    """sha256 of the action, the body's sha256 and the covered bound values (canonical JSON)."""
    covered = {k: v for k, v in rendered.bound_parameters.items() if k not in NOT_COVERED}
    text = json.dumps(
        {"action": rendered.action, "body_sha256": rendered.body_sha256, "parameters": covered},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def step_script(
    plan: DeactivationPlan,
    step: DeactivationStep,
    *,
    lcscmd_path: str | None = None,
    log_path: str | None = None,
    facts: LcsCmdFacts | None = None,
    when: datetime | None = None,
    change_board: bool = False,
    catalog: Catalog | None = None,
) -> RenderedScript:
    """The script ``step`` runs: ``stop`` with -Force, or ``deactivate`` with the step's arguments.

    ``lcscmd_path`` defaults to the plan's; the runner passes where it found LCSCmd.exe. A change-board
    step gets a log directory and prefix (its script chooses the file when it runs) and stops on failure;
    otherwise the log path is ``log_path``, or one chosen for ``when`` from ``facts``.
    """
    from ocsps.deactivation.plan import choose_log_path, load_lcscmd_facts
    from ocsps.powershell.script import render_action

    if step.do == STOP_SERVICES:
        return render_action("stop", plan.product, {"Force": True}, catalog=catalog)
    values: dict[str, object] = {"LcsCmdPath": lcscmd_path or plan.lcscmd_path, "Arguments": step.arguments}
    if change_board:
        fx = facts or load_lcscmd_facts(catalog)
        values.update(
            LogDirectory=fx.log_directory,
            LogPrefix=f"{fx.log_prefix}-{step.role}-s{step.number}",
            RequireSuccess=True,
        )
    elif log_path is not None:
        values["LogPath"] = log_path
    elif facts is not None and when is not None:
        values["LogPath"] = choose_log_path(facts, step, when)
    return render_action("deactivate", plan.product, values, catalog=catalog)


# ---------------------------------------------------------------------------------------------- change board


def change_board_steps(
    plan: DeactivationPlan,
    facts: LcsCmdFacts | None = None,
    *,
    from_step: int = 1,
    catalog: Catalog | None = None,
) -> list[Step]:
    """The plan as change-board steps: the checklist first, then the plan's steps from ``from_step``.

    Each deactivation passes ``-RequireSuccess``, so the hand-run script stops, like the runner, at the
    first role whose log lacks Success for a task; its log path is chosen when the script runs.
    """
    from ocsps.catalog import load_catalog
    from ocsps.deactivation.plan import load_lcscmd_facts
    from ocsps.powershell.changeboard import Step
    from ocsps.powershell.script import render_action

    cat = catalog or load_catalog()
    fx = facts or load_lcscmd_facts(cat)
    prod = cat.product(plan.product)
    plan.step(from_step)
    steps = [
        Step(
            "Confirm the precautions",
            render_action(
                "deactivation-checklist",
                prod,
                {"Item": tuple(c.text for c in plan.checklist), "LcsCmdPath": plan.lcscmd_path},
                catalog=cat,
            ),
        )
    ]
    for step in plan.steps[from_step - 1 :]:
        rendered = step_script(plan, step, facts=fx, change_board=True, catalog=cat)
        # The header's body sha256 is the same for every deactivation (one template); the step sha256
        # in the label also covers LCSCmd.exe's path and arguments, and matches the run's audit record.
        label = f"{step.label} [plan step {step.number}, step sha256 {step_sha256(rendered)}]"
        steps.append(Step(label, rendered))
    return steps
