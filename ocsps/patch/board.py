"""One server's patch as a change-board script that runs on the server itself, in two parts.

``ocsps patch server`` can walk a server through its patch over PowerShell Remoting; some change boards
want the operator at the console instead. This module turns the same plan into one ``.ps1`` that does
what the runner does, decided the same way, from the same step bodies (byte for byte, with their sha256
in the header, so an approval can be matched to what ocsps would send).

The restart ends the script, so the work comes in two parts of one file, chosen with ``-Part 1`` and
``-Part 2``. One file rather than two: the board reviews and approves one text with one sha256; the values
both parts depend on (installer, expected version, deadlines, where the start-up types are kept) are
written once and cannot drift between two separately generated files; and Part 2 can only come from the
same approval as Part 1. Part 1 writes what Part 2 needs (each service's start-up type, whether it ran,
the boot time, the installer's exit code) to a file on the server before it holds any start-up type,
because nothing survives the restart but the disk.

Pure: plan in, script text out. Every value reaches the text through ``ocsps.powershell.quote``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ocsps.catalog import Catalog, Product, load_catalog
from ocsps.patch.facts import PatchFacts, load_patch_facts
from ocsps.patch.model import START_MODES
from ocsps.patch.plan import PatchPlan
from ocsps.powershell.changeboard import (
    _PLACEHOLDER,
    ChangeInfo,
    Step,
    _header,
    _safe_file_name,
    _with_script_sha,
)
from ocsps.powershell.quote import comment_safe, quote_array, quote_literal
from ocsps.powershell.script import CMDLET_BINDING, RenderedScript, render_action, render_module_import
from ocsps.powershell.script import render_template as _render_template

__all__ = [
    "BOARD_TEMPLATE",
    "BoardBody",
    "board_bodies",
    "board_file_name",
    "render_board_text",
    "render_patch_board",
]

BOARD_TEMPLATE = "patch-board.ps1.j2"


@dataclass(frozen=True)
class BoardBody:
    """One remote action the script calls, under the name its template gives it (``$ocspsBody<name>``)."""

    name: str
    step: Step


def board_bodies(plan: PatchPlan, product: Product, facts: PatchFacts, catalog: Catalog) -> list[BoardBody]:
    """The actions the two parts call, rendered as ocsps sends them (values bound when the script calls)."""
    services = ("RTCSRV",)  # a sample: the script binds the services it reads on the server

    def render(action: str, **values: object) -> RenderedScript:
        return render_action(action, product, values, catalog=catalog)

    flags = facts.reboot_flags
    return [
        BoardBody("Status", Step("list the product's services (Get-CsWindowsService)", render("status"))),
        BoardBody(
            "State",
            Step(
                "read boot time, free space, installer, pending restart, services, component versions",
                render(
                    "patch-state",
                    InstallerPath=plan.installer_path,
                    RebootFlagName=[f.name for f in flags],
                    RebootFlagPath=[f.path for f in flags],
                    RebootFlagValue=[f.value for f in flags],
                ),
            ),
        ),
        BoardBody("Drain", Step("drain a service (Part 1)", render("drain", Name=services[0], NoWait=True))),
        BoardBody(
            "Stop",
            Step(
                "stop a service that did not drain in time (Part 1, only with --then force-stop)",
                render("stop", Name=services[0], Force=True),
            ),
        ),
        BoardBody(
            "Hold",
            Step(
                "set start-up types: Disabled (Part 1), the recorded ones (Part 2)",
                render("patch-set-startup", Name=list(services), StartupType="Disabled"),
            ),
        ),
        BoardBody(
            "Install",
            Step(
                "run the update installer silently (Part 1)",
                render("patch-install", InstallerPath=plan.installer_path, Switches=list(plan.arguments)),
            ),
        ),
        BoardBody("Restart", Step("restart the computer (end of Part 1)", render("patch-restart"))),
        BoardBody(
            "Start", Step("start a service that ran before (Part 2)", render("start", Name=services[0]))
        ),
    ]


def board_file_name(plan: PatchPlan, change_id: str = "") -> str:
    """A file name that says what the script is for: ``ocsps-patch-HOST-CHANGE.ps1``."""
    return _safe_file_name(f"ocsps-patch-{plan.host}-{change_id or 'change'}") + ".ps1"


def _script(rendered: RenderedScript) -> str:
    return f"{CMDLET_BINDING}\n{rendered.param_block()}{rendered.body}".rstrip("\n")


def _seconds(value: float) -> str:
    """A deadline as whole seconds, at least one (PowerShell's Start-Sleep and AddSeconds take them)."""
    return str(max(1, round(value)))


def render_patch_board(
    plan: PatchPlan,
    *,
    change_id: str = "",
    reason: str = "",
    facts: PatchFacts | None = None,
    catalog: Catalog | None = None,
) -> str:
    """The plan as one two-part change-board script; the same inputs always give the same bytes.

    A value that cannot be written faithfully into a script (a line break, a control character) is
    refused with a ``UsageError``, before any text exists.
    """
    cat = catalog or load_catalog()
    fx = facts or load_patch_facts()
    product = cat.product(plan.product)
    bodies = board_bodies(plan, product, fx, cat)
    title = f"patch {plan.host} to {plan.options.expect_version} (two parts: -Part 1, restart, -Part 2)"
    return render_board_text(plan, bodies, title, change_id=change_id, reason=reason, facts=fx, catalog=cat)


def render_board_text(
    plan: PatchPlan,
    bodies: Sequence[BoardBody],
    title: str,
    *,
    change_id: str = "",
    reason: str = "",
    facts: PatchFacts | None = None,
    catalog: Catalog | None = None,
    pool: Mapping[str, object] | None = None,
) -> str:
    """The two-part script from its bodies; ``pool`` holds the in-pool variant's values (already quoted
    or comment-safe: ``ocsps.patch.pool_board`` builds them), ``None`` for a server outside a pool."""
    cat = catalog or load_catalog()
    fx = facts or load_patch_facts()
    product = cat.product(plan.product)
    info = ChangeInfo(plan.host, change_id, reason).checked()
    opts = plan.options
    # under ProgramData, not TEMP: it must outlive the restart and the logon session of Part 1
    state_name = "ocsps\\" + _safe_file_name(f"patch-{info.change_id or plan.host}.txt")
    transcript = _safe_file_name(f"ocsps-patch-{info.change_id or 'change'}.log")
    modes = ", ".join(f"{quote_literal(k)} = {quote_literal(v)}" for k, v in sorted(START_MODES.items()))
    text = _render_template(
        BOARD_TEMPLATE,
        header=_header(title, [bodies[0].step], info)[:-1]
        + [
            f"Body {b.name}: {comment_safe(b.step.label)}; body sha256 {b.step.rendered.body_sha256}"
            for b in bodies
        ],
        script_sha256=_PLACEHOLDER,
        target=quote_literal(info.target, what="computer"),
        change_id=quote_literal(info.change_id, what="change id"),
        reason=quote_literal(info.reason, what="reason"),
        state_name=quote_literal(state_name),
        transcript_name=quote_literal(transcript),
        module_import=render_module_import(product).rstrip("\n"),
        installer_path=quote_literal(plan.installer_path, what="installer path"),
        switches=quote_array(plan.arguments, what="installer switch"),
        expect_version=quote_literal(opts.expect_version, what="expected version"),
        reboot=quote_literal(opts.reboot, what="reboot policy"),
        then=quote_literal(opts.then, what="--then policy"),
        hold="$true" if plan.hold != "none" else "$false",
        drain_seconds=_seconds(opts.drain_timeout),
        back_seconds=_seconds(opts.reboot_timeout),
        start_seconds=_seconds(opts.drain_timeout),
        poll_seconds=_seconds(opts.service_poll),
        min_free_bytes=str(int(opts.min_free_bytes)),
        success_codes=", ".join(str(int(c)) for c in sorted(fx.success_codes)),
        reboot_codes=", ".join(str(int(c)) for c in sorted(fx.reboot_codes)),
        flag_names=quote_array([f.name for f in fx.reboot_flags], what="pending-restart flag"),
        flag_paths=quote_array([f.path for f in fx.reboot_flags], what="pending-restart flag"),
        flag_values=quote_array([f.value for f in fx.reboot_flags], what="pending-restart flag"),
        startup_of=modes.replace(", ", "; "),
        bodies=[
            {
                "name": b.name,
                "label": b.step.label,
                "script": _script(b.step.rendered),
                "sha256": b.step.rendered.body_sha256,
            }
            for b in bodies
        ],
        pool=pool,
    )
    return _with_script_sha(text)
