"""``ocsps lab``: run the simulated estate in the foreground, or print its default topology to edit.

The lab is a simulation: servers answer over real HTTP, WSMan, PSRP and NTLM on loopback, but what they
answer comes from a model (see docs/lab.md). It never binds to anything but a loopback address.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import types
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocsps.cli.app import app
from ocsps.cli.output import err_console, is_quiet
from ocsps.errors import UsageError

if TYPE_CHECKING:
    from ocsps.lab.runtime import Lab

lab_app = typer.Typer(
    help="Simulated OCS / Lync / Skype for Business servers on loopback, for rehearsals and tests.",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")

DEFAULT_LAB_PORT = 5985
"""WinRM's http port, so that the ``lab`` profile written by ``ocsps config init`` finds the lab."""


def lab_document(lab: Lab) -> dict[str, Any]:
    """What ``ocsps lab serve --json`` prints once ready: the listener and one entry per simulated server."""
    servers = []
    for entry in lab.describe():
        servers.append({**entry, "path": lab.listener.path(entry["fqdn"])})
    return {
        "command": "lab serve",
        "simulation": True,
        "topology": lab.topology.source,
        "address": lab.listener.address,
        "port": lab.port,
        "ssl": False,
        "auth": lab.auth,
        "username": lab.username,
        "password": lab.password,
        "servers": servers,
    }


def _human_lines(doc: dict[str, Any]) -> list[str]:
    rows = [
        (s["fqdn"], s["product"], s["url"], s["auth"], s["username"], s["password"]) for s in doc["servers"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(cell.ljust(widths[i]) if i < 5 else cell for i, cell in enumerate(r)) for r in rows]


def _connect_hint(doc: dict[str, Any]) -> str:
    first = doc["servers"][0]
    password = doc["password"].replace("'", "'\\''")
    username = doc["username"].replace("'", "'\\''")
    return "\n".join(
        [
            "Reach a server with ocsps from another shell (POSIX shell syntax):",
            f"  export OCSPS_CONNECT_ADDRESS={doc['address']} OCSPS_PORT={doc['port']} OCSPS_SSL=false "
            f"OCSPS_AUTH={doc['auth']}",
            f"  export OCSPS_USERNAME='{username}' OCSPS_PASSWORD='{password}'",
            f"  OCSPS_PATH={first['path']} ocsps status --host {first['fqdn']} --product {first['product']}",
        ]
    )


@lab_app.command("serve")
def serve_cmd(
    topology: Annotated[
        Path | None,
        typer.Option("--topology", "-t", help="Topology TOML file (default: the built-in estate)"),
    ] = None,
    bind: Annotated[
        str, typer.Option("--bind", help="Loopback address to listen on (127.0.0.0/8 or ::1)")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port; 0 picks a free one")
    ] = DEFAULT_LAB_PORT,
    auth: Annotated[
        str | None,
        typer.Option("--auth", help="ntlm, negotiate or basic (default: the topology's, else ntlm)"),
    ] = None,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", min=0, max=60000, help="Added delay per WinRM request")
    ] = 0,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="OCSPS_LAB_PASSWORD",
            show_envvar=True,
            help="Password the simulated servers accept (default: the topology's, else a random one)",
        ),
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Once ready, print one JSON document (one line) on stdout"),
    ] = False,
) -> None:
    """Serve the lab in the foreground until Ctrl-C or SIGTERM; print each server's URL and credentials."""
    from ocsps.lab.runtime import Lab

    lab = Lab(
        topology_file=topology,
        bind=bind,
        port=port,
        auth=auth,
        latency_ms=latency_ms,
        password=password,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    # Handlers go in before the ready line: whoever reads it may signal at once.
    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            lab.start()
        except UsageError as exc:
            raise UsageError(exc.message, hint="choose another --port, or --port 0 for a free one") from None
        try:
            doc = lab_document(lab)
            if json_out:
                sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
            else:
                sys.stdout.write("\n".join(_human_lines(doc)) + "\n")
            sys.stdout.flush()
            if not is_quiet():
                err_console().print(
                    f"lab: {len(doc['servers'])} simulated servers on http://{_bracket(doc['address'])}:"
                    f"{doc['port']} ({doc['topology']}); this is a simulation, not a server. "
                    "Ctrl-C or SIGTERM stops it.",
                    markup=False,
                )
                if not json_out:
                    err_console().print(_connect_hint(doc), markup=False)
            while not stop.wait(0.5):
                pass
        finally:
            lab.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not is_quiet():
        err_console().print("lab: stopped", markup=False)


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@lab_app.command("topology")
def topology_cmd(
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Validate this topology file and list its servers instead"),
    ] = None,
) -> None:
    """Print the built-in topology as TOML, to copy and edit for 'ocsps lab serve --topology'."""
    from ocsps.lab.topology import default_topology_text, load_topology

    if check is None:
        typer.echo(default_topology_text(), nl=False)
        return
    loaded = load_topology(check)
    for server in loaded.servers:
        roles = ", ".join(server.roles) or "-"
        typer.echo(f"{server.fqdn}  {server.product.id}  roles: {roles}  services: {len(server.services)}")
    if not is_quiet():
        err_console().print(f"{check}: {len(loaded.servers)} servers, valid", markup=False)
