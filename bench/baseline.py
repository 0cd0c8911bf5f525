"""What administrators would otherwise write: plain pypsrp, one new runspace pool per call.

``pypsrp.client.Client.execute_ps(script)`` opens a runspace pool, runs
``Invoke-Expression -Command <script> | Out-String -Stream``, and closes the pool. The lab simulates the
cmdlets an OCS/Lync/Skype for Business script calls, not ``Invoke-Expression`` or ``Out-String``, so
against the lab ``execute_ps`` itself gets an error record back (its round trips are still real and are
counted in the requests table). ``new_pool_call`` does exactly what ``execute_ps`` does on the wire with
the script added directly (which is what ``Invoke-Expression`` amounts to), so the lab answers it for real:
same ``Client``, same transport, same pool per call, same requests.
"""

from __future__ import annotations

from typing import Any

STATUS_SCRIPT = "Get-CsWindowsService -Name RTCMEDSRV"
DRAIN_SCRIPT = "Stop-CsWindowsService -Name RTCMEDSRV -Graceful -NoWait"


def make_client(kwargs: dict[str, Any]) -> Any:
    from pypsrp.client import Client

    return Client(**kwargs)


def new_pool_call(client: Any, script: str) -> tuple[list[Any], bool]:
    """``Client.execute_ps`` without the text formatting: a new pool, one pipeline, the pool closed."""
    from pypsrp.powershell import DEFAULT_CONFIGURATION_NAME, PowerShell, RunspacePool

    with RunspacePool(client.wsman, configuration_name=DEFAULT_CONFIGURATION_NAME) as pool:
        ps = PowerShell(pool)
        ps.add_script(script)
        ps.invoke()
    return list(ps.output), bool(ps.had_errors)


def execute_ps(client: Any, script: str) -> tuple[str, bool]:
    """``Client.execute_ps`` itself, for the request count."""
    output, _streams, had_errors = client.execute_ps(script)
    return str(output), bool(had_errors)


def service_state(output: list[Any]) -> str:
    """The Status of the first object, read the way a script reads it."""
    if not output:
        return ""
    obj = output[0]
    props = getattr(obj, "adapted_properties", None) or getattr(obj, "extended_properties", None) or {}
    return str(props.get("Status", ""))
