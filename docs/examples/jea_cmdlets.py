"""List the commands ocsps's scripts call on a Lync / Skype for Business server, for a JEA role capability.

    python jea_cmdlets.py sfb2019

The scripts are rendered exactly as ocsps would send them for a status read, a drain, a stop, a start and
the event query, then parsed with ocsps's PowerShell grammar; every command they call is printed once.
`ocsps drain ... --what-if` shows the full text of the scripts.
"""

from __future__ import annotations

import sys

from ocsps.catalog import load_catalog
from ocsps.powershell.script import actions_for, render_action, render_module_import
from ocsps.powershell.syntax import commands


def main() -> int:
    product = load_catalog().product(sys.argv[1] if len(sys.argv) > 1 else "sfb2019")
    if product.service_control != "cs":
        print(f"{product.id} has no *-CsWindowsService cmdlets (and no JEA)", file=sys.stderr)
        return 2
    service: dict[str, object] = {"Name": "RTCMEDSRV"}
    actions: dict[str, dict[str, object]] = {
        "status": service,
        "drain": {**service, "NoWait": True},
        "stop": service,
        "start": service,
        "events": {"LogName": product.event_log, "Id": ("25049",), "Since": "2024-01-01T00:00:00Z"},
    }
    available = set(actions_for(product))
    scripts = [render_module_import(product)]
    scripts += [render_action(a, product, v).script for a, v in actions.items() if a in available]
    for name in sorted({call.name for script in scripts for call in commands(script)}):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
