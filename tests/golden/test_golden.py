"""Every change-board script renders byte for byte as its reviewed golden file."""

from __future__ import annotations

import pytest

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

CATALOG = load_catalog()
PAIRS = combinations(CATALOG)
BOARDS = patch_board_products(CATALOG)
POOL_BOARDS = pool_board_products(CATALOG)


@pytest.mark.parametrize(("action", "product"), PAIRS)
def test_script_matches_golden(action: str, product: str) -> None:
    golden = path_for(action, product)
    assert golden.is_file(), f"no golden script for {action} on {product}: run python -m tests.golden"
    assert render(action, product, CATALOG) == golden.read_text(encoding="utf-8"), (
        f"{golden.relative_to(HERE.parent.parent)} differs: review the template change, then refresh with "
        "python -m tests.golden"
    )


@pytest.mark.parametrize("product", BOARDS)
def test_patch_board_matches_golden(product: str) -> None:
    golden = path_for(PATCH_BOARD, product)
    assert golden.is_file(), f"no golden patch board for {product}: run python -m tests.golden"
    assert render_patch_board(product, CATALOG) == golden.read_text(encoding="utf-8"), (
        f"{golden.relative_to(HERE.parent.parent)} differs: review the change, then refresh with "
        "python -m tests.golden"
    )


@pytest.mark.parametrize("product", POOL_BOARDS)
def test_pool_patch_board_matches_golden(product: str) -> None:
    for golden, text in pool_board_golden(product, CATALOG).items():
        assert golden.is_file(), f"no golden pool patch board for {product}: run python -m tests.golden"
        assert text == golden.read_text(encoding="utf-8"), (
            f"{golden.relative_to(HERE.parent.parent)} differs: review the change, then refresh with "
            "python -m tests.golden"
        )


@pytest.mark.parametrize("name", cli_cases())
def test_cli_board_matches_golden(name: str) -> None:
    """``ocsps render`` and ``--emit-script`` write, byte for byte, the reviewed script of each case."""
    golden = HERE / CLI / f"{name}.ps1"
    assert golden.is_file(), f"no golden script for the CLI case {name}: run python -m tests.golden"
    assert render_cli(name) == golden.read_text(encoding="utf-8"), (
        f"{golden.relative_to(HERE.parent.parent)} differs: review the change, then refresh with "
        "python -m tests.golden"
    )


def test_the_pool_boards_cover_each_pool_method() -> None:
    """At least one failover product, Lync Server 2013 (upgrade domains) and 2010 (drain per server)."""
    assert {"sfb2015", "lync2013", "lync2010"} <= set(POOL_BOARDS)


def test_no_stale_golden_files() -> None:
    expected = {path_for(action, product) for action, product in PAIRS}
    expected |= {path_for(PATCH_BOARD, product) for product in BOARDS}
    pool = {path for product in POOL_BOARDS for path in pool_board_golden(product, CATALOG)}
    expected |= {path for path in pool if path.suffix == ".ps1"}
    expected |= {HERE / CLI / f"{name}.ps1" for name in cli_cases()}
    assert set(HERE.glob("*/*.ps1")) == expected
    assert set(HERE.glob("*/*.txt")) == {path for path in pool if path.suffix == ".txt"}


def test_a_rehearsal_starts_its_transcript() -> None:
    """Start-Transcript honours -WhatIf: unless told -WhatIf:$false, a -WhatIf run of a change-board script
    starts no transcript, and its closing Stop-Transcript throws under ErrorActionPreference Stop."""
    starts = [
        (path.relative_to(HERE), line.strip())
        for path in sorted(HERE.glob("*/*.ps1"))
        for line in path.read_text(encoding="utf-8-sig").splitlines()
        if line.strip().startswith("Start-Transcript")
    ]
    assert starts, "no change-board script among the golden files"
    assert [(path, line) for path, line in starts if "-WhatIf:$false" not in line] == []
