"""Plan one server's patch: pure, from the request and the facts, before anything is sent.

The plan fixes what the run may not decide on the way: the installer (its file name must be the
product's, from patch.toml), its switches, how the result is verified, the deadlines, what happens to a
service that never drains and whether the run may restart the computer. A product whose patch level ocsps
cannot verify is refused here: installing what cannot be checked afterwards is not a patch run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from ocsps.catalog import Product
from ocsps.errors import UsageError
from ocsps.patch.facts import PatchFacts, load_patch_facts

__all__ = [
    "PatchOptions",
    "PatchOptionsDocument",
    "PatchPlan",
    "PatchPlanDocument",
    "PlannedStep",
    "check_options",
    "default_options",
    "plan_patch",
]

Reboot = Literal["auto", "never"]
Then = Literal["stop", "force-stop"]

_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:\\|\\\\[^\\/:*?\"<>|]+\\[^\\/:*?\"<>|]+\\)[^\"<>|*?\r\n\x00]*$")
_VERSION = re.compile(r"^\d+(?:\.\d+){1,3}$")


@dataclass(frozen=True)
class PatchOptions:
    expect_version: str
    reboot: Reboot = "auto"
    then: Then = "stop"
    install_timeout: float = 7200.0
    reboot_timeout: float = 1800.0
    drain_timeout: float = 1800.0
    restore_timeout: float = 900.0
    service_poll: float = 10.0
    reconnect_first: float = 5.0
    reconnect_max: float = 60.0
    min_free_bytes: int = 2 * 1024**3
    service_deadlines: Mapping[str, float] = field(default_factory=dict)
    """Services with their own drain deadline (pools.toml [service_drain]); never beyond drain_timeout."""
    service_then: Mapping[str, str] = field(default_factory=dict)

    def drain_rule(self, service: str) -> tuple[float, str, bool]:
        """(deadline, then, from the catalog) for one service's drain."""
        key = next((k for k in self.service_deadlines if k.casefold() == service.casefold()), None)
        if key is None:
            return self.drain_timeout, self.then, False
        limit = min(self.service_deadlines[key], self.drain_timeout)
        return limit, self.service_then.get(key, self.then), True

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PatchOptions:
        """The options a saved record was run with (a resume keeps them)."""
        base = cls(str(doc["expect_version"]))
        return cls(
            expect_version=str(doc["expect_version"]),
            reboot=doc.get("reboot", base.reboot),
            then=doc.get("then", base.then),
            install_timeout=float(doc.get("install_timeout", base.install_timeout)),
            reboot_timeout=float(doc.get("reboot_timeout", base.reboot_timeout)),
            drain_timeout=float(doc.get("drain_timeout", base.drain_timeout)),
            restore_timeout=float(doc.get("restore_timeout", base.restore_timeout)),
            service_poll=float(doc.get("service_poll", base.service_poll)),
            reconnect_first=float(doc.get("reconnect_first", base.reconnect_first)),
            reconnect_max=float(doc.get("reconnect_max", base.reconnect_max)),
            min_free_bytes=int(doc.get("min_free_bytes", base.min_free_bytes)),
            service_deadlines={str(k): float(v) for k, v in doc.get("service_deadlines", {}).items()},
            service_then={str(k): str(v) for k, v in doc.get("service_then", {}).items()},
        )


@dataclass(frozen=True)
class PlannedStep:
    name: str
    summary: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class PatchPlan:
    host: str
    product: str
    installer_path: str
    arguments: tuple[str, ...]
    verify: str
    hold: str
    options: PatchOptions
    steps: tuple[PlannedStep, ...]
    in_pool: bool = False
    """A pool member: the pool method takes it out and brings it back; the run does what lies between."""

    @property
    def unc(self) -> bool:
        return self.installer_path.startswith("\\\\")

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PatchPlan:
        return cls(
            host=str(doc["host"]),
            product=str(doc["product"]),
            installer_path=str(doc["installer_path"]),
            arguments=tuple(str(a) for a in doc["arguments"]),
            verify=str(doc["verify"]),
            hold=str(doc["hold"]),
            options=PatchOptions.from_json(doc["options"]),
            steps=tuple(
                PlannedStep(str(s["name"]), str(s["summary"]), tuple(str(a) for a in s["actions"]))
                for s in doc["steps"]
            ),
            in_pool=bool(doc.get("in_pool", False)),
        )


