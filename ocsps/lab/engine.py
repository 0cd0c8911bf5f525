"""The lab's PowerShell stand-in: it checks scripts like a server would, then simulates their effect.

No PowerShell runs here, so the engine does not interpret scripts. It rejects what a real server would
reject before running anything (a parse error, a construct newer than the product's PowerShell, an
unknown cmdlet, a parameter the product's cmdlet lacks), then simulates the outcome of each ocsps
template (recognised by its ``# ocsps:action=`` line) and of a handful of plain cmdlets that scripts and
the unmodified pypsrp client send (``Get-CsWindowsService``, ``Stop-CsWindowsService``,
``Start-CsWindowsService``, ``Get-Service``, ``Stop-Service``, ``Start-Service``, ``Set-Service``,
``Test-Path``). Anything else fails as "not recognized", as it should.

OCS 2007 / R2 templates control services with ``Stop-Service`` / ``Start-Service``, so the engine applies
Windows' service-control rules there (see ``ocsps.lab.estate``); Lync / SfB templates get the
``Stop-CsWindowsService`` rules. What a server reports about itself (``ComputerName``) is its
``computer_name`` knob, so a test can make one computer answer as another.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from ocsps.catalog import Catalog, Product, load_catalog
from ocsps.lab.check_sim import check_handlers
from ocsps.lab.estate import STOPPED, LabError, SimServer, SimService
from ocsps.lab.patch_sim import PatchSim, patch_handlers
from ocsps.lab.pool_sim import pool_handlers
from ocsps.lab.recovery_sim import recovery_handlers
from ocsps.lab.synthetic_sim import synthetic_handlers
from ocsps.lab.topology import Topology
from ocsps.lab.watch_sim import repeating, watch_handlers
from ocsps.lab.wsman import CommandCall, Invocation, PipelineFailure, PipelineSink

_MARKER = re.compile(r"^# ocsps:action=([a-z-]+)\s*$", re.MULTILINE)
NTSERVICE = "Microsoft.Rtc.Management.Deployment.Core.NTService"
SERVICE_CONTROLLER = "System.ServiceProcess.ServiceController"


@lru_cache(maxsize=512)
def script_problem(script: str, product_id: str) -> LabError | None:
    """What a server of this product would refuse in ``script`` before running it (cached per text)."""
    import ocsps.powershell.syntax as syntax  # the grammar only: no product decision

    catalog = load_catalog()
    product = catalog.product(product_id)
    grammars = syntax.RUNTIME_GRAMMARS
    errors = [f for f in syntax.parse(script, grammars=grammars) if f.kind in ("error", "missing")]
    if errors:
        first = errors[0]
        return LabError(
            f"At line:{first.line} char:{first.column}: unexpected token near '{first.snippet}'.",
            category="ParserError",
            error_id="ParseException",
        )
    newer = syntax.newer_constructs(script, product.powershell, grammars=grammars)
    if newer:
        first_newer = newer[0]
        return LabError(
            f"At line:{first_newer.line} char:{first_newer.column}: {first_newer.construct} is not supported "
            f"by PowerShell {product.powershell} (it needs {first_newer.min_version}).",
            category="ParserError",
            error_id="ParseException",
        )
    for call in syntax.commands(script, grammar=grammars[0]):
        if call.native or call.invocation or call.splats:
            continue
        problem = _command_problem(catalog, product, call.name, call.parameters)
        if problem is not None:
            return problem
    return None


def _command_problem(
    catalog: Catalog, product: Product, name: str, parameters: tuple[str, ...]
) -> LabError | None:
    accepted = catalog.cmdlet_parameters(product, name)
    if accepted is None:
        return LabError(
            f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
            "or operable program.",
            category="ObjectNotFound",
            error_id="CommandNotFoundException",
        )
    for param in parameters:
        folded = param.casefold()
        if folded not in accepted and not any(p.startswith(folded) for p in accepted):
            return LabError(
                f"A parameter cannot be found that matches parameter name '{param}'.",
                category="InvalidArgument",
                error_id=f"NamedParameterNotFound,{name}",
            )
    return None


def _fail(error: LabError) -> PipelineFailure:
    return PipelineFailure(error.message, category=error.category, error_id=error.error_id)


def _template_view(server: SimServer, svc: SimService, *, activity: bool = True) -> dict[str, Any]:
    """A service as ocsps's templates shape it (PSCustomObject, stable names)."""
    return {
        "ComputerName": server.reported_name,
        "Name": svc.name,
        "DisplayName": svc.display_name,
        "Status": svc.status,
        "RoleName": ",".join(r for r in svc.roles if r != "All"),
        "ActivityLevel": svc.activity_text() if activity else "",
    }


