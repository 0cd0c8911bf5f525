"""The LcsCmd facts a deactivation plan is built from: the catalog's roles.toml, then the config file.

What the administration guide does not document (the context names LcsCmd takes for most roles, where
LCSCmd.exe lives on OCS 2007 R2, the layout of its logs) is data with the best-known values, which an
administrator can correct in the config file's ``[lcscmd]`` table. The table is checked when the config
file is read, so a typo surfaces once, with the file and table named, not in a maintenance window.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ocsps.catalog import Catalog, CatalogError, Role, lcscmd_data, load_catalog
from ocsps.errors import UsageError

__all__ = ["LcsCmdFacts", "RoleCommand", "check_lcscmd_overrides", "load_lcscmd_facts"]

_ROLE_PLACEHOLDERS = frozenset({"fqdn", "components"})
_STATE_PLACEHOLDERS = frozenset({"fqdn", "check_role"})
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_TEXT_KEYS = ("path", "log_directory", "log_prefix")
# PowerShell 2.0 passes an argument holding a double quote to a native program split at the quote, so
# such an argument would not reach LcsCmd as the one token a plan shows and a change board approves.
_NATIVE_UNSAFE = '"'

_LIST_KEYS = (
    "extra_args",
    "state_args",
    "check_roles",
    "activated_results",
    "not_activated_results",
)
_ROLE_KEYS = ("args", "state_names")


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


def _strings(value: object, where: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected an array of strings")
    if not allow_empty and not value:
        raise UsageError(f"{where}: must not be empty")
    if any(not v.strip() for v in value):
        raise UsageError(f"{where}: contains an empty string")
    return tuple(value)


def _check_native(token: str, where: str) -> None:
    if _NATIVE_UNSAFE in token:
        raise UsageError(
            f"{where}: {token!r} holds a double quote; PowerShell 2.0 splits such an argument when it "
            "passes it to LCSCmd.exe, so it would not run as the plan shows it"
        )


def _check_placeholders(tokens: Iterable[str], allowed: frozenset[str], where: str) -> None:
    for token in tokens:
        for name in _PLACEHOLDER_RE.findall(token):
            if name not in allowed:
                raise UsageError(
                    f"{where}: unknown placeholder {{{name}}}; valid: "
                    + ", ".join("{" + a + "}" for a in sorted(allowed))
                )


def check_lcscmd_overrides(table: object, where: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """Check the config file's ``[lcscmd]`` table and return it normalised (arrays become tuples).

    Called when the config file is loaded, so that a typo in a role key or a placeholder is reported
    once, with the file and table, instead of surfacing in the middle of a maintenance window.
    """
    from ocsps.powershell.quote import check_value

    if not isinstance(table, dict):
        raise UsageError(f"{where}: expected a table")
    cat = catalog or load_catalog()
    valid = (*_TEXT_KEYS, *_LIST_KEYS, "roles")
    result: dict[str, Any] = {}
    for key, value in table.items():
        at = f"{where} {key}"
        if key in _TEXT_KEYS:
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{at}: expected a non-empty string")
            result[key] = check_value(value, what=at)
        elif key in _LIST_KEYS:
            items = _strings(value, at, allow_empty=key == "extra_args")
            for item in items:
                check_value(item, what=at)
                if key in ("extra_args", "state_args"):
                    _check_native(item, at)
            if key == "state_args":
                _check_placeholders(items, _STATE_PLACEHOLDERS, at)
            result[key] = items
        elif key == "roles":
            result[key] = _check_role_overrides(value, f"{where}.roles", cat)
        else:
            raise UsageError(f"{where}: unknown key {key!r}; valid keys: {', '.join(valid)}")
    return result


def _check_role_overrides(value: object, where: str, cat: Catalog) -> dict[str, dict[str, tuple[str, ...]]]:
    from ocsps.powershell.quote import check_value

    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a table of roles")
    roles: dict[str, dict[str, tuple[str, ...]]] = {}
    for role_key, spec in value.items():
        at = f"{where}.{role_key}"
        if role_key not in cat.roles:
            raise UsageError(f"{at}: unknown role; valid roles: {', '.join(cat.roles)}")
        if not isinstance(spec, dict):
            raise UsageError(f"{at}: expected a table (args = [...], state_names = [...])")
        checked: dict[str, tuple[str, ...]] = {}
        for key, items in spec.items():
            if key not in _ROLE_KEYS:
                raise UsageError(f"{at}: unknown key {key!r}; valid keys: {', '.join(_ROLE_KEYS)}")
            tokens = _strings(items, f"{at} {key}", allow_empty=False)
            for token in tokens:
                check_value(token, what=f"{at} {key}")
                if key == "args":
                    _check_native(token, f"{at} args")
            if key == "args":
                _check_placeholders(tokens, _ROLE_PLACEHOLDERS, f"{at} args")
            checked[key] = tokens
        roles[role_key] = checked
    return roles


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
    checked = check_lcscmd_overrides(dict(overrides or {}), "[lcscmd]", cat) if overrides else {}
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
