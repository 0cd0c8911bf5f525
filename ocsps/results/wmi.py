"""WmiSetting: one property of one WMI instance, the unit in which OCS 2007 / R2 keeps its settings.

OCS settings live in WMI classes such as ``MSFT_SIPVersion`` or ``MSFT_SIPPoolSetting``; the restart
rules of the settings catalog are written per ``class.property``, so that is the unit parsed here.

Two shapes:

* our templates emit one PSCustomObject per property: ComputerName, Class, Property, Value and an
  optional InstanceId (or Backend, the key of pool-level classes); :func:`parse_wmi_setting` reads it;
* Get-WmiObject returns whole ``ManagementObject`` instances (``__CLASS``, ``__SERVER``, ``__RELPATH``
  and one property per setting); :func:`parse_wmi_instance` splits such an instance into settings.

``value`` is kept as received (WMI values may be numbers, text, arrays or embedded objects) and is only
made JSON-safe on output; a value nested past any real property type, or containing itself, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ocsps.results.base import ParseError, PropertyReader, bounded, host_name, no_extra

__all__ = ["WmiSetting", "parse_wmi_instance", "parse_wmi_setting"]

KIND = "WmiSetting"

# Members PowerShell adds to every ManagementObject; they describe the object, not a setting.
_WMI_OBJECT_MEMBERS = frozenset(
    name.casefold()
    for name in (
        "Scope",
        "Path",
        "Options",
        "ClassPath",
        "Properties",
        "SystemProperties",
        "Qualifiers",
        "Site",
        "Container",
        "PSComputerName",
        "PSShowComputerName",
        "RunspaceId",
    )
)


@dataclass(frozen=True)
class WmiSetting:
    """The value of ``wmi_class.property`` on one computer (and one instance, when the class has several)."""

    wmi_class: str
    property: str
    value: object = field(default=None, hash=False)
    computer: str | None = None
    instance: str | None = None
    extra: Mapping[str, object] = field(default_factory=no_extra, hash=False)

    def qualified_name(self) -> str:
        """``Class.Property``, the form the restart-rule catalog uses."""
        return f"{self.wmi_class}.{self.property}"


def parse_wmi_setting(obj: object) -> WmiSetting:
    """Build a :class:`WmiSetting` from template output.

    Reads: Class (or WmiClass, __CLASS) and Property (or PropertyName), both required; Value, which must
    be present but may be null; ComputerName, PSComputerName or __SERVER; InstanceId, Instance or Backend.
    """
    reader = PropertyReader(obj, KIND)
    wmi_class = reader.required_text("Class", "WmiClass", "__CLASS")
    name = reader.required_text("Property", "PropertyName")
    value = reader.convert("Value", reader.raw("Value", required=True), bounded)
    return WmiSetting(
        wmi_class=wmi_class,
        property=name,
        value=value,
        computer=host_name(reader.text("ComputerName", "PSComputerName", "__SERVER")),
        instance=reader.text("InstanceId", "Instance", "Backend"),
        extra=reader.extra(),
    )


def parse_wmi_instance(obj: object, properties: Iterable[str] | None = None) -> tuple[WmiSetting, ...]:
    """Split a Get-WmiObject instance into one :class:`WmiSetting` per property.

    ``properties`` limits the result to those names (in that order) and makes each of them required;
    without it every non-system property is returned in the order the server sent them. The instance is
    identified by ``__RELPATH`` (for example ``MSFT_SIPPoolSetting.Backend="sql01\\rtc"``).
    """
    reader = PropertyReader(obj, KIND)
    wmi_class = reader.required_text("__CLASS")
    computer = host_name(reader.text("__SERVER", "PSComputerName"))
    instance = reader.text("__RELPATH", "__PATH")
    if properties is not None:
        settings: list[WmiSetting] = []
        for wanted in properties:
            found = reader.lookup(wanted)
            if found is None:
                raise ParseError(KIND, wanted, f"is missing from the {wmi_class} instance")
            value = reader.convert(found[0], found[1], bounded)
            settings.append(WmiSetting(wmi_class, found[0], value, computer, instance))
        return tuple(settings)
    return tuple(
        WmiSetting(wmi_class, name, reader.convert(name, value, bounded), computer, instance)
        for key, (name, value) in reader.props.items()
        if not key.startswith("__") and key not in _WMI_OBJECT_MEMBERS
    )
