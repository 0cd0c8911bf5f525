"""Golden change-board scripts: one reviewed ``.ps1`` per action and product.

A template change shows up in review as a diff of these files, not only as a passing test. Refresh them
after a deliberate change with ``python -m tests.golden`` and review the diff like code.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ocsps.catalog import Catalog, load_catalog
from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board
from ocsps.powershell.script import render_action

HERE = Path(__file__).resolve().parent
CASES = tomllib.loads((HERE / "cases.toml").read_text(encoding="utf-8"))


def combinations(catalog: Catalog) -> list[tuple[str, str]]:
    """Every (action, product) pair a template exists for, in catalog order."""
    return [
        (action.name, product.id)
        for action in catalog.actions.values()
        for product in catalog.products.values()
        if catalog.supports(action, product)
    ]


def path_for(action: str, product: str) -> Path:
    return HERE / action / f"{product}.ps1"


def render(action: str, product_id: str, catalog: Catalog | None = None) -> str:
    """The change-board script for one case, with the fixed sample values of ``cases.toml``."""
    cat = catalog or load_catalog()
    product = cat.product(product_id)
    act = cat.action(action)
    values: dict[str, object] = {}
    label = action
    if action in CASES["service_actions"]:
        service = cat.find_service(product, CASES["service"][product.service_control])
        values.update(cat.service_parameters(product, service))
        label = f"{action} {service.name or service.key}"
    samples = CASES["values"]
    for param in cat.action_params(act, product):
        if param.required and param.name not in values:
            sample = samples[param.name]
            values[param.name] = tuple(sample) if isinstance(sample, list) else sample
    rendered = render_action(action, product, values, catalog=cat)
    info = ChangeInfo(CASES["computer"], CASES["change_id"], CASES["reason"])
    return render_change_board(label, [Step(label, rendered)], info)


# ``ocsps patch server --emit-script``: the two-part script, for each product the patch planner accepts.
PATCH_BOARD = "patch-board"


def patch_board_products(catalog: Catalog) -> list[str]:
    from ocsps.errors import UsageError
    from ocsps.patch import default_options, load_patch_facts, plan_patch

    facts = load_patch_facts()
    out = []
    for product in catalog.products.values():
        if product.id not in facts.products:
            continue
        installer = "C:\\Updates\\" + facts.for_product(product.id).installer
        try:
            plan_patch(CASES["computer"], product, installer, default_options(CASES["patch_version"]))
        except UsageError:
            continue
        out.append(product.id)
    return out


def render_patch_board(product_id: str, catalog: Catalog | None = None) -> str:
    from ocsps.patch import default_options, load_patch_facts, plan_patch
    from ocsps.patch.board import render_patch_board as render_board

    cat = catalog or load_catalog()
    installer = "C:\\Updates\\" + load_patch_facts().for_product(product_id).installer
    plan = plan_patch(
        CASES["computer"], cat.product(product_id), installer, default_options(CASES["patch_version"])
    )
    return render_board(plan, change_id=CASES["change_id"], reason=CASES["reason"], catalog=cat)


# ``ocsps patch pool --emit-script``: each member's two-part script and the order, per product with a pool
# method. The golden copies are the first member's script and ``ORDER.txt``.
PATCH_POOL_BOARD = "patch-board-pool"


def pool_board_products(catalog: Catalog) -> list[str]:
    from ocsps.pool import load_pool_facts

    pools = load_pool_facts().products
    return [p for p in patch_board_products(catalog) if p in pools]


def pool_board_files(product_id: str, catalog: Catalog | None = None) -> dict[str, str]:
    """Every file ``--emit-script`` writes for the sample pool, by name."""
    from ocsps.patch import default_options, load_patch_facts
    from ocsps.patch.pool import plan_pool_patch
    from ocsps.patch.pool_board import render_pool_boards
    from ocsps.pool import UpgradeDomain

    cat = catalog or load_catalog()
    case = CASES["patch_pool"]
    installer = "C:\\Updates\\" + load_patch_facts().for_product(product_id).installer
    state, plans = plan_pool_patch(
        case["pool"],
        cat.product(product_id),
        case["members"],
        installer,
        default_options(CASES["patch_version"]),
        domains=[UpgradeDomain(name, tuple(servers)) for name, servers in case["domains"]],
        sql_server=case["sql_server"],
    )
    return render_pool_boards(state, plans, change_id=CASES["change_id"], reason=CASES["reason"], catalog=cat)


def pool_board_golden(product_id: str, catalog: Catalog | None = None) -> dict[Path, str]:
    """Golden path -> text: the first member's script and the order."""
    from ocsps.patch.pool_board import ORDER_FILE

    files = pool_board_files(product_id, catalog)
    first = next(name for name in files if name != ORDER_FILE)
    return {
        path_for(PATCH_POOL_BOARD, product_id): files[first],
        HERE / PATCH_POOL_BOARD / f"{product_id}.{ORDER_FILE}": files[ORDER_FILE],
    }


# The change-board script the CLI writes for one action (``ocsps render``, ``--emit-script``): the command
# line of each case in ``cases.toml`` [cli], run in-process; the golden copy is ``cli/<name>.ps1``.
CLI = "cli"


def cli_cases() -> list[str]:
    return list(CASES["cli"])


def render_cli(name: str) -> str:
    """What the CLI writes for the case ``name``; a refusal fails with the CLI's own message."""
    import tempfile

    words = list(CASES["cli"][name])
    if words[0] == "render":
        words += ["--computer", CASES["computer"], "--change-id", CASES["change_id"]]
        words += ["--reason", CASES["reason"]]
        flag = "-o"
    else:
        words += ["--change-id", CASES["change_id"]]
        flag = "--emit-script"
    with tempfile.TemporaryDirectory() as folder:
        out, plan = Path(folder) / "board.ps1", Path(folder) / "plan.json"
        if "{plan}" in words:
            _run_cli(["plan", "restart", "-c", CASES["cli_plan_change"], "-o", str(plan)], plan)
            words = [str(plan) if word == "{plan}" else word for word in words]
        _run_cli([*words, flag, str(out)], out)
        return out.read_text(encoding="utf-8-sig")


def _run_cli(words: list[str], writes: Path) -> None:
    import contextlib
    import io

    from ocsps.cli import main

    said = io.StringIO()
    code: object = 0
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        try:
            main(words)
        except SystemExit as exc:
            code = exc.code
    if code not in (0, None) or not writes.is_file():
        raise AssertionError(f"ocsps {' '.join(words)} failed ({code}): {said.getvalue()}")