Handler = Callable[[SimServer, Mapping[str, Any], PipelineSink], None]


class LabEngine:
    """The executor behind every simulated server of a topology."""

    def __init__(self, topology: Topology, catalog: Catalog | None = None) -> None:
        self.topology = topology
        self.catalog = catalog or load_catalog()
        self.servers = {s.fqdn.lower(): s for s in topology.servers}
        self.patch = PatchSim(topology.servers, topology.patches)
        self.handlers: dict[str, Handler] = {
            "status": self._status,
            "drain": self._drain,
            "stop": self._stop,
            "start": self._start,
            "restart": self._restart,
            "events": self._events,
            "deactivate": self._deactivate,
            "lcscmd-state": self._deactivate,  # same LCSCmd.exe stand-in; the action argument decides
            "msmq-privacy": self._msmq,
            "wmi-setting": self._wmi,
            **watch_handlers(lambda sim, svc: _template_view(sim, svc)),
            **pool_handlers(topology.pools, topology.servers),
            **recovery_handlers(topology.pools),  # Start-CsPool, Reset-CsPoolRegistrarState
            **synthetic_handlers(topology.pools),  # Test-CsRegistration, Test-CsIM
            **patch_handlers(self.patch),
            **check_handlers(topology.username),  # check-* templates, and module-import (module_loads)
        }
        self.handlers["pool-readiness-watch"] = repeating(self.handlers["pool-readiness"])
        self.invocations = 0

    def __call__(self, server: str, invocation: Invocation, out: PipelineSink) -> None:
        sim = self.servers[server.lower()]
        self.invocations += 1
        try:
            for command in invocation.commands:
                if command.is_script:
                    self._script(sim, command, out)
                else:
                    self._cmdlet(sim, command.text, {k: v for k, v in command.named.items()}, out)
        except LabError as exc:
            raise _fail(exc) from None

    # ------------------------------------------------------------------ dispatch
    def _script(self, sim: SimServer, command: CommandCall, out: PipelineSink) -> None:
        problem = script_problem(command.text, sim.product.id)
        if problem is not None:
            raise problem
        marker = _MARKER.search(command.text)
        params = {k: v for k, v in command.named.items()}
        if marker is not None:
            handler = self.handlers.get(marker.group(1))
            if handler is None:
                raise LabError(f"the lab does not simulate ocsps action {marker.group(1)!r}")
            handler(sim, params, out)
            return
        for line in (ln.strip() for ln in command.text.splitlines()):
            if line and not line.startswith("#"):
                name, args = _simple_command(line)
                self._cmdlet(sim, name, args, out)

    def _cmdlet(self, sim: SimServer, name: str, params: dict[str, Any], out: PipelineSink) -> None:
        problem = _command_problem(self.catalog, sim.product, name, tuple(params))
        if problem is not None:
            raise problem
        lowered = {k.casefold(): v for k, v in params.items()}
        target = lowered.get("name")
        folded = name.casefold()
        if folded == "get-cswindowsservice":
            for svc in sim.list_services(str(target) if target else None):
                out.write_object(
                    [NTSERVICE], adapted=_ntservice(svc, activity="excludeactivitylevel" not in lowered)
                )
        elif folded == "stop-cswindowsservice":  # without -Name: every service of the computer
            for name in [str(target)] if target else [s.name for s in sim.list_services()]:
                sim.stop(name, graceful=_switch(lowered, "graceful"), force=_switch(lowered, "force"))
        elif folded == "start-cswindowsservice":
            for name in [str(target)] if target else [s.name for s in sim.list_services()]:
                sim.start(name)
        elif folded == "stop-service":
            with _windows_errors("StopServiceCommand"):
                sim.stop_service(str(target), force=_switch(lowered, "force"))
        elif folded == "start-service":
            with _windows_errors("StartServiceCommand"):
                sim.start(str(target), windows=True)
        elif folded == "set-service" and "startuptype" in lowered:
            with _windows_errors("SetServiceCommand"):
                sim.set_startup(str(target), str(lowered["startuptype"]))
        elif folded == "test-path":
            path = lowered.get("literalpath", lowered.get("path"))
            out.write(sim.file_exists(str(path)))
        elif folded == "get-service":
            with _windows_errors("GetServiceCommand"):
                if "displayname" in lowered:
                    found = self._select(sim, {"DisplayPattern": str(lowered["displayname"])})
                else:
                    found = sim.list_services(str(target) if target else None)
            for svc in found:
                out.write_object(
                    [SERVICE_CONTROLLER, "System.ComponentModel.Component"],
                    adapted={
                        "Name": svc.name,
                        "ServiceName": svc.name,
                        "DisplayName": svc.display_name,
                        "Status": svc.status,
                        "MachineName": ".",
                    },
                    to_string=svc.name,
                )
        else:
            raise LabError(f"the lab does not simulate {name}", error_id="CommandNotFoundException")

    # ------------------------------------------------------------------ ocsps templates
    def _select(self, sim: SimServer, params: Mapping[str, Any]) -> list[SimService]:
        name, pattern = params.get("Name"), params.get("DisplayPattern")
        # OCS templates look services up with Get-Service: its errors carry the cmdlet in their id.
        windows = sim.product.service_control == "windows"
        with _windows_errors("GetServiceCommand") if windows else contextlib.nullcontext():
            if name:
                return [sim.find(str(name))]
            if pattern:
                found = sim.find_display(str(pattern))
                if not found:
                    raise LabError(
                        f"Cannot find any service with display name '{pattern}'.",
                        category="ObjectNotFound",
                        error_id="NoServiceFoundForGivenDisplayName",
                    )
                return found
        return sim.list_services()

    def _status(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        sim.tick()
        operation = str(params.get("Operation", "Status"))
        services = self._select(sim, params)
        if operation != "Status" and not services:
            raise LabError("No service matches the name or display pattern given.")
        activity = not params.get("ExcludeActivityLevel")
        if activity and sim.product.service_control == "cs" and not sim.in_perfmon_group:
            out.write_warning(
                "Unable to read performance counters: the user is not in Performance Monitor Users."
            )
            activity = False
        windows = sim.product.service_control == "windows"  # ocs-service: Stop-Service / Start-Service
        for svc in services:
            if operation in ("Stop", "Restart"):
                if windows:
                    with _windows_errors("StopServiceCommand"):
                        sim.stop_service(svc.name, force=bool(params.get("Force")))
                else:
                    sim.stop(svc.name, force=bool(params.get("Force")))
            if operation in ("Start", "Restart"):
                with _windows_errors("StartServiceCommand") if windows else contextlib.nullcontext():
                    sim.start(svc.name, windows=windows)
            out.write(_template_view(sim, svc, activity=activity))

    def _drain(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        svc = sim.stop(str(params["Name"]), graceful=True)
        if not params.get("NoWait"):
            while svc.status != STOPPED and not out.wait_cancelled(0.05):
                sim.tick()
        out.write(_template_view(sim, svc))

    def _stop(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        if sim.product.service_control == "windows":
            self._status(sim, {**params, "Operation": "Stop"}, out)
            return
        out.write(_template_view(sim, sim.stop(str(params["Name"]), force=bool(params.get("Force")))))

    def _start(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        if sim.product.service_control == "windows":
            self._status(sim, {**params, "Operation": "Start"}, out)
            return
        out.write(_template_view(sim, sim.start(str(params["Name"]))))

    def _restart(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        if sim.product.service_control == "windows":
            self._status(sim, {**params, "Operation": "Restart"}, out)
            return
        sim.stop(str(params["Name"]), force=bool(params.get("Force")))
        out.write(_template_view(sim, sim.start(str(params["Name"]))))

    def _events(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        since = datetime.fromisoformat(str(params["Since"]).replace("Z", "+00:00"))
        ids = [int(i) for i in _as_list(params.get("Id"))]
        found = sim.query_events(str(params["LogName"]), ids, since)
        limit = int(params.get("MaxEvents") or 0)
        for event in found[:limit] if limit > 0 else found:
            out.write(
                {
                    "Id": event.id,
                    "TimeCreated": event.time.isoformat().replace("+00:00", "Z"),
                    "LevelDisplayName": event.level,
                    "ProviderName": event.source,
                    "Message": event.message,
                    "MachineName": sim.reported_name,
                    "LogName": event.log,
                }
            )

    def _deactivate(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        if not sim.lcscmd_at(str(params["LcsCmdPath"])):
            raise LabError(f"LCSCmd.exe was not found at {params['LcsCmdPath']}", category="ObjectNotFound")
        log_path = str(params.get("LogPath") or "")
        if not log_path:  # chosen when the script runs, as the template does
            stamp = sim.now().strftime("%Y%m%d-%H%M%S-%f")
            directory = str(params.get("LogDirectory") or "C:\\Windows\\Temp").rstrip("\\")
            log_path = f"{directory}\\{params.get('LogPrefix') or 'ocsps-lcscmd'}-{stamp}Z.log"
        if sim.file_exists(log_path):
            raise LabError(
                f"The log {log_path} exists already: an old log must never be read as the result of this "
                "run. Choose a new path.",
                error_id="RuntimeException",
            )
        code, text = sim.lcscmd([str(a) for a in _as_list(params.get("Arguments"))], log_path)
        out.write(
            {
                "ComputerName": sim.reported_name,
                "ExitCode": code,
                "StdOut": text,
                "StdErr": "",
                "LogPath": log_path,
                "LogText": sim.files.get(log_path, ""),
            }
        )

    def _msmq(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        path = str(params["QueuePath"])
        privacy = sim.queues.get(path) if sim.msmq_installed else None
        out.write(
            {
                "ComputerName": sim.reported_name,
                "QueuePath": path,
                "PrivacyLevel": privacy,
                "MsmqInstalled": sim.msmq_installed,
                "AdIntegrated": sim.msmq_ad_integrated,
                "Exists": privacy is not None,
            }
        )

    def _wmi(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        cls = str(params["Class"])
        instances = sim.wmi.get(cls)
        if instances is None:
            raise LabError(
                f'Invalid class "{cls}"', category="InvalidType", error_id="GetWMIManagementException"
            )
        wanted = [str(p) for p in _as_list(params.get("Property")) if p]
        for index, instance in enumerate(instances):
            for prop in wanted or list(instance):
                out.write(
                    {
                        "ComputerName": sim.reported_name,
                        "Class": cls,
                        "Property": prop,
                        "Value": instance.get(prop),
                        "InstanceId": f'{cls}.InstanceID="{index}"',
                    }
                )


def _ntservice(svc: SimService, *, activity: bool) -> dict[str, Any]:
    return {
        "Status": svc.status,
        "Name": svc.name,
        "DisplayName": svc.display_name,
        "RoleName": ",".join(r for r in svc.roles if r != "All"),
        "ActivityLevel": svc.activity_text() if activity else None,
    }


@contextlib.contextmanager
def _windows_errors(command: str) -> Iterator[None]:
    """Errors as a Windows PowerShell service cmdlet writes them: the id names the cmdlet's class
    (``ServiceHasDependentServices,Microsoft.PowerShell.Commands.StopServiceCommand``)."""
    try:
        yield
    except LabError as exc:
        if "," not in exc.error_id:
            exc.error_id = f"{exc.error_id},Microsoft.PowerShell.Commands.{command}"
        raise


def _switch(params: Mapping[str, Any], name: str) -> bool:
    """A switch parameter: present without a value (``-Force``) is on; ``-Force:$false`` is off."""
    if name not in params:
        return False
    value = params[name]
    return value is None or bool(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _simple_command(line: str) -> tuple[str, dict[str, Any]]:
    """``Verb-Noun -Name value -Switch`` with literal arguments: enough for hand-typed lab sessions."""
    try:
        words = shlex.split(line, posix=True)
    except ValueError:
        raise LabError(
            f"the lab cannot run this line: {line[:80]}", category="ParserError", error_id="ParseException"
        ) from None
    name, args = words[0], words[1:]
    params: dict[str, Any] = {}
    pending: str | None = None
    for word in args:
        if word.startswith("-") and len(word) > 1:
            key, sep, value = word[1:].partition(":")
            params[key] = value if sep else True
            pending = None if sep else key
        elif pending is not None:
            params[pending] = word
            pending = None
        elif "Name" not in params:
            params["Name"] = word
    return name, params


__all__ = ["LabEngine", "script_problem"]
