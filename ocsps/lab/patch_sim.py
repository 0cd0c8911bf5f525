"""Patching, simulated: the update installer, the restart, patch versions per component.

A model, not a copy, and no decision taken from ocsps's patch code: the installer takes
``install_seconds`` on the lab clock and exits with ``exit_code``; a successful install moves every
component to ``installs_version`` (except ``mismatch_components``, which keep theirs), asks for a restart
with a pending file rename when it exits 3010, and, like a cumulative update's Windows Fabric update,
starts again every service that is not Disabled (``fabric_starts_services``). A failed install writes a log
next to the installer. An install whose remote command is given up goes on, as a process would, and ends
at its time. ``Restart-Computer`` stops every service and makes the computer unreachable for
``reboot_seconds`` (WSMan requests are dropped, as by a computer that is down); when it is back, its boot
time has changed, the pending-reboot flags are clear, and services start according to their start-up type.
A Response Group (or any service) that never drains is the existing ``stuck_drain`` knob.

Keys under ``[servers.patch]`` (every key optional)::

    components = { "Core Components" = "6.0.9319.0" }   # default: Core Components + one per role,
                                    # at the product's release build (below)
    installer_paths = ['C:\\Updates\\SkypeServerUpdateInstaller.exe']   # files the server sees
                                    # (default: both installers under C:\\Updates)
    installs_version = "6.0.9319.619"   # what a successful install sets (default: per product, below)
    exit_code = 3010                # the installer's exit code (0, 3010, or a failure such as 1603)
    mismatch_components = []        # components a successful install leaves at their old version
    install_seconds = 0             # how long the installer runs, on the lab clock
    reboot_seconds = 0              # how long the computer is unreachable after Restart-Computer
    free_gb = 40                    # free space on the system drive
    pending_reboot = []             # flags already set: component-based-servicing, windows-update,
                                    # pending-file-rename
    fabric_starts_services = true   # the install starts every service that is not Disabled
    databases = { rtcxds = "10.13.2" }   # configured databases and their installed versions
                                    # (Test-CsDatabase; default: none)
    database_expected = { rtcxds = "10.13.3" }   # what the installed product expects of a database
                                    # (default: its installed version, i.e. current)
    sql_permission = true           # false: Install-CsDatabase -Update is refused by SQL Server

Get-CsServerPatchVersion exists on Skype for Business Server 2015 and 2019 only (Microsoft Learn); the
lab answers it there and nowhere else. Its property names (ComponentName, Version) are those the template
reads; the real cmdlet's are not confirmed. On Lync Server 2010 and 2013 the lab answers a
``ComponentFilter`` (Win32_Product names, -like) with one "Microsoft Lync Server <year>, <component>"
product per component.
"""

from __future__ import annotations

import contextlib
import fnmatch
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocsps.errors import UsageError
from ocsps.lab.estate import PAUSED, RUNNING, STOPPED, LabError, SimServer

if TYPE_CHECKING:
    from ocsps.lab.wsman import PipelineSink

__all__ = ["PATCH_SERVER_KEYS", "PatchSim", "SimPatch", "parse_patch_fields", "patch_handlers"]

PATCH_SERVER_KEYS = {"patch"}
_KEYS = {
    "components",
    "installer_paths",
    "installs_version",
    "exit_code",
    "mismatch_components",
    "install_seconds",
    "reboot_seconds",
    "free_gb",
    "pending_reboot",
    "fabric_starts_services",
    "databases",
    "database_expected",
    "sql_permission",
}
FLAGS = ("component-based-servicing", "windows-update", "pending-file-rename")
# The lab's own figures: release builds as the product's version numbers are commonly published, and a
# later build for "the update". Not read from the catalog.
RELEASE = {
    "sfb2015": "6.0.9319.0",
    "sfb2019": "7.0.2046.0",
    "lync2013": "5.0.8308.0",
    "lync2010": "4.0.7577.0",
}
UPDATE = {
    "sfb2015": "6.0.9319.619",
    "sfb2019": "7.0.2046.520",
    "lync2013": "5.0.8308.1001",
    "lync2010": "4.0.7577.726",
}
# Before Get-CsServerPatchVersion, each component is an installed product (Win32_Product) named after
# the product: the lab's own names, matched with the -like pattern the script sends (ComponentFilter).
WMI_PRODUCT_NAMES = {"lync2013": "Microsoft Lync Server 2013", "lync2010": "Microsoft Lync Server 2010"}
INSTALLERS = ("C:\\Updates\\SkypeServerUpdateInstaller.exe", "C:\\Updates\\LyncServerUpdateInstaller.exe")
PATCH_VERSION_PRODUCTS = ("sfb2015", "sfb2019")
START_MODE = {"Automatic": "Auto", "Manual": "Manual", "Disabled": "Disabled"}

