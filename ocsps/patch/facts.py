"""Patching facts from ``ocsps/catalog/data/patch.toml``, loaded and checked once.

Installer names, switches, exit codes and the pending-reboot flags are facts an administrator may need to
correct for a given cumulative update; in data, a correction is reviewed as data and a typo fails at load
time, before any server is touched.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ocsps.catalog import CatalogError, load_catalog
from ocsps.durations import parse_duration
from ocsps.errors import UsageError

__all__ = [
    "PatchDefaults",
    "PatchFacts",
    "ProductPatch",
    "RebootFlag",
    "load_patch_facts",
    "parse_patch_facts",
]

VERIFY_METHODS = ("Get-CsServerPatchVersion", "Win32_Product", "none")
VERIFY_CMDLET = {"Get-CsServerPatchVersion": "Get-CsServerPatchVersion", "Win32_Product": "Get-WmiObject"}
HOLD_CHOICES = ("product-services", "none")


@dataclass(frozen=True)
class PatchDefaults:
    install_timeout: float
    reboot_timeout: float
    drain_timeout: float
    restore_timeout: float
    service_poll: float
    reconnect_first: float
    reconnect_max: float
    min_free_gb: float


@dataclass(frozen=True)
class RebootFlag:
    """One place Windows records that a restart is pending."""

    name: str
    path: str
    kind: str  # "key": the key exists; "value": the value exists under the key
    value: str = ""


@dataclass(frozen=True)
class ProductPatch:
    product: str
    installer: str
    switches: tuple[str, ...]
    verify: str
    hold: str
    sources: tuple[str, ...]
    verify_filter: str = ""  # Win32_Product: the product names that are components (-like pattern)
    verify_confirmed: bool = True  # False: the way the level is read is not confirmed by a Microsoft page

    @property
    def verifiable(self) -> bool:
        return self.verify != "none"


@dataclass(frozen=True)
class PatchFacts:
    defaults: PatchDefaults
    success_codes: frozenset[int]
    reboot_codes: frozenset[int]
    reboot_flags: tuple[RebootFlag, ...]
    products: Mapping[str, ProductPatch]
    database_products: frozenset[str] = frozenset()

    def for_product(self, product_id: str) -> ProductPatch:
        found = self.products.get(product_id)
        if found is None:
            raise UsageError(
                f"ocsps does not patch {product_id}: patch.toml names no update installer for it",
                hint=f"products it patches: {', '.join(self.products)}",
            )
        return found

    def exit_meaning(self, code: int) -> str:
        """'success', 'reboot-required' or 'failure': the installer's exit code in words."""
        if code in self.success_codes:
            return "success"
        if code in self.reboot_codes:
            return "reboot-required"
        return "failure"


def _duration(table: Mapping[str, Any], key: str, where: str) -> float:
    try:
        return parse_duration(str(table[key]))
    except KeyError:
        raise CatalogError(f"{where}: missing {key}") from None
    except UsageError as exc:
        raise CatalogError(f"{where}.{key}: {exc.message}") from None


