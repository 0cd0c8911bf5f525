"""ServiceStatus: one Windows service as Get-CsWindowsService (Lync 2010+) or Get-Service (OCS) reports it.

Shapes accepted:

* our templates: a PSCustomObject with ComputerName, Name, DisplayName, Status, RoleName, ActivityLevel;
* Get-CsWindowsService's ``NTService`` objects (adapted Name, DisplayName, Status, RoleName, ActivityLevel);
* Get-Service's ``ServiceController`` (adapted ServiceName, DisplayName, Status, MachineName; PowerShell
  adds the ``Name`` alias), which is all OCS 2007 / R2 offer: no roles and no activity level;
* Win32_Service rows (Name, DisplayName, State with spaces such as "Stop Pending", SystemName).

Status may be the enum name, the ServiceControllerStatus number, or Win32_Service text. A value we do not
recognise becomes :attr:`ServiceState.UNKNOWN` and the text is kept, because a new state must not make
the whole service list unreadable, and UNKNOWN is never mistaken for Running or Stopped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ocsps.results.activity import ActivityLevel, parse_activity_level
from ocsps.results.base import (
    Names,
    ParseError,
    PropertyReader,
    enum_token,
    host_name,
    known_names,
    no_extra,
    to_text,
)

__all__ = ["ServiceState", "ServiceStatus", "parse_service_status"]

KIND = "ServiceStatus"


class ServiceState(StrEnum):
    """System.ServiceProcess.ServiceControllerStatus names, plus UNKNOWN for anything else."""

    STOPPED = "Stopped"
    START_PENDING = "StartPending"
    STOP_PENDING = "StopPending"
    RUNNING = "Running"
    CONTINUE_PENDING = "ContinuePending"
    PAUSE_PENDING = "PausePending"
    PAUSED = "Paused"
    UNKNOWN = "Unknown"

    @classmethod
    def from_token(cls, token: str | int | None) -> ServiceState:
        """Map an enum name, Win32_Service text or ServiceControllerStatus number; UNKNOWN otherwise."""
        if isinstance(token, int):
            return _BY_NUMBER.get(token, cls.UNKNOWN)
        if token is None:
            return cls.UNKNOWN
        state = _BY_NAME.get(token.casefold())  # the usual case: the enum name as .NET writes it
        if state is None:
            state = _BY_NAME.get(_SEPARATORS_RE.sub("", token).casefold(), cls.UNKNOWN)
        return state


_SEPARATORS_RE = re.compile(r"[\s_-]+")
_BY_NUMBER: dict[int, ServiceState] = {
    1: ServiceState.STOPPED,
    2: ServiceState.START_PENDING,
    3: ServiceState.STOP_PENDING,
    4: ServiceState.RUNNING,
    5: ServiceState.CONTINUE_PENDING,
    6: ServiceState.PAUSE_PENDING,
    7: ServiceState.PAUSED,
}
_BY_NAME: dict[str, ServiceState] = {
    state.value.casefold(): state for state in ServiceState if state is not ServiceState.UNKNOWN
}


@dataclass(frozen=True)
class ServiceStatus:
    """A service's state on one computer.

    ``status_text`` is what the server sent (name or number as text), kept so that an UNKNOWN state
    can still be shown to the administrator. ``activity`` is None when the object carried no
    ActivityLevel (OCS, or ``-ExcludeActivityLevel``); an empty string from the server gives an empty
    :class:`ActivityLevel`, which is never idle.
    """

    name: str
    status: ServiceState
    status_text: str
    display_name: str | None = None
    computer: str | None = None
    role_names: tuple[str, ...] = ()
    activity: ActivityLevel | None = None
    extra: Mapping[str, object] = field(default_factory=no_extra, hash=False)

    @property
    def is_running(self) -> bool:
        return self.status is ServiceState.RUNNING

    @property
    def is_stopped(self) -> bool:
        return self.status is ServiceState.STOPPED

    @property
    def is_paused(self) -> bool:
        """Paused is how a service shows while ``Stop-CsWindowsService -Graceful`` drains it."""
        return self.status is ServiceState.PAUSED


_ROLE_SPLIT_RE = re.compile(r"[,;\r\n]")


def _role_names(value: object) -> tuple[str, ...]:
    """RoleName arrives as a list, as "A, B" text, or as console text "{A, B}"; all give a tuple."""
    if value is None:
        return ()
    if type(value) is str:  # what templates and Get-CsWindowsService send
        return _split_roles(value)
    items: list[object]
    if isinstance(value, list | tuple):
        items = list(value)
    else:
        sets = getattr(value, "property_sets", None)
        if (
            getattr(value, "to_string", None) is None
            and isinstance(sets, list)
            and len(sets) == 1
            and isinstance(sets[0], list)
        ):
            items = list(sets[0])
        else:
            items = [value]
    names: list[str] = []
    for item in items:
        names.extend(_split_roles(to_text(item) or ""))
    return tuple(names)


def _split_roles(text: str) -> tuple[str, ...]:
    text = text.strip().removeprefix("{").removesuffix("}")
    parts = [part.strip() for part in _ROLE_SPLIT_RE.split(text)]
    return tuple(part for part in parts if part)


def _status(value: object) -> tuple[ServiceState, str]:
    token = enum_token(value)
    text = "" if token is None else str(token)
    return ServiceState.from_token(token), text


_NAME = Names("Name", "ServiceName")
_STATUS = Names("Status", "State")
_DISPLAY_NAME = Names("DisplayName")
_COMPUTER = Names("ComputerName", "PSComputerName", "MachineName", "SystemName")
_ROLES = Names("RoleName", "RoleNames", "Roles")
_ACTIVITY = Names("ActivityLevel")
_KNOWN = known_names(_NAME, _STATUS, _DISPLAY_NAME, _COMPUTER, _ROLES, _ACTIVITY)


def parse_service_status(obj: object) -> ServiceStatus:
    """Build a :class:`ServiceStatus` from any of the shapes listed in the module docstring.

    Required: Name (or ServiceName) and Status (or State). Everything else is optional, and properties
    not read here are kept in ``extra``.
    """
    reader = PropertyReader(obj, KIND, _KNOWN)
    name = reader.find_required_text(_NAME)
    found = reader.find(_STATUS)
    if found is None:
        raise reader.fail(_STATUS.names, "is missing")
    status_name, status_value = found
    if status_value is None:
        raise ParseError(KIND, status_name, "is null")
    status, status_text = reader.convert(status_name, status_value, _status)
    display_name = reader.find_text(_DISPLAY_NAME)
    computer = host_name(reader.find_text(_COMPUTER))
    roles_found = reader.find(_ROLES)
    role_names: tuple[str, ...] = ()
    if roles_found is not None:
        role_names = reader.convert(roles_found[0], roles_found[1], _role_names)
    activity: ActivityLevel | None = None
    activity_found = reader.find(_ACTIVITY)
    if activity_found is not None and activity_found[1] is not None:
        try:
            activity = parse_activity_level(activity_found[1])
        except ParseError as exc:
            raise ParseError(KIND, activity_found[0], exc.problem) from None
    return ServiceStatus(
        name=name,
        status=status,
        status_text=status_text,
        display_name=display_name,
        computer=computer,
        role_names=role_names,
        activity=activity,
        extra=reader.extra(),
    )
