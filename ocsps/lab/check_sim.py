"""What the preflight checks read, simulated: certificate store, module loading, PowerShell level, LcsCmd.

A model, not a copy: the lab answers the check templates in the shape they send (objects with stable
property names), from topology data. Keys it adds under ``[[servers]]``::

    module_loads = true            # false: importing the product module fails, so no session opens
    powershell = "5.1"             # what $PSVersionTable.PSVersion reports (default: the product's level)
    lcscmd_installed = true        # false: LCSCmd.exe is missing
    lcscmd_path = '%ProgramFiles%\\Common Files\\Microsoft Office Communications Server 2007\\LCSCmd.exe'
                                   # where LCSCmd.exe is (the default above; R2 variant: "...Server 2007 R2")
    [servers.certificate_assignments]   # Lync / SfB: Get-CsCertificate Use = thumbprint
    Default = "AB12..."
    [[servers.certificates]]       # the Personal store (LocalMachine\\My), archived ones included
    thumbprint, serial, subject, issuer,
    valid_from_days = -365         # NotBefore relative to the lab's start (negative: in the past)
    valid_to_days = 365            # NotAfter relative to the lab's start
    has_private_key = true, archived = false,
    key_readers = ["NT AUTHORITY\\NETWORK SERVICE"]   # principals the key ACL lets read; omit: unreadable
    [[servers.events]]             # events already in a log when the lab starts
    id = 14347, minutes_ago = 30, log (default: the catalog's log for the id), level, source, message

The lab's user is modelled as a non-administrator whose Performance Monitor Users membership is
``in_perfmon_group``. OCS WMI certificate references come from ``[servers.wmi.<Class>]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ocsps.catalog import Catalog
from ocsps.errors import UsageError
from ocsps.lab.estate import LabError, SimCertificate, SimEvent, SimServer

if TYPE_CHECKING:
    from ocsps.lab.wsman import PipelineSink

__all__ = ["CHECK_SERVER_KEYS", "apply_check_fields", "check_handlers"]

CHECK_SERVER_KEYS = {
    "module_loads",
    "powershell",
    "lcscmd_installed",
    "lcscmd_path",
    "certificate_assignments",
    "certificates",
    "events",
}
_CERT_KEYS = {
    "thumbprint",
    "serial",
    "subject",
    "issuer",
    "valid_from_days",
    "valid_to_days",
    "has_private_key",
    "archived",
    "key_readers",
}
_EVENT_KEYS = {"id", "minutes_ago", "log", "level", "source", "message"}

Handler = Callable[[SimServer, Mapping[str, Any], "PipelineSink"], None]


# ---------------------------------------------------------------------------------------------- topology
def _known(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(keys))}")


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a table")
    return value


def _tables(value: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected an array of tables ([[...]])")
    return [_table(v, f"{where} #{i}") for i, v in enumerate(value, 1)]


def _text(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: {key} must be non-empty text")
    return value


def _number(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{where}: {key} must be a number")
    return float(value)


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise UsageError(f"{where}: {key} must be true or false")
    return value


def apply_check_fields(catalog: Catalog, server: SimServer, entry: Mapping[str, Any], where: str) -> None:
    """Read this module's ``[[servers]]`` keys into ``server``; times are relative to the lab's clock now."""
    server.module_loads = _bool(entry, "module_loads", where, True)
    server.lcscmd_installed = _bool(entry, "lcscmd_installed", where, True)
    if "lcscmd_path" in entry:
        path = _text(entry, "lcscmd_path", where)
        if not re.fullmatch(r"(?i)([a-z]:|%programfiles%)\\.*\\lcscmd\.exe", path):
            raise UsageError(
                f"{where}: lcscmd_path must be a full path to LCSCmd.exe (C:\\... or %ProgramFiles%\\...), "
                f"not {path!r}"
            )
        server.lcscmd_path = path
    if "powershell" in entry:
        version = _text(entry, "powershell", where)
        if not all(part.isdigit() for part in version.split(".")):
            raise UsageError(f"{where}: powershell must look like 2.0 or 5.1, not {version!r}")
        server.powershell = version
    assigned = _table(entry.get("certificate_assignments", {}), f"{where} certificate_assignments")
    server.certificate_assignments = {
        str(use): _text(assigned, use, f"{where} certificate_assignments") for use in assigned
    }
    now = server.now()
    for index, cert in enumerate(_tables(entry.get("certificates", []), f"{where} certificates"), 1):
        at = f"{where} certificates #{index}"
        _known(cert, _CERT_KEYS, at)
        readers = cert.get("key_readers")
        if readers is not None and (
            not isinstance(readers, list) or not all(isinstance(r, str) for r in readers)
        ):
            raise UsageError(f"{at}: key_readers must be a list of principal names")
        server.certificates.append(
            SimCertificate(
                thumbprint=_text(cert, "thumbprint", at).upper(),
                serial=_text(cert, "serial", at).upper(),
                subject=_text(cert, "subject", at),
                issuer=_text(cert, "issuer", at),
                not_before=now + timedelta(days=_number(cert, "valid_from_days", at, -365)),
                not_after=now + timedelta(days=_number(cert, "valid_to_days", at, 365)),
                has_private_key=_bool(cert, "has_private_key", at, True),
                archived=_bool(cert, "archived", at, False),
                key_readers=None if readers is None else tuple(readers),
            )
        )
    for index, event in enumerate(_tables(entry.get("events", []), f"{where} events"), 1):
        at = f"{where} events #{index}"
        _known(event, _EVENT_KEYS, at)
        event_id = event.get("id")
        if isinstance(event_id, bool) or not isinstance(event_id, int) or not 0 < event_id < 65536:
            raise UsageError(f"{at}: id must be an event id (1-65535)")
        known = next((e for e in catalog.events if e.id == event_id), None)
        log = server.product.event_log if known is None else catalog.event_log_name(server.product, known)
        server.events.append(
            SimEvent(
                id=event_id,
                time=now - timedelta(minutes=_number(event, "minutes_ago", at, 0)),
                log=_text(event, "log", at, log),
                source=_text(event, "source", at, server.product.service_prefix),
                level=_text(event, "level", at, "Error"),
                message=_text(event, "message", at, known.text if known else f"Event {event_id}"),
            )
        )
    server.events.sort(key=lambda e: e.time)


# ---------------------------------------------------------------------------------------------- handlers
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _module_import(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
    if sim.product.module and not sim.module_loads:
        raise LabError(
            f"The specified module '{sim.product.module}' was not loaded because no valid module file was "
            "found in any module directory.",
            category="ResourceUnavailable",
            error_id="Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand",
        )


def _tls_certificate(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
    with sim.lock:
        out.write({"Kind": "Now", "ComputerName": sim.reported_name, "ServerTime": sim.now().isoformat()})
        if sim.product.service_control == "cs":
            for use, thumbprint in sim.certificate_assignments.items():
                cert = next((c for c in sim.certificates if c.thumbprint == thumbprint.upper()), None)
                out.write(
                    {
                        "Kind": "Reference",
                        "Source": "Get-CsCertificate",
                        "Label": use,
                        "Thumbprint": thumbprint.upper(),
                        "SerialNumber": cert.serial if cert else "",
                        "Issuer": cert.issuer if cert else "",
                    }
                )
        else:
            serial_property, issuer_property = str(params["SerialProperty"]), str(params["IssuerProperty"])
            for cls in (str(c) for c in _as_list(params.get("Class"))):
                instances = sim.wmi.get(cls)
                if instances is None:
                    out.write({"Kind": "ReferenceError", "Source": cls, "Message": f'Invalid class "{cls}"'})
                    continue
                for instance in instances:
                    serial = instance.get(serial_property)
                    if serial:
                        out.write(
                            {
                                "Kind": "Reference",
                                "Source": cls,
                                "Label": cls,
                                "Thumbprint": "",
                                "SerialNumber": str(serial),
                                "Issuer": str(instance.get(issuer_property) or ""),
                            }
                        )
        for cert in sim.certificates:
            readable = cert.has_private_key and cert.key_readers is not None
            detail = (
                "" if readable or not cert.has_private_key else "the lab models this key's ACL as unreadable"
            )
            out.write(
                {
                    "Kind": "Certificate",
                    "Thumbprint": cert.thumbprint,
                    "SerialNumber": cert.serial,
                    "Subject": cert.subject,
                    "Issuer": cert.issuer,
                    "NotBefore": cert.not_before.isoformat(),
                    "NotAfter": cert.not_after.isoformat(),
                    "HasPrivateKey": cert.has_private_key,
                    "Archived": cert.archived,
                    "KeyAclRead": readable,
                    "KeyReaders": ";".join(cert.key_readers or ()) if readable else "",
                    "KeyDetail": detail,
                }
            )


def _drain_ready(username: str) -> Handler:
    def handler(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
        name = str(params.get("Name") or "")
        exists: bool | None = None
        status = activity = ""
        if name and sim.module_loads:
            sim.tick()
            with sim.lock:
                try:
                    svc = sim.find(name)
                except LabError:
                    exists = False
                else:
                    exists, status = True, svc.status
                    activity = svc.activity_text() if sim.in_perfmon_group else ""
        out.write(
            {
                "ComputerName": sim.reported_name,
                "UserName": username,
                "InPerfmonGroup": sim.in_perfmon_group,
                "IsAdministrator": False,
                "PSVersion": sim.powershell or sim.product.powershell,
                "ModuleLoaded": sim.module_loads,
                "ServiceName": name,
                "ServiceExists": exists,
                "ServiceStatus": status,
                "ActivityLevel": activity,
            }
        )

    return handler


def _deactivation_ready(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
    path = str(params["LcsCmdPath"])
    out.write({"ComputerName": sim.reported_name, "LcsCmdPath": path, "LcsCmdPresent": sim.file_exists(path)})


def check_handlers(username: str) -> dict[str, Handler]:
    """Handlers for the check templates, and a module import that honours ``module_loads``."""
    return {
        "module-import": _module_import,
        "check-tls-certificate": _tls_certificate,
        "check-drain-ready": _drain_ready(username),
        "check-deactivation-ready": _deactivation_ready,
    }
