"""``python -m tests.golden``: rewrite every golden script from the current templates (review the diff)."""

from __future__ import annotations

import shutil

from ocsps.catalog import load_catalog
from tests.golden import (
    CLI,
    HERE,
    PATCH_BOARD,
    cli_cases,
    combinations,
    patch_board_products,
    path_for,
    pool_board_golden,
    pool_board_products,
    render,
    render_cli,
    render_patch_board,
)


def main() -> None:
    catalog = load_catalog()
    for folder in HERE.iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            shutil.rmtree(folder)
    pairs = combinations(catalog)
    for action, product in pairs:
        target = path_for(action, product)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(action, product, catalog), encoding="utf-8", newline="\n")
    boards = patch_board_products(catalog)
    for product in boards:
        target = path_for(PATCH_BOARD, product)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_patch_board(product, catalog), encoding="utf-8", newline="\n")
    written = len(pairs) + len(boards)
    for product in pool_board_products(catalog):
        for target, text in pool_board_golden(product, catalog).items():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="\n")
            written += 1
    for name in cli_cases():
        target = HERE / CLI / f"{name}.ps1"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_cli(name), encoding="utf-8", newline="\n")
        written += 1
    print(f"wrote {written} golden files under {HERE}")


if __name__ == "__main__":
    main()