class PatchOptionsDocument(msgspec.Struct):
    """The options as records and roll states have always saved them (the free-space floor before the
    reconnect timings): a resume reads them back with :meth:`PatchOptions.from_json`."""

    expect_version: str
    reboot: str
    then: str
    install_timeout: float
    reboot_timeout: float
    drain_timeout: float
    restore_timeout: float
    service_poll: float
    min_free_bytes: int
    reconnect_first: float
    reconnect_max: float
    service_deadlines: Mapping[str, float]
    service_then: Mapping[str, str]

    @classmethod
    def of(cls, options: PatchOptions) -> PatchOptionsDocument:
        o = options
        return cls(
            o.expect_version,
            o.reboot,
            o.then,
            o.install_timeout,
            o.reboot_timeout,
            o.drain_timeout,
            o.restore_timeout,
            o.service_poll,
            o.min_free_bytes,
            o.reconnect_first,
            o.reconnect_max,
            o.service_deadlines,
            o.service_then,
        )


class PatchPlanDocument(msgspec.Struct, omit_defaults=True):
    """A server's patch plan as ``--what-if --json`` shows it and its record saves it; ``in_pool`` only
    for a pool member, as records written before it existed have it."""

    host: str
    product: str
    installer_path: str
    arguments: tuple[str, ...]
    verify: str
    hold: str
    options: PatchOptionsDocument
    steps: tuple[PlannedStep, ...]
    in_pool: bool = False

    @classmethod
    def of(cls, plan: PatchPlan) -> PatchPlanDocument:
        p = plan
        options = PatchOptionsDocument.of(p.options)
        return cls(
            p.host, p.product, p.installer_path, p.arguments, p.verify, p.hold, options, p.steps, p.in_pool
        )


def default_options(expect_version: str, facts: PatchFacts | None = None, **changes: object) -> PatchOptions:
    """Options with the deadlines of patch.toml, changed by ``changes`` (None: keep the default)."""
    from ocsps.pool.facts import load_pool_facts

    d = (facts or load_patch_facts()).defaults
    drains = load_pool_facts().service_drain
    values: dict[str, object] = {
        "service_deadlines": {s.service: s.deadline for s in drains},
        "service_then": {s.service: s.then for s in drains},
        "expect_version": expect_version,
        "install_timeout": d.install_timeout,
        "reboot_timeout": d.reboot_timeout,
        "drain_timeout": d.drain_timeout,
        "restore_timeout": d.restore_timeout,
        "service_poll": d.service_poll,
        "reconnect_first": d.reconnect_first,
        "reconnect_max": d.reconnect_max,
        "min_free_bytes": int(d.min_free_gb * 1024**3),
    }
    values.update({k: v for k, v in changes.items() if v is not None})
    return PatchOptions(**values)  # type: ignore[arg-type]


def check_options(options: PatchOptions) -> None:
    """What can be refused without knowing the server: checked before any connection is made."""
    if not _VERSION.match(options.expect_version or ""):
        raise UsageError(
            "--expect-version is required: the version every component must report after the update, "
            f"e.g. 6.0.9319.619 (got {options.expect_version[:40]!r})"
        )
    if options.reboot not in ("auto", "never"):
        raise UsageError(f"--reboot takes auto or never, not {options.reboot!r}")
    if options.then not in ("stop", "force-stop"):
        raise UsageError(f"--then takes stop or force-stop, not {options.then!r}")
    for name in ("install_timeout", "reboot_timeout", "drain_timeout", "service_poll"):
        if getattr(options, name) <= 0:
            raise UsageError(f"{name.replace('_', '-')} must be more than zero")


