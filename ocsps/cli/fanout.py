"""How many hosts a read command (``status``, ``check``) works on at once.

``--parallel`` if given, else ``OCSPS_PARALLEL``, else the profile's (or ``[default]`` table's)
``parallel``, else ``DEFAULT_READ_PARALLEL``. Commands that change state choose their own width; this one
is for reads, where a wider pool only costs client threads and memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ocsps.cli.targets import Target

ENV_PARALLEL = "OCSPS_PARALLEL"

DEFAULT_READ_PARALLEL = 64
"""From the fan-out benchmark (``bench/results/widths.md``, 50 ms per request): a status of 50 hosts took
4.3 s at 16 at once, 3.7 s at 32, 2.9 s at 64 and 3.3 s at 128; of 200 hosts 13.9, 10.3, 10.0 and 12.7 s.
64 is where wider stopped helping, for 15 MB more peak memory than 16 at 200 hosts (128: 23 MB, and the
most client CPU). Each host is one HTTP connection of its own, so the width never loads one server more."""

ReadParallelOpt = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        min=1,
        max=256,
        help=f"Hosts read at once (default: {ENV_PARALLEL}, profile's parallel, or {DEFAULT_READ_PARALLEL})",
    ),
]


def read_parallel(given: int | None, targets: Sequence[Target]) -> int:
    """The width for this run: the flag, then the environment and profile (already merged into each
    target's settings, except for ``--lab`` whose settings come from the lab), then the default."""
    if given is not None:
        return given
    for target in targets[:1]:
        if target.settings.parallel is not None:
            return target.settings.parallel
    text = os.environ.get(ENV_PARALLEL, "")
    if text.strip():
        from ocsps.remote.settings import parse_option_text

        value = parse_option_text("parallel", text, ENV_PARALLEL)
        assert isinstance(value, int)
        return value
    return DEFAULT_READ_PARALLEL
