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
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from ocsps.catalog import Catalog
from ocsps.lab.estate import LabError, SimCertificate, SimEvent, SimServer
from ocsps.shapes import FieldError

if TYPE_CHECKING:
    from ocsps.lab.wsman import PipelineSink

__all__ = ["CHECK_SERVER_KEYS", "CheckFields", "apply_check_fields", "check_handlers"]

Handler = Callable[[SimServer, Mapping[str, Any], "PipelineSink"], None]
EventId = Annotated[int, msgspec.Meta(ge=1, le=65535)]


# ---------------------------------------------------------------------------------------------- topology
def _need_text(struct: msgspec.Struct, *names: str) -> None:
    """Text fields that must say something (``None`` means "use the default")."""
    for name in names:
        value = getattr(struct, name)
        if value is not None and not value.strip():
            raise FieldError(name, "must be non-empty text")


class _Certificate(msgspec.Struct, forbid_unknown_fields=True):
    thumbprint: str
    serial: str
    subject: str
    issuer: str
    valid_from_days: float = -365
    valid_to_days: float = 365
    has_private_key: bool = True
    archived: bool = False
    key_readers: list[str] | None = None  # principals the key ACL lets read; None: unreadable

    def __post_init__(self) -> None:
        _need_text(self, "thumbprint", "serial", "subject", "issuer")


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    id: EventId
    minutes_ago: float = 0
    log: str | None = None
    level: str | None = None
    source: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        _need_text(self, "log", "level", "source", "message")


class CheckFields(msgspec.Struct, kw_only=True):
    """The ``[[servers]]`` keys this module reads; the topology's server shape inherits them."""

    module_loads: bool = True
    powershell: str | None = None
    lcscmd_installed: bool = True
    lcscmd_path: str | None = None
    certificate_assignments: dict[str, str] = {}
    certificates: list[_Certificate] = []
    events: list[_Event] = []

    def __post_init__(self) -> None:
        _need_text(self, "powershell", "lcscmd_path")
        path = self.lcscmd_path
        if path is not None and not re.fullmatch(r"(?i)([a-z]:|%programfiles%)\\.*\\lcscmd\.exe", path):
            raise FieldError(
                "lcscmd_path",
                f"must be a full path to LCSCmd.exe (C:\\... or %ProgramFiles%\\...), not {path!r}",
            )
        if self.powershell is not None and not all(p.isdigit() for p in self.powershell.split(".")):
            raise FieldError("powershell", f"must look like 2.0 or 5.1, not {self.powershell!r}")
        for use, thumbprint in self.certificate_assignments.items():
            if not thumbprint.strip():
                raise FieldError("certificate_assignments", f"{use}: must be non-empty text")


CHECK_SERVER_KEYS = frozenset(CheckFields.__struct_fields__)


def apply_check_fields(catalog: Catalog, server: SimServer, fields: CheckFields) -> None:
    """Copy this module's ``[[servers]]`` keys into ``server``; times are relative to the lab's clock now."""
    server.module_loads = fields.module_loads
    server.lcscmd_installed = fields.lcscmd_installed
    if fields.lcscmd_path is not None:
        server.lcscmd_path = fields.lcscmd_path
    if fields.powershell is not None:
        server.powershell = fields.powershell
    server.certificate_assignments = dict(fields.certificate_assignments)
    now = server.now()
    for cert in fields.certificates:
        server.certificates.append(
            SimCertificate(
                thumbprint=cert.thumbprint.upper(),
                serial=cert.serial.upper(),
                subject=cert.subject,
                issuer=cert.issuer,
                not_before=now + timedelta(days=cert.valid_from_days),
                not_after=now + timedelta(days=cert.valid_to_days),
                has_private_key=cert.has_private_key,
                archived=cert.archived,
                key_readers=None if cert.key_readers is None else tuple(cert.key_readers),
            )
        )
    for event in fields.events:
        known = next((e for e in catalog.events if e.id == event.id), None)
        log = server.product.event_log if known is None else catalog.event_log_name(server.product, known)
        server.events.append(
            SimEvent(
                id=event.id,
                time=now - timedelta(minutes=event.minutes_ago),
                log=event.log or log,
                source=event.source or server.product.service_prefix,
                level=event.level or "Error",
                message=event.message or (known.text if known else f"Event {event.id}"),
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