def plan_patch(
    host: str,
    product: Product,
    installer_path: str,
    options: PatchOptions,
    facts: PatchFacts | None = None,
    *,
    in_pool: bool = False,
) -> PatchPlan:
    """The steps for one server, or a ``UsageError`` naming what is wrong with the request.

    ``in_pool``: a member of a Front End pool, taken out and brought back by the pool's own method
    (failover / failback, or a drain); its plan has no out-of-service nor back-in-service step, and
    ends by restoring the start-up types it changed."""
    facts = facts or load_patch_facts()
    spec = facts.for_product(product.id)
    if not spec.verifiable:
        raise UsageError(
            f"ocsps cannot verify the patch level of a {product.name} server: the catalog cites no "
            "documented way to read it (Get-CsServerPatchVersion arrived with Skype for Business "
            "Server 2015), so it does not install an update it cannot check afterwards",
            hint="patch this server by hand; ocsps drain / stop / start can take it out of service",
        )
    path = installer_path.strip()
    if not _WINDOWS_PATH.match(path):
        raise UsageError(
            f"--installer must be a full Windows path as the server sees it "
            f"(C:\\... or \\\\server\\share\\...), not {installer_path[:80]!r}"
        )
    leaf = path.rsplit("\\", 1)[-1]
    if leaf.casefold() != spec.installer.casefold():
        raise UsageError(
            f"the update installer of {product.name} is {spec.installer} (patch.toml), not {leaf[:60]!r}"
        )
    check_options(options)
    never = "stop the run and leave it to the operator" if options.then == "stop" else "force-stop it"
    reboot = (
        "restart the computer if the installer asks for it (exit 3010) or a restart is pending; reconnect "
        "with backoff until WinRM answers, the boot time has changed and every automatic service runs"
        if options.reboot == "auto"
        else "never restart: if a restart is needed, stop and say so"
    )
    steps = (
        PlannedStep(
            "preflight",
            "read the services, boot time, free space, pending-reboot flags, the installer path as the "
            "server sees it and each component's version; stop on a pending reboot, too little space or "
            "a missing installer",
            ("status", "patch-state"),
        ),
        PlannedStep(
            "out-of-service",
            f"drain every running service, each with its own deadline; a service that never drains: {never}",
            ("drain", "patch-state") + (("stop",) if options.then == "force-stop" else ()),
        ),
        PlannedStep(
            "hold",
            "record each service's start-up type, then set Disabled so nothing starts them during the "
            "install or at boot; restored at the end whatever happens",
            ("patch-set-startup",),
        ),
        PlannedStep(
            "install",
            f"run {spec.installer} {' '.join(spec.switches)} with a deadline; exit code 0 is success, 3010 "
            "success with a restart required, anything else a failure (the log is reported)",
            ("patch-install",),
        ),
        PlannedStep("reboot", reboot, ("patch-restart", "patch-state")),
        PlannedStep(
            "verify",
            f"every component's version ({spec.verify}) must be {options.expect_version}; a mismatch "
            "stops the run with the server left out of service"
            + (
                ""
                if spec.verify_confirmed
                else f" (UNCONFIRMED: no Microsoft page states that {spec.verify} gives each component's "
                "level on this product; patch.toml [wmi-product])"
            ),
            ("patch-state",),
        ),
        PlannedStep(
            "back-in-service",
            "restore the start-up types, start the services that ran before, wait until they run",
            ("patch-set-startup", "start", "patch-state"),
        ),
    )
    chosen: tuple[PlannedStep, ...] = steps
    if in_pool:
        restore = PlannedStep(
            "restore",
            "put back the start-up types this run changed (the pool method brings the server back)",
            ("patch-state", "patch-set-startup"),
        )
        kept = [s for s in steps if s.name not in ("out-of-service", "back-in-service")]
        chosen = (*kept, restore)
    return PatchPlan(
        host=host,
        product=product.id,
        installer_path=path,
        arguments=spec.switches,
        verify=spec.verify,
        hold=spec.hold,
        options=options,
        steps=chosen,
        in_pool=in_pool,
    )
