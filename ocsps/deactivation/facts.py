"""The LcsCmd facts a deactivation plan is built from: the catalog's roles.toml, then the config file.

What the administration guide does not document (the context names LcsCmd takes for most roles, where
LCSCmd.exe lives on OCS 2007 R2, the layout of its logs) is data with the best-known values, which an
administrator can correct in the config file's ``[lcscmd]`` table. The table is checked when the config
file is read, so a typo surfaces once, with the file and table named, not in a maintenance window.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from ocsps.catalog import Catalog, CatalogError, Role, lcscmd_data, load_catalog
from ocsps.errors import UsageError
from ocsps.shapes import FieldError, convert, join_path

__all__ = ["LcsCmdFacts", "RoleCommand", "check_lcscmd_overrides", "load_lcscmd_facts"]

_ROLE_PLACEHOLDERS = frozenset({"fqdn", "components"})
_STATE_PLACEHOLDERS = frozenset({"fqdn", "check_role"})
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
# PowerShell 2.0 passes an argument holding a double quote to a native program split at the quote, so
# such an argument would not reach LcsCmd as the one token a plan shows and a change board approves.
_NATIVE_UNSAFE = '"'


@dataclass(frozen=True)
class RoleCommand:
    """How LcsCmd deactivates one role: argument tokens with ``{fqdn}`` / ``{components}`` placeholders."""

    role: str
    args: tuple[str, ...]
    source: str  # "catalog" or "config"
    documented: bool
    state_names: tuple[str, ...]


@dataclass(frozen=True)
class LcsCmdFacts:
    """The catalog's LcsCmd data merged with the config file's ``[lcscmd]`` overrides."""

    path: str
    log_directory: str
    log_prefix: str
    extra_args: tuple[str, ...]
    state_args: tuple[str, ...]
    check_roles: tuple[str, ...]
    activated_results: tuple[str, ...]
    not_activated_results: tuple[str, ...]
    commands: Mapping[str, RoleCommand]
    group_order: Mapping[str, int]
    group_conflicts: Mapping[str, tuple[str, ...]]
    pool_of_one: frozenset[str]
    overridden: tuple[str, ...] = ()
    # Where LCSCmd.exe is looked for at run time, ``path`` first (one entry when the config names it).
    locations: tuple[str, ...] = ()
    # Edge components and the catalog services that show each one is present on a computer.
    component_services: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def role_arguments(self, role: Role, computer: str, components: Sequence[str] = ()) -> tuple[str, ...]:
        """The deactivation arguments for ``role`` on ``computer``, common switches appended."""
        chosen = ",".join(components or role.components)
        filled = tuple(
            token.replace("{fqdn}", computer).replace("{components}", chosen)
            for token in self.commands[role.key].args
        )
        return filled + self.extra_args

    def state_arguments(self, computer: str, check_role: str) -> tuple[str, ...]:
        if check_role.casefold() not in {r.casefold() for r in self.check_roles}:
            raise UsageError(
                f"unknown LcsCmd server role {check_role!r} for the state check; choose one of: "
                + ", ".join(self.check_roles)
            )
        return tuple(
            token.replace("{fqdn}", computer).replace("{check_role}", check_role) for token in self.state_args
        )


def _check_tokens(
    key: str,
    tokens: Sequence[str],
    *,
    empty: bool = True,
    native: bool = False,
    allowed: frozenset[str] | None = None,
) -> None:
    """LcsCmd argument tokens from the config file: each safe in a script, none blank; ``native`` ones
    (passed to LCSCmd.exe as they are) without a double quote; placeholders among ``allowed``."""
    from ocsps.powershell.quote import check_value

    if not empty and not tokens:
        raise FieldError(key, "must not be empty")
    for token in tokens:
        if not token.strip():
            raise FieldError(key, "contains an empty string")
        try:
            check_value(token, what=key)
        except UsageError as exc:
            raise FieldError(key, exc.message.removeprefix(f"{key} ")) from None
        if native and _NATIVE_UNSAFE in token:
            raise FieldError(
                key,
                f"{token!r} holds a double quote; PowerShell 2.0 splits such an argument when it "
                "passes it to LCSCmd.exe, so it would not run as the plan shows it",
            )
        for name in _PLACEHOLDER_RE.findall(token):
            if allowed is not None and name not in allowed:
                valid = ", ".join("{" + a + "}" for a in sorted(allowed))
                raise FieldError(key, f"unknown placeholder {{{name}}}; valid: {valid}")


class _RoleOverride(msgspec.Struct, forbid_unknown_fields=True):
    """``[lcscmd.roles.<role>]``: the deactivation arguments and the state names of one role."""

    args: tuple[str, ...] | UnsetType = UNSET
    state_names: tuple[str, ...] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.args is not UNSET:
            _check_tokens("args", self.args, empty=False, native=True, allowed=_ROLE_PLACEHOLDERS)
        if self.state_names is not UNSET:
            _check_tokens("state_names", self.state_names, empty=False)


class _LcsCmdTable(msgspec.Struct, forbid_unknown_fields=True):
    """The config file's ``[lcscmd]`` table; every key optional, a given one replaces the catalog's."""

    path: str | UnsetType = UNSET
    log_directory: str | UnsetType = UNSET
    log_prefix: str | UnsetType = UNSET
    extra_args: tuple[str, ...] | UnsetType = UNSET
    state_args: tuple[str, ...] | UnsetType = UNSET
    check_roles: tuple[str, ...] | UnsetType = UNSET
    activated_results: tuple[str, ...] | UnsetType = UNSET
    not_activated_results: tuple[str, ...] | UnsetType = UNSET
    roles: dict[str, _RoleOverride] | UnsetType = UNSET

    def __post_init__(self) -> None:
        for key in ("path", "log_directory", "log_prefix"):
            value = getattr(self, key)
            if value is not UNSET:
                if not value.strip():
                    raise FieldError(key, "must not be empty")
                _check_tokens(key, (value,))
        for key in ("extra_args", "state_args", "check_roles", "activated_results", "not_activated_results"):
            tokens = getattr(self, key)
            if tokens is not UNSET:
                placeholders = _STATE_PLACEHOLDERS if key == "state_args" else None
                native = key in ("extra_args", "state_args")
                _check_tokens(key, tokens, empty=key == "extra_args", native=native, allowed=placeholders)


def check_lcscmd_overrides(table: object, where: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """Check the config file's ``[lcscmd]`` table and return the keys it sets (arrays become tuples).

    Called when the config file is loaded, so that a typo in a role key or a placeholder is reported
    once, with the file and table, instead of surfacing in the middle of a maintenance window. ``where``
    is the table's dotted path in messages (``config.toml: lcscmd``).
    """
    shape = convert(table, _LcsCmdTable, path=where)
    result: dict[str, Any] = {
        key: getattr(shape, key) for key in shape.__struct_fields__ if getattr(shape, key) is not UNSET
    }
    if shape.roles is not UNSET:
        cat = catalog or load_catalog()
        for role_key in shape.roles:
            if role_key not in cat.roles:
                at = join_path(where, "roles", role_key)
                raise UsageError(f"{at}: unknown role; valid roles: {', '.join(cat.roles)}")
        result["roles"] = {
            role: {k: getattr(o, k) for k in o.__struct_fields__ if getattr(o, k) is not UNSET}
            for role, o in shape.roles.items()
        }
    return result


def load_lcscmd_facts(
    catalog: Catalog | None = None, overrides: Mapping[str, Any] | None = None
) -> LcsCmdFacts:
    """The facts a plan is built from: packaged data, then the config file's ``[lcscmd]`` table on top."""
    cat = catalog or load_catalog()
    raw = lcscmd_data()
    table: dict[str, Any] = dict(raw.get("lcscmd", {}))
    table["path"] = cat.lcscmd_path
    known_locations = tuple(str(p) for p in table.pop("locations", ()) or (cat.lcscmd_path,))
    if known_locations[0] != cat.lcscmd_path:
        raise CatalogError("roles.toml: [lcscmd] locations must start with lcscmd_path")
    checked = check_lcscmd_overrides(dict(overrides or {}), "lcscmd", cat) if overrides else {}
    overridden = [k for k in checked if k != "roles"]
    merged = {**table, **checked}
    role_extras = {r["key"]: r for r in raw.get("roles", [])}
    role_overrides: Mapping[str, Mapping[str, tuple[str, ...]]] = checked.get("roles", {})
    commands: dict[str, RoleCommand] = {}
    for role in cat.roles.values():
        extra = role_extras.get(role.key, {})
        override = role_overrides.get(role.key, {})
        args = override.get("args", role.lcscmd)
        bad = {n for t in role.lcscmd for n in _PLACEHOLDER_RE.findall(t)} - _ROLE_PLACEHOLDERS
        if bad:  # packaged data failing the config file's check is a bug in ocsps, not the user's input
            raise CatalogError(f"roles.toml: role {role.key} uses unknown placeholders {sorted(bad)}")
        commands[role.key] = RoleCommand(
            role=role.key,
            args=tuple(args),
            source="config" if "args" in override else "catalog",
            documented=role.documented and "args" not in override,
            state_names=tuple(override.get("state_names", extra.get("state_names", [role.label]))),
        )
        overridden += [f"roles.{role.key}.{k}" for k in override]
    groups = raw.get("groups", {})
    order = {k: v.get("order") for k, v in groups.items()}
    conflicts = {k: tuple(v.get("conflicts", ())) for k, v in groups.items()}
    problems = [f"group {k} has no integer order" for k, v in order.items() if not isinstance(v, int)]
    problems += [
        f"group {k} conflicts with unknown group {c}"
        for k, cs in conflicts.items()
        for c in cs
        if c not in groups
    ]
    if problems:
        raise CatalogError("roles.toml is inconsistent: " + "; ".join(problems))
    return LcsCmdFacts(
        path=str(merged["path"]),
        log_directory=str(merged["log_directory"]),
        log_prefix=str(merged["log_prefix"]),
        extra_args=tuple(merged.get("extra_args", ())),
        state_args=tuple(merged["state_args"]),
        check_roles=tuple(merged["check_roles"]),
        activated_results=tuple(merged["activated_results"]),
        not_activated_results=tuple(merged.get("not_activated_results", ())),
        commands=commands,
        group_order={k: int(v) for k, v in order.items() if isinstance(v, int)},
        group_conflicts=conflicts,
        pool_of_one=frozenset(k for k, r in role_extras.items() if r.get("pool_of_one")),
        overridden=tuple(overridden),
        locations=(str(merged["path"]),) if "path" in checked else known_locations,
        component_services={
            str(c): tuple(str(s) for s in keys)
            for r in role_extras.values()
            for c, keys in dict(r.get("component_services", {})).items()
        },
    )
