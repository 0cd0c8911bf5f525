"""Write docs/cli.md, the CLI reference, from the typer application itself.

    python scripts/gen_cli_docs.py           # regenerate docs/cli.md
    python scripts/gen_cli_docs.py --check   # exit 1 if docs/cli.md is stale (tests/docs runs the same check)

The text comes from typer's own Markdown generator (what ``typer ocsps.cli.app utils docs`` prints), under a
short header; the program's own heading moves down one level so the page has a single title.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
REGENERATE = "python scripts/gen_cli_docs.py"

HEADER = f"""\
# CLI reference

<!-- Generated from the typer application by scripts/gen_cli_docs.py: do not edit by hand.
     Regenerate with: {REGENERATE} -->

Every command and sub-command accepts `-h` / `--help`. The global options `--quiet`, `--verbose` and
`--version` go before the command name (`ocsps --quiet drain ...`).

Connection options (`--host`, `--auth`, `--username`, `--port`, `--ssl`, `--ca-bundle`,
`--configuration-name`, ...) can also come from `OCSPS_*` environment variables and config profiles: see
[Connections, profiles and credentials](connections.md). What each exit code means is in
[Exit codes](exit-codes.md); the `--json` documents are described in [JSON output](json.md).

"""


def generate() -> str:
    """The Markdown of docs/cli.md for the application as currently imported."""
    import typer
    import typer.main
    from typer.cli import get_docs_for_click

    from ocsps.cli import app

    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="ocsps")
    body = get_docs_for_click(obj=command, ctx=ctx, name="ocsps")
    lines = [line.rstrip() for line in body.strip().splitlines()]
    if lines and lines[0] == "# `ocsps`":
        lines[0] = "## `ocsps`: global options"
    text = HEADER + "\n".join(lines) + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is stale; write nothing")
    args = parser.parse_args(argv)
    text = generate()
    current = CLI_DOC.read_text(encoding="utf-8") if CLI_DOC.exists() else ""
    if args.check:
        if current != text:
            print(f"{CLI_DOC.relative_to(ROOT)} is stale: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        CLI_DOC.write_text(text, encoding="utf-8")
        print(f"wrote {CLI_DOC.relative_to(ROOT)}")
    else:
        print(f"{CLI_DOC.relative_to(ROOT)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