def parse_patch_facts(raw: Mapping[str, Any], *, source: str = "patch.toml") -> PatchFacts:
    """Build and check the facts; every problem names the file and the key."""
    d = raw.get("defaults", {})
    where = f"{source} [defaults]"
    free = d.get("min_free_gb")
    if isinstance(free, bool) or not isinstance(free, int | float) or free < 0:
        raise CatalogError(f"{where}.min_free_gb: expected a non-negative number")
    defaults = PatchDefaults(
        install_timeout=_duration(d, "install_timeout", where),
        reboot_timeout=_duration(d, "reboot_timeout", where),
        drain_timeout=_duration(d, "drain_timeout", where),
        restore_timeout=_duration(d, "restore_timeout", where),
        service_poll=_duration(d, "service_poll", where),
        reconnect_first=_duration(d, "reconnect_first", where),
        reconnect_max=_duration(d, "reconnect_max", where),
        min_free_gb=float(free),
    )
    codes = raw.get("exit_codes", {})
    success = frozenset(int(c) for c in codes.get("success", []))
    reboot = frozenset(int(c) for c in codes.get("reboot_required", []))
    if not success or not reboot or success & reboot:
        raise CatalogError(f"{source} [exit_codes]: success and reboot_required must be distinct, non-empty")
    flags = []
    for index, entry in enumerate(raw.get("pending_reboot", {}).get("flags", []), 1):
        kind = entry.get("kind")
        if kind not in ("key", "value") or not entry.get("path") or not entry.get("name"):
            raise CatalogError(f"{source} pending_reboot flag #{index}: needs name, path and kind key|value")
        if kind == "value" and not entry.get("value"):
            raise CatalogError(f"{source} pending_reboot flag #{index}: kind value needs value")
        flags.append(
            RebootFlag(str(entry["name"]), str(entry["path"]), str(kind), str(entry.get("value", "")))
        )
    catalog = load_catalog()
    cited = {
        "review",
        "patch-version",
        "cu-procedure",
        "msi-codes",
        "reboot-keys",
        "kb-2809243",
        "wmi-product",
    }
    products: dict[str, ProductPatch] = {}
    for pid, spec in raw.get("products", {}).items():
        at = f"{source} [products.{pid}]"
        if pid not in catalog.products:
            raise CatalogError(f"{at}: unknown product")
        if catalog.products[pid].service_control != "cs":
            raise CatalogError(f"{at}: only Lync / Skype for Business servers have an update installer here")
        verify = str(spec.get("verify", ""))
        if verify not in VERIFY_METHODS:
            raise CatalogError(f"{at}.verify: one of {', '.join(VERIFY_METHODS)}")
        reader = VERIFY_CMDLET.get(verify, "")
        if reader and catalog.cmdlet_parameters(catalog.products[pid], reader) is None:
            raise CatalogError(f"{at}.verify: cmdlets.toml has no {reader} for {pid}")
        verify_filter = str(spec.get("verify_filter", ""))
        if (verify == "Win32_Product") != bool(verify_filter):
            raise CatalogError(f"{at}.verify_filter: a -like pattern with verify Win32_Product, only then")
        confirmed = spec.get("verify_confirmed", True)
        if not isinstance(confirmed, bool):
            raise CatalogError(f"{at}.verify_confirmed: true or false")
        hold = str(spec.get("hold", ""))
        if hold not in HOLD_CHOICES:
            raise CatalogError(f"{at}.hold: one of {', '.join(HOLD_CHOICES)}")
        installer = str(spec.get("installer", ""))
        if not installer.lower().endswith(".exe"):
            raise CatalogError(f"{at}.installer: expected an .exe file name")
        sources = tuple(str(s) for s in spec.get("sources", []))
        if not sources or set(sources) - cited:
            raise CatalogError(f"{at}.sources: cite one or more of {', '.join(sorted(cited))}")
        products[pid] = ProductPatch(
            pid,
            installer,
            tuple(str(s) for s in spec.get("switches", [])),
            verify,
            hold,
            sources,
            verify_filter,
            confirmed,
        )
    db = raw.get("database", {})
    if "products" in db:
        raise CatalogError(
            f"{source} [database].products: the products come from actions.toml patch-database"
        )
    # One fact: the products that can run the patch-database action (actions.toml) are those updated.
    db_action = catalog.actions.get("patch-database")
    db_products = frozenset(
        pid for pid, product in catalog.products.items() if db_action and catalog.supports(db_action, product)
    )
    for pid in sorted(db_products):
        for cmdlet in ("Test-CsDatabase", "Install-CsDatabase"):
            if catalog.cmdlet_parameters(catalog.products[pid], cmdlet) is None:
                raise CatalogError(f"{source} [database]: cmdlets.toml has no {cmdlet} for {pid}")
    if db_products and (not db.get("sources") or set(db["sources"]) - cited):
        raise CatalogError(f"{source} [database].sources: cite one or more of {', '.join(sorted(cited))}")
    return PatchFacts(defaults, success, reboot, tuple(flags), products, db_products)


@cache
def load_patch_facts() -> PatchFacts:
    text = resources.files("ocsps.catalog").joinpath("data", "patch.toml").read_text(encoding="utf-8")
    return parse_patch_facts(tomllib.loads(text))
