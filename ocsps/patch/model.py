"""Typed answers of the patch templates: parsed once, checked against the question, never guessed.

A field the template always sends and that is missing is a ``ParseError``: a server answering in another
shape than the one asked for must stop the run, not be read as "nothing pending" or "version unknown".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ocsps.errors import OcspsError

__all__ = [
    "Component",
    "ComponentDocument",
    "InstallOutcome",
    "PatchState",
    "PatchStateDocument",
    "ServiceInfo",
    "answering_computers",
    "parse_install",
    "parse_patch_state",
    "parse_restart",
    "startup_type",
]

START_MODES = {"auto": "Automatic", "automatic": "Automatic", "manual": "Manual", "disabled": "Disabled"}


class PatchParseError(OcspsError):
    """The server's answer does not have the shape the template sends."""


def startup_type(start_mode: str) -> str:
    """Win32_Service StartMode ('Auto') as the Set-Service value that restores it ('Automatic')."""
    found = START_MODES.get(start_mode.strip().casefold())
    if found is None:
        raise PatchParseError(f"start-up type {start_mode!r} cannot be restored with Set-Service")
    return found


def _props(obj: object) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    adapted = getattr(obj, "adapted_properties", None) or {}
    extended = getattr(obj, "extended_properties", None) or {}
    merged = {**dict(adapted), **dict(extended)}
    if not merged:
        raise PatchParseError(f"unexpected output from the server: {type(obj).__name__}")
    return merged


def _text(props: Mapping[str, Any], key: str) -> str:
    if key not in props:
        raise PatchParseError(f"the server's answer lacks {key}: not the shape ocsps asked for")
    value = props[key]
    return "" if value is None else str(value)


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    state: str  # Win32_Service State: Running, Stopped, Start Pending...; empty: no such service
    start_mode: str  # Win32_Service StartMode: Auto, Manual, Disabled

    @property
    def exists(self) -> bool:
        return bool(self.state)

    @property
    def running(self) -> bool:
        return self.state.casefold() == "running"

    @property
    def stopped(self) -> bool:
        return self.state.casefold() == "stopped"

    @property
    def disabled(self) -> bool:
        return self.start_mode.casefold() == "disabled"

    @property
    def automatic(self) -> bool:
        return self.start_mode.casefold() in ("auto", "automatic")


@dataclass(frozen=True)
class Component:
    name: str
    version: str


@dataclass(frozen=True)
class PatchState:
    computer: str
    boot_time: str
    free_bytes: int | None
    installer_found: bool | None
    reboot_flags: Mapping[str, bool]
    services: tuple[ServiceInfo, ...]
    components: tuple[Component, ...]

    @property
    def pending_reboot(self) -> list[str]:
        return [name for name, set_ in self.reboot_flags.items() if set_]

    def service(self, name: str) -> ServiceInfo | None:
        return next((s for s in self.services if s.name.casefold() == name.casefold()), None)


class ComponentDocument(msgspec.Struct):
    """A component's version as ``Get-CsServerPatchVersion`` names it."""

    component: str
    version: str


class PatchStateDocument(msgspec.Struct):
    """A reading of the server: the restart flags that are set (``pending_reboot``), not all of them."""

    computer: str
    boot_time: str
    free_bytes: int | None
    installer_found: bool | None
    pending_reboot: list[str]
    services: tuple[ServiceInfo, ...]
    components: tuple[ComponentDocument, ...]

    @classmethod
    def of(cls, state: PatchState) -> PatchStateDocument:
        return cls(
            state.computer,
            state.boot_time,
            state.free_bytes,
            state.installer_found,
            state.pending_reboot,
            state.services,
            tuple(ComponentDocument(c.name, c.version) for c in state.components),
        )


def _bool(text: str) -> bool | None:
    folded = text.strip().casefold()
    return True if folded == "true" else False if folded == "false" else None


def parse_patch_state(output: Sequence[object], asked_services: Sequence[str] = ()) -> PatchState:
    """``patch-state`` output; every service asked about must be answered, once."""
    computer: dict[str, Any] | None = None
    flags: dict[str, bool] = {}
    services: list[ServiceInfo] = []
    components: list[Component] = []
    for obj in output:
        props = _props(obj)
        kind = _text(props, "Kind")
        if kind == "computer":
            computer = dict(props)
        elif kind == "reboot-flag":
            flags[_text(props, "Name")] = _bool(_text(props, "Set")) is True
        elif kind == "service":
            services.append(
                ServiceInfo(_text(props, "Name"), _text(props, "State"), _text(props, "StartMode"))
            )
        elif kind == "component":
            components.append(Component(_text(props, "Component"), _text(props, "Version")))
        else:
            raise PatchParseError(f"unexpected kind {kind!r} in the server's answer")
    if computer is None:
        raise PatchParseError("the server's answer has no computer line")
    answered = [s.name.casefold() for s in services]
    if sorted(answered) != sorted(n.casefold() for n in asked_services):
        raise PatchParseError(
            f"asked about {', '.join(asked_services) or 'no service'}, the server answered about "
            f"{', '.join(s.name for s in services) or 'none'}"
        )
    free = _text(computer, "FreeBytes").strip()
    return PatchState(
        computer=_text(computer, "ComputerName"),
        boot_time=_text(computer, "BootTime"),
        free_bytes=int(free) if free.isdigit() else None,
        installer_found=_bool(_text(computer, "InstallerFound")),
        reboot_flags=flags,
        services=tuple(services),
        components=tuple(components),
    )


def answering_computers(output: Sequence[object]) -> set[str]:
    """Every ComputerName the answer carries: each one must be the computer that was named."""
    return {_text(props, "ComputerName") for props in map(_props, output)}


def parse_services(output: Sequence[object], asked: Sequence[str]) -> tuple[ServiceInfo, ...]:
    """``patch-set-startup`` output: each service as the computer holds it after the change."""
    found = tuple(
        ServiceInfo(_text(p, "Name"), _text(p, "State"), _text(p, "StartMode")) for p in map(_props, output)
    )
    if sorted(s.name.casefold() for s in found) != sorted(n.casefold() for n in asked):
        raise PatchParseError(f"asked to set {', '.join(asked)}, the server answered about others")
    return found


@dataclass(frozen=True)
class InstallOutcome:
    computer: str
    ran: bool
    exit_code: int | None
    log_path: str
    log_tail: str = field(default="", repr=False)


def parse_install(output: Sequence[object]) -> InstallOutcome:
    if len(output) != 1:
        raise PatchParseError(f"the installer step answered with {len(output)} objects, expected one")
    props = _props(output[0])
    code = _text(props, "ExitCode").strip()
    try:
        exit_code = int(code) if code else None
    except ValueError:
        raise PatchParseError(f"the installer's exit code is not a number: {code[:40]!r}") from None
    return InstallOutcome(
        computer=_text(props, "ComputerName"),
        ran=_bool(_text(props, "Ran")) is True,
        exit_code=exit_code,
        log_path=_text(props, "LogPath"),
        log_tail=_text(props, "LogTail"),
    )


def parse_restart(output: Sequence[object]) -> str:
    """The boot time the computer reported just before it restarted."""
    if not output:
        raise PatchParseError("the restart step answered with nothing")
    return _text(_props(output[0]), "BootTime")
