"""Render a catalog action into the PowerShell script that runs remotely.

A rendered script is a ``param()`` block plus a body. Run remotely, values are bound as PSRP parameters
and never appear in the text; written for a change board (``ocsps.powershell.changeboard``) the very
same body gets quoted defaults and a header carrying the body's sha256, so what the board approves is
what runs.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2

from ocsps.catalog import Action, ActionParam, Catalog, Product, load_catalog
from ocsps.errors import UsageError
from ocsps.powershell.quote import check_value, quote_literal

ParamValue = str | int | bool | tuple[str, ...]

CMDLET_BINDING = "[CmdletBinding(SupportsShouldProcess=$true)]"


def templates_dir() -> Path:
    """Installed wheels carry the templates inside the package; a source checkout keeps them at the top."""
    packaged = Path(__file__).resolve().parents[1] / "_templates" / "ps1"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates" / "ps1"


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Compiled templates in the user cache, so a command does not recompile them on every run.

    jinja keys each entry by the template's name and path and checks a digest of its source before use, so
    an edited template compiles afresh. A cache that cannot be read or written only costs the compilation.
    """

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache(env: jinja2.Environment) -> jinja2.BytecodeCache | None:
    """A cache directory per jinja version and per option that shapes the compiled code.

    jinja's own key is the template's name, path and source only, not the lexer options (trim_blocks,
    delimiters, ...) compiled into the code: those go into the directory name.
    """
    from ocsps.cache import cache_dir

    options = (
        jinja2.__version__,
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        sorted(env.extensions),
        env.autoescape if isinstance(env.autoescape, bool) else getattr(env.autoescape, "__qualname__", "?"),
        env.optimized,
        env.undefined.__qualname__,
    )
    tag = hashlib.sha256(repr(options).encode()).hexdigest()[:16]
    try:
        directory = cache_dir()
        if directory is None:
            return None
        compiled = directory / f"templates-{tag}"
        compiled.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, ValueError):
        return None
    return _CompiledTemplates(str(compiled), "%s.cache")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ps"] = quote_literal
    env.bytecode_cache = _bytecode_cache(env)
    return env


def render_template(name: str, **context: object) -> str:
    return _environment().get_template(name).render(**context)


def render_module_import(product: Product) -> str:
    """The snippet that makes the product's cmdlets available; run once per runspace pool."""
    return render_template("module-import.ps1.j2", product=product)


@dataclass(frozen=True)
class RenderedScript:
    action: str
    product: Product
    params: tuple[ActionParam, ...]
    body: str
    values: Mapping[str, ParamValue] = field(default_factory=dict)
    changes_state: bool = False

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()

    def param_block(self, defaults: Mapping[str, str] | None = None) -> str:
        """The script's ``param()`` block; ``defaults`` maps names to already-quoted PowerShell literals."""
        lines = []
        for p in self.params:
            default = (defaults or {}).get(p.name)
            lines.append(f"    {p.ps_type}${p.name}" + (f" = {default}" if default is not None else ""))
        return "param(\n" + ",\n".join(lines) + "\n)\n" if lines else "param()\n"

    @property
    def script(self) -> str:
        """What is sent with ``add_script``: binding attribute, param block, body. No values inside."""
        return f"{CMDLET_BINDING}\n{self.param_block()}{self.body}"

    @property
    def bound_parameters(self) -> dict[str, object]:
        """Values to bind with ``add_parameter``; switches that are off are simply not passed."""
        bound: dict[str, object] = {}
        for p in self.params:
            if p.name not in self.values:
                continue
            value = self.values[p.name]
            if p.type == "switch":
                if value:
                    bound[p.name] = True
            elif p.type == "strings":
                bound[p.name] = list(value) if isinstance(value, tuple) else [value]
            else:
                bound[p.name] = value
        return bound


def _coerce(action: Action, param: ActionParam, value: object) -> ParamValue:
    where = f"{action.name} parameter {param.name}"
    if param.type == "switch":
        if not isinstance(value, bool):
            raise UsageError(f"{where} is a switch: pass true or false")
        return value
    if param.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where} must be a whole number")
        return value
    if param.type == "strings":
        items = (
            [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else None
        )
        if items is None or not all(isinstance(i, str) for i in items):
            raise UsageError(f"{where} must be a list of text values")
        return tuple(check_value(str(i), what=where) for i in items)
    if not isinstance(value, str):
        raise UsageError(f"{where} must be text")
    return check_value(value, what=where)


def render_action(
    action_name: str,
    product: Product | str,
    values: Mapping[str, object] | None = None,
    *,
    catalog: Catalog | None = None,
) -> RenderedScript:
    """Render ``action_name`` for ``product``, validating ``values`` against the action's parameters."""
    cat = catalog or load_catalog()
    prod = cat.product(product) if isinstance(product, str) else product
    action = cat.action(action_name)
    template = cat.template_for(action.name, prod)
    params = cat.action_params(action, prod)
    fixed = action.fixed.get(prod.service_control, {})
    all_params = params + [
        ActionParam(name=name, type="string", help="fixed by the action") for name in fixed
    ]
    by_name = {p.name.casefold(): p for p in all_params}
    given = dict(values or {})
    coerced: dict[str, ParamValue] = {}
    for name, value in given.items():
        param = by_name.get(name.casefold())
        if param is None or param.name in fixed:
            valid = ", ".join(p.name for p in params) or "none"
            raise UsageError(f"{action.name} on {prod.id} takes no parameter {name!r}; valid: {valid}")
        if value is None:
            continue
        coerced[param.name] = _coerce(action, param, value)
    for p in params:
        if p.required and p.name not in coerced:
            raise UsageError(
                f"{action.name} on {prod.id} needs parameter {p.name} ({p.help})",
                hint=f"give it on the command line as --param {p.name}=VALUE",
            )
    coerced.update(fixed)
    body = render_template(
        template,
        action=action.name,
        product=prod,
        catalog=cat,
        has_leave_switches=any(p.name == "LeaveClsAgentRunning" for p in params),
    )
    return RenderedScript(
        action=action.name,
        product=prod,
        params=tuple(all_params),
        body=body.lstrip("\n"),
        values=coerced,
        changes_state=action.changes_state,
    )


def actions_for(product: Product, catalog: Catalog | None = None) -> Sequence[str]:
    cat = catalog or load_catalog()
    return [a.name for a in cat.actions.values() if cat.supports(a, product)]
