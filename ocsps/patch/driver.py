"""The remote side of a patch run, behind one small interface.

``PatchDriver`` is what the runner needs from the server; ``RemotePatchDriver`` does it over a ``Server`` made
by a factory. The restart ends the session, so the driver can drop it (``reset``) and the next call opens
a new one: the runner decides when to try again, with its own clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ocsps.patch.facts import PatchFacts, load_patch_facts
from ocsps.patch.model import (
    InstallOutcome,
    PatchState,
    ServiceInfo,
    answering_computers,
    parse_install,
    parse_patch_state,
    parse_restart,
    parse_services,
)
from ocsps.remote.per_host import ServerPerHost
from ocsps.remote.server import Server
from ocsps.results import parse_service_status

if TYPE_CHECKING:
    from ocsps.catalog import Product
    from ocsps.patch.plan import PatchPlan

__all__ = ["PatchDriver", "RemotePatchDriver", "preview_scripts", "script_values"]

SAMPLE_SERVICES = ("<each service Get-CsWindowsService lists on the server>",)
"""What a preview shows where a run binds the services it read on the server."""


def script_values(
    action: str,
    facts: PatchFacts,
    product_id: str,
    *,
    services: Sequence[str] = SAMPLE_SERVICES,
    installer: str = "",
    arguments: Sequence[str] = (),
    startup: str = "Disabled",
    sql_server: str = "",
    update: bool = False,
) -> dict[str, object]:
    """The values bound to each action of a patch run: one table, so that a preview shows what a run
    sends (``preview_scripts``) and the driver cannot drift from it."""
    if action == "patch-state":
        spec = facts.products.get(product_id)
        flags = facts.reboot_flags
        return {
            "Name": list(services),
            "InstallerPath": installer,
            "RebootFlagName": [f.name for f in flags],
            "RebootFlagPath": [f.path for f in flags],
            "RebootFlagValue": [f.value for f in flags],
            **(
                {"ComponentFilter": spec.verify_filter}
                if spec is not None and spec.verify == "Win32_Product"
                else {}
            ),
        }
    one = services[0] if services else ""
    table: dict[str, dict[str, object]] = {
        "status": {"ExcludeActivityLevel": True},
        "drain": {"Name": one, "NoWait": True},
        "stop": {"Name": one, "Force": True},
        "start": {"Name": one},
        "patch-set-startup": {"Name": list(services), "StartupType": startup},
        "patch-install": {"InstallerPath": installer, "Switches": list(arguments)},
        "patch-restart": {},
        "patch-database": {"SqlServerFqdn": sql_server, "Update": update},
    }
    return table[action]


def preview_scripts(
    plan: PatchPlan, product: Product, facts: PatchFacts | None = None
) -> list[dict[str, object]]:
    """Each remote script of the plan rendered as a run sends it, in step order, the bound values
    beside it (never inside): what ``--what-if`` shows."""
    from ocsps.powershell.script import render_action

    pf = facts or load_patch_facts()
    actions: list[str] = []
    for step in plan.steps:
        actions += [a for a in step.actions if a not in actions]
    out: list[dict[str, object]] = []
    for action in actions:
        values = script_values(
            action, pf, product.id, installer=plan.installer_path, arguments=plan.arguments
        )
        rendered = render_action(action, product, values)
        out.append({"action": action, "parameters": rendered.bound_parameters, "script": rendered.script})
    return out


class PatchDriver(Protocol):
    """Reads and changes on one server. Every method blocks until the server has answered."""

    def services(self, host: str) -> list[str]:
        """The product's services on the server (Get-CsWindowsService), in the order it lists them."""
        ...

    def state(
        self, host: str, services: Sequence[str], installer: str = "", *, probe: bool = False
    ) -> PatchState:
        """The patch-relevant state; ``probe``: one short attempt (the server may be restarting)."""
        ...

    def drain(self, host: str, name: str) -> None:
        """Ask ``name`` to drain and return at once; the runner watches it."""
        ...

    def stop(self, host: str, name: str) -> None:
        """Stop ``name`` now (-Force): only after its drain deadline, when asked to."""
        ...

    def start(self, host: str, name: str) -> None: ...

    def set_startup(self, host: str, names: Sequence[str], startup: str) -> tuple[ServiceInfo, ...]: ...

    def install(self, host: str, path: str, arguments: Sequence[str], timeout: float) -> InstallOutcome: ...

    def restart(self, host: str) -> str:
        """Restart the computer; the boot time it reported before (the reply may be lost: raises)."""
        ...

    def reset(self, host: str) -> None:
        """Forget the session: the next call opens a new one."""
        ...

    def close(self) -> None: ...


class RemotePatchDriver(ServerPerHost):
    """A ``PatchDriver`` over PowerShell Remoting."""

    def __init__(
        self,
        factory: Callable[[str], Server],
        *,
        facts: PatchFacts | None = None,
        call_timeout: float = 120.0,
        probe_timeout: float = 30.0,
    ) -> None:
        super().__init__(factory)
        self.facts = facts or load_patch_facts()
        self.call_timeout = call_timeout
        self.probe_timeout = probe_timeout  # one reconnection attempt: the runner owns the backoff

    def _run(self, host: str, action: str, timeout: float | None = None, **given: Any) -> Sequence[object]:
        """``action`` with the values ``script_values`` binds for it, on ``host``."""
        server = self.server(host)
        values = script_values(action, self.facts, server.product.id, **given)
        rendered = server.render(action, None, **values)
        return server.session.run(rendered, timeout=timeout or self.call_timeout).raise_for_errors().output

    def services(self, host: str) -> list[str]:
        output = self._run(host, "status")
        return [parse_service_status(obj).name for obj in output]

    def state(
        self, host: str, services: Sequence[str], installer: str = "", *, probe: bool = False
    ) -> PatchState:
        timeout = self.probe_timeout if probe else None
        output = self._run(host, "patch-state", timeout, services=services, installer=installer)
        state = parse_patch_state(output, services)
        self.server(host).check_computer(state.computer)  # the named computer, not another behind it
        return state

    def drain(self, host: str, name: str) -> None:
        self._run(host, "drain", services=[name])

    def stop(self, host: str, name: str) -> None:
        self._run(host, "stop", services=[name])

    def start(self, host: str, name: str) -> None:
        self._run(host, "start", services=[name])

    def set_startup(self, host: str, names: Sequence[str], startup: str) -> tuple[ServiceInfo, ...]:
        output = self._run(host, "patch-set-startup", services=names, startup=startup)
        found = parse_services(output, names)
        for computer in answering_computers(output):
            self.server(host).check_computer(computer)
        return found

    def install(self, host: str, path: str, arguments: Sequence[str], timeout: float) -> InstallOutcome:
        output = self._run(host, "patch-install", timeout, installer=path, arguments=arguments)
        outcome = parse_install(output)
        self.server(host).check_computer(outcome.computer)
        return outcome

    def restart(self, host: str) -> str:
        return parse_restart(self._run(host, "patch-restart"))

    def databases(self, host: str, sql_server: str, update: bool) -> Sequence[object]:
        """``patch-database`` as the server answered it (the update can take long: the install deadline)."""
        timeout = self.facts.defaults.install_timeout
        return self._run(host, "patch-database", timeout, sql_server=sql_server, update=update)