Handler = Callable[[SimServer, Mapping[str, Any], "PipelineSink"], None]


@dataclass
class SimPatch:
    """One server's patch knobs and what has happened to it."""

    components: dict[str, str]
    installer_paths: list[str]
    installs_version: str
    exit_code: int = 3010
    mismatch_components: list[str] = field(default_factory=list)
    install_seconds: float = 0.0
    reboot_seconds: float = 0.0
    free_gb: float = 40.0
    pending: set[str] = field(default_factory=set)
    fabric_starts_services: bool = True
    databases: dict[str, str] = field(default_factory=dict)
    database_expected: dict[str, str] = field(default_factory=dict)
    sql_permission: bool = True
    database_updates: int = 0
    boot_time: float | None = None  # None: the lab's start
    down_until: float | None = None  # set by Restart-Computer until the computer is back
    installs: int = 0
    restarts: int = 0
    running_install: tuple[float, str] | None = None  # (ends at, path): an install whose caller gave up


def _where_number(value: object, where: str, top: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= top:
        raise UsageError(f"{where}: expected a number from 0 to {top:g}")
    return float(value)


def parse_patch_fields(server: SimServer, entry: Mapping[str, Any], where: str) -> SimPatch:
    """``[servers.patch]`` for one server; unknown keys and bad values name the file, server and key."""
    raw = entry.get("patch", {})
    if not isinstance(raw, dict):
        raise UsageError(f"{where} patch: expected a table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise UsageError(f"{where} patch: unknown key {unknown[0]!r}; valid: {', '.join(sorted(_KEYS))}")
    pid = server.product.id
    base = RELEASE.get(pid, "0.0.0.0")
    if "components" in raw:
        comps = raw["components"]
        if not isinstance(comps, dict) or not comps or not all(isinstance(v, str) for v in comps.values()):
            raise UsageError(f"{where} patch.components: expected a table of component = version")
        components = {str(k): str(v) for k, v in comps.items()}
    else:
        components = {"Core Components": base, **{f"{role} Server": base for role in server.roles}}
    paths = raw.get("installer_paths", list(INSTALLERS))
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise UsageError(f"{where} patch.installer_paths: expected a list of paths")
    mismatch = raw.get("mismatch_components", [])
    if not isinstance(mismatch, list) or any(m not in components for m in mismatch):
        raise UsageError(f"{where} patch.mismatch_components: names components the server does not have")
    pending = raw.get("pending_reboot", [])
    if not isinstance(pending, list) or any(p not in FLAGS for p in pending):
        raise UsageError(f"{where} patch.pending_reboot: each one of {', '.join(FLAGS)}")
    code = raw.get("exit_code", 3010)
    if isinstance(code, bool) or not isinstance(code, int):
        raise UsageError(f"{where} patch.exit_code: expected a whole number")
    fabric = raw.get("fabric_starts_services", True)
    if not isinstance(fabric, bool):
        raise UsageError(f"{where} patch.fabric_starts_services: expected true or false")
    databases = raw.get("databases", {})
    if not isinstance(databases, dict) or not all(isinstance(v, str) for v in databases.values()):
        raise UsageError(f"{where} patch.databases: expected a table of database = version")
    expected = raw.get("database_expected", {})
    if not isinstance(expected, dict) or any(
        k not in databases or not isinstance(v, str) for k, v in expected.items()
    ):
        raise UsageError(
            f"{where} patch.database_expected: a table of version per database of patch.databases"
        )
    permission = raw.get("sql_permission", True)
    if not isinstance(permission, bool):
        raise UsageError(f"{where} patch.sql_permission: expected true or false")
    version = raw.get("installs_version", UPDATE.get(pid, base))
    if not isinstance(version, str):
        raise UsageError(f"{where} patch.installs_version: expected a version text")
    return SimPatch(
        components=components,
        installer_paths=list(paths),
        installs_version=version,
        exit_code=code,
        mismatch_components=list(mismatch),
        install_seconds=_where_number(raw.get("install_seconds", 0), f"{where} patch.install_seconds", 86400),
        reboot_seconds=_where_number(raw.get("reboot_seconds", 0), f"{where} patch.reboot_seconds", 86400),
        free_gb=_where_number(raw.get("free_gb", 40), f"{where} patch.free_gb", 1e6),
        pending=set(pending),
        fabric_starts_services=fabric,
        databases={str(k): str(v) for k, v in databases.items()},
        database_expected={str(k): str(v) for k, v in expected.items()},
        sql_permission=permission,
    )


class PatchSim:
    """Patch state of every server of a topology; also tells the listener when a computer is down."""

    def __init__(self, servers: list[SimServer], patches: Mapping[str, SimPatch]) -> None:
        self.servers = {s.fqdn.casefold(): s for s in servers}
        self.patches = {k.casefold(): v for k, v in patches.items()}
        self.lock = threading.RLock()

    def patch(self, sim: SimServer) -> SimPatch:
        key = sim.fqdn.casefold()
        with self.lock:
            if key not in self.patches:
                self.patches[key] = parse_patch_fields(sim, {}, sim.fqdn)
            return self.patches[key]

    def _settle(self, sim: SimServer) -> SimPatch:
        """Finish a restart whose time has come: new boot time, flags clear, services per start-up type."""
        state = self.patch(sim)
        with self.lock:
            running, state.running_install = state.running_install, None
            if running is not None and sim.clock() < running[0]:
                state.running_install = running
            elif running is not None:
                self._complete(sim, state, running[1])
            if state.down_until is not None and sim.clock() >= state.down_until:
                state.boot_time, state.down_until = state.down_until, None
                state.pending.clear()
                for svc in list(sim.services.values()):
                    if svc.startup == "Automatic" and svc.status != RUNNING:
                        # a prerequisite Disabled: it stays stopped, as Windows leaves it
                        with contextlib.suppress(LabError):
                            sim.start(svc.name)
        return state

    def unreachable(self, fqdn: str) -> bool:
        """True while the computer is restarting: the listener drops its requests."""
        sim = self.servers.get(fqdn.casefold())
        if sim is None:
            return False
        return self._settle(sim).down_until is not None

    # ------------------------------------------------------------------ handlers
    def _boot(self, sim: SimServer, state: SimPatch) -> str:
        started = state.boot_time if state.boot_time is not None else 0.0
        return datetime.fromtimestamp(started, UTC).strftime("%Y%m%d%H%M%S.000000+000")

    def _service_row(self, sim: SimServer, name: str) -> dict[str, Any]:
        svc = next((s for s in sim.services.values() if name.casefold() in (s.name.casefold(),)), None)
        state = mode = ""
        if svc is not None:
            state = {RUNNING: "Running", STOPPED: "Stopped", PAUSED: "Paused"}.get(svc.status, svc.status)
            mode = START_MODE.get(svc.startup, svc.startup)
        return {
            "Kind": "service",
            "ComputerName": sim.reported_name,
            "Name": name,
            "State": state,
            "StartMode": mode,
        }

    def state(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        patch = self._settle(sim)
        sim.tick()
        path = str(params.get("InstallerPath") or "")
        found = ""
        if path:
            found = str(any(p.casefold() == path.casefold() for p in patch.installer_paths))
        out.write(
            {
                "Kind": "computer",
                "ComputerName": sim.reported_name,
                "BootTime": self._boot(sim, patch),
                "FreeBytes": str(int(patch.free_gb * 1024**3)),
                "InstallerPath": path,
                "InstallerFound": found,
            }
        )
        for name in _as_list(params.get("RebootFlagName")):
            out.write(
                {
                    "Kind": "reboot-flag",
                    "ComputerName": sim.reported_name,
                    "Name": str(name),
                    "Set": str(str(name) in patch.pending),
                }
            )
        for name in _as_list(params.get("Name")):
            out.write(self._service_row(sim, str(name)))
        if sim.product.id in PATCH_VERSION_PRODUCTS:
            for component, version in patch.components.items():
                out.write(
                    {
                        "Kind": "component",
                        "ComputerName": sim.reported_name,
                        "Component": component,
                        "Version": version,
                    }
                )
        elif params.get("ComponentFilter") and sim.product.id in WMI_PRODUCT_NAMES:
            pattern = str(params["ComponentFilter"]).casefold()
            for component, version in patch.components.items():
                name = f"{WMI_PRODUCT_NAMES[sim.product.id]}, {component}"
                if fnmatch.fnmatchcase(name.casefold(), pattern):
                    out.write(
                        {
                            "Kind": "component",
                            "ComputerName": sim.reported_name,
                            "Component": name,
                            "Version": version,
                        }
                    )

    def set_startup(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        self._settle(sim)
        for name in _as_list(params.get("Name")):
            sim.set_startup(str(name), str(params["StartupType"]))
            out.write(self._service_row(sim, str(name)))

    def install(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        patch = self._settle(sim)
        path = str(params["InstallerPath"])
        if not any(p.casefold() == path.casefold() for p in patch.installer_paths):
            raise LabError(
                "This command cannot be run due to the error: The system cannot find the file specified.",
                category="InvalidOperation",
                error_id="InvalidOperationException,Microsoft.PowerShell.Commands.StartProcessCommand",
            )
        done = sim.clock() + patch.install_seconds
        while sim.clock() < done:
            if out.wait_cancelled(0.01):
                # Stopping the pipeline does not stop the process Start-Process started: it finishes
                # on its own, later (see _settle).
                with self.lock:
                    patch.running_install = (done, path)
                return
        code, log = self._complete(sim, patch, path)
        out.write(
            {
                "ComputerName": sim.reported_name,
                "InstallerPath": path,
                "Ran": True,
                "ExitCode": str(code),
                "LogPath": log,
                "LogTail": sim.files[log],
            }
        )

    def _complete(self, sim: SimServer, patch: SimPatch, path: str) -> tuple[int, str]:
        """The installer ends: versions, restart request, log, and (Fabric) services started again."""
        folder = path.rsplit("\\", 1)[0]
        stamp = sim.now().strftime("%Y%m%d%H%M%S")
        log = f"{folder}\\{path.rsplit(chr(92), 1)[-1].rsplit('.', 1)[0]}-{stamp}.log"
        with self.lock:
            patch.installs += 1
            code = patch.exit_code
            if code in (0, 3010):
                for component in patch.components:
                    if component not in patch.mismatch_components:
                        patch.components[component] = patch.installs_version
                lines = [f"Updating {c}: done" for c in patch.components] + ["Update completed."]
                if code == 3010:
                    patch.pending.add("pending-file-rename")
                    lines.append("A restart is required to complete the update.")
            else:
                lines = [
                    "Updating Core Components: failed",
                    f"Error: the installation failed with exit code {code}.",
                ]
            sim.files[log] = "\n".join(lines)
        if patch.fabric_starts_services:
            for svc in list(sim.services.values()):
                if svc.startup != "Disabled" and svc.status != RUNNING:
                    with contextlib.suppress(LabError):
                        sim.start(svc.name)
        return code, log

    def restart(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        patch = self._settle(sim)
        out.write({"ComputerName": sim.reported_name, "BootTime": self._boot(sim, patch), "Restarting": True})
        with self.lock, sim.lock:
            patch.restarts += 1
            for svc in sim.services.values():
                svc.status = STOPPED
                svc.activity = {k: 0 for k in svc.activity}
                svc.drain_started = None
                svc.ack_due = None
            # at least one second later, so that the new boot time differs from the old one
            patch.down_until = max(sim.clock() + patch.reboot_seconds, (patch.boot_time or 0.0) + 1.0)

    def database(self, sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        patch = self._settle(sim)

        def read(kind: str) -> None:
            for name, installed in patch.databases.items():
                out.write(
                    {
                        "Kind": kind,
                        "ComputerName": sim.reported_name,
                        "DatabaseName": name,
                        "SqlInstanceName": "rtc",
                        "ExpectedVersion": patch.database_expected.get(name, installed),
                        "InstalledVersion": installed,
                    }
                )

        read("before")
        behind = [n for n, v in patch.databases.items() if v != patch.database_expected.get(n, v)]
        if not params.get("Update") or not behind:
            return
        if not patch.sql_permission:
            raise LabError(
                f"Install-CsDatabase : The user does not have permission to alter the database on "
                f"{params['SqlServerFqdn']}.",
                category="PermissionDenied",
                error_id="InstallDatabaseFailed,Microsoft.Rtc.Management.Deployment.InstallDatabaseCmdlet",
            )
        with self.lock:
            patch.database_updates += 1
            for name in behind:
                patch.databases[name] = patch.database_expected[name]
        read("after")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def patch_handlers(sim: PatchSim) -> dict[str, Handler]:
    return {
        "patch-state": sim.state,
        "patch-set-startup": sim.set_startup,
        "patch-install": sim.install,
        "patch-restart": sim.restart,
        "patch-database": sim.database,
    }
