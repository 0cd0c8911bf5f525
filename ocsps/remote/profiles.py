"""The ocsps config file: named connection profiles, so that nobody retypes a pool's settings at 2 a.m.

Location
    ``<user config dir>/ocsps/config.toml`` (platformdirs: ``~/.config/ocsps/config.toml`` on Linux,
    ``%LOCALAPPDATA%\\ocsps\\config.toml`` on Windows, ``~/Library/Application Support/ocsps/config.toml`` on
    macOS), or the file named by ``OCSPS_CONFIG``. A missing default file is fine (no profiles); a missing
    ``OCSPS_CONFIG`` file is an error, because someone asked for it explicitly.

Schema (TOML)
    Two top-level tables, both optional::

        [default]              # applies to every profile and to runs without a profile
        auth = "kerberos"

        [profiles.NAME]        # selected with --profile NAME or OCSPS_PROFILE=NAME
        host = "fe01.contoso.com"

    A third optional table, ``[lcscmd]``, corrects the undocumented LcsCmd facts role deactivation uses
    (``path``, ``log_directory``, ``extra_args``, ``state_args`` ... and ``[lcscmd.roles.<role>]
    args = [...]``); ``ocsps.deactivation.plan.check_lcscmd_overrides`` lists and checks its keys.

    Keys allowed in both tables (types are TOML types; see ``ocsps.remote.settings.OPTIONS``):

    =====================  ========  ==================================================================
    host                   string    server FQDN (DNS name, IPv4 or IPv6)
    connect_address        string    address actually dialled when it differs from host
    expect_computer        string    computer name the server reports, when it differs from host
    port                   integer   1-65535; default 5986 with ssl, 5985 without
    ssl                    boolean   https (default true)
    path                   string    listener URL path (default "wsman")
    auth                   string    negotiate | kerberos | ntlm | credssp | basic | certificate
    username               string    DOMAIN\\user or user@domain
    verify                 boolean   false disables certificate validation (the CLI warns)
    ca_bundle              string    PEM file of CA certificates
    certificate_pem        string    client certificate (auth certificate)
    certificate_key_pem    string    client certificate key (auth certificate)
    encryption             string    auto | always | never
    connection_timeout     number    seconds
    read_timeout           number    seconds, greater than operation_timeout
    operation_timeout      number    seconds
    proxy                  string    proxy URL without credentials
    no_proxy               boolean   ignore proxy environment variables
    configuration_name     string    PowerShell session configuration (JEA endpoint)
    negotiate_service      string    Kerberos SPN service class (default "WSMAN")
    negotiate_delegate     boolean   Kerberos: delegate the credential for second-hop work
    product                string    ocs2007 | ocs2007r2 | lync2010 | lync2013 | sfb2015 | sfb2019
    =====================  ========  ==================================================================

    ``password`` is refused everywhere: a password in a file is readable by anyone who can read the file and
    ends up in backups. Use ``OCSPS_PASSWORD`` or the interactive prompt. Relative file paths (``ca_bundle``,
    ``certificate_pem``, ``certificate_key_pem``) are relative to the config file's directory, and ``~`` is
    expanded, so that a profile works from any working directory.

Every value is checked when the file is loaded, in every profile, so that a typo is reported once with the
file, table and key, instead of surfacing as a connection failure on the night the profile is first used.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec
from msgspec import UNSET, UnsetType

from ocsps.errors import UsageError
from ocsps.remote.settings import (
    ENV_CONFIG,
    ENV_PASSWORD,
    ENV_PROFILE,
    OPTION_TYPES,
    OPTIONS,
    PATH_OPTIONS,
    ConnectionSettings,
    Layer,
    Options,
    Secret,
    check_option,
    parse_option_text,
    show,
)
from ocsps.shapes import convert, join_path

__all__ = [
    "CONFIG_FILE_NAME",
    "ConfigFile",
    "config_path",
    "default_config_text",
    "find_config",
    "load_config",
    "parse_config",
    "write_default_config",
]

APP_NAME: Final = "ocsps"
CONFIG_FILE_NAME: Final = "config.toml"
DEFAULT_TABLE: Final = "default"
PROFILES_TABLE: Final = "profiles"
LCSCMD_TABLE: Final = "lcscmd"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)


@dataclass(frozen=True)
class ConfigFile:
    """A loaded, checked config file: the ``[default]`` table and the named profiles, values normalised."""

    source: str
    default: Mapping[str, object]
    profiles: Mapping[str, Mapping[str, object]]
    # [lcscmd]: overrides of the catalog's undocumented LcsCmd facts (see ocsps.deactivation.plan).
    lcscmd: Mapping[str, object] = field(default_factory=dict)

    @property
    def profile_names(self) -> tuple[str, ...]:
        """Profile names in file order, for ``ocsps config show`` and error messages."""
        return tuple(self.profiles)

    def _table_label(self, table: str) -> str:
        return f"{self.source} [{table}]"

    def layers(self, profile: str | None) -> list[Layer]:
        """The sources this file contributes to ``resolve_settings``, highest precedence first.

        ``None`` or ``"default"`` select the ``[default]`` table alone; any other name must exist.
        """
        result: list[Layer] = []
        if profile is not None and profile != DEFAULT_TABLE:
            if profile not in self.profiles:
                known = ", ".join(self.profiles) or "none"
                raise UsageError(f"{self.source}: no profile {show(profile)} (profiles: {known})")
            label = self._table_label(f"{PROFILES_TABLE}.{profile}")
            result.append((label, self.profiles[profile], _key_label(label)))
        label = self._table_label(DEFAULT_TABLE)
        result.append((label, self.default, _key_label(label)))
        return result

    def values(self, profile: str | None) -> dict[str, object]:
        """The profile's values over the ``[default]`` table, as the file alone would set them."""
        merged: dict[str, object] = {}
        for _, values, _ in reversed(self.layers(profile)):
            merged.update(values)
        return merged


def _key_label(table_label: str) -> Callable[[str], str]:
    def label(key: str) -> str:
        return f"{table_label} {key}"

    return label


class _ConfigShape(msgspec.Struct, forbid_unknown_fields=True):
    """The file as msgspec reads it: unknown tables and keys are refused with their dotted path."""

    default: Options = msgspec.field(default_factory=Options)
    profiles: dict[str, Options] = msgspec.field(default_factory=dict)
    lcscmd: dict[str, object] | UnsetType = UNSET


def _anchored(values: dict[str, object], base_dir: Path | None) -> dict[str, object]:
    """File options with ``~`` expanded and relative paths anchored at the config file's directory."""
    for key in PATH_OPTIONS & values.keys():
        path = Path(str(values[key])).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        values[key] = str(path)
    return values


def _refuse_misplaced(source: str, data: dict[str, object]) -> None:
    """The mistakes a bare "unknown key" would explain badly: a password, an option outside any table,
    a profile name that cannot be selected."""
    for key in data:
        if key in OPTIONS or key == "password":
            raise UsageError(f"{source}: {key}: belongs inside [default] or [profiles.NAME]")
    profiles = data.get(PROFILES_TABLE)
    tables = {DEFAULT_TABLE: data.get(DEFAULT_TABLE)}
    if isinstance(profiles, dict):
        tables.update((join_path(PROFILES_TABLE, name), table) for name, table in profiles.items())
        for name in profiles:
            if name == DEFAULT_TABLE:
                raise UsageError(f"{source}: profiles.default is ambiguous; put shared values in [default]")
            if not _PROFILE_NAME.fullmatch(name):
                raise UsageError(
                    f"{source}: profile name {show(name)} is not valid "
                    "(letters, digits, '.', '_', '-'; at most 64 characters)"
                )
    for where, table in tables.items():
        if isinstance(table, dict) and "password" in table:
            raise UsageError(
                f"{source}: {where}.password: does not belong in a config file (anyone who can read the "
                "file can read it); set OCSPS_PASSWORD or let ocsps prompt"
            )


def parse_config(text: str, *, source: str, base_dir: Path | None = None) -> ConfigFile:
    """Parse and check config text. ``source`` names the file in messages; ``base_dir`` anchors relative
    paths (``None`` leaves them as written, which is what tests of the text alone want)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{source}: not valid TOML: nested too deeply") from None
    _refuse_misplaced(source, data)
    shape = convert(data, _ConfigShape, path=f"{source}: ")
    default = _anchored(shape.default.values(), base_dir)
    profiles = {name: _anchored(table.values(), base_dir) for name, table in shape.profiles.items()}
    lcscmd: dict[str, object] = {}
    if shape.lcscmd is not UNSET:
        from ocsps.deactivation.plan import check_lcscmd_overrides

        lcscmd = check_lcscmd_overrides(shape.lcscmd, f"{source}: {LCSCMD_TABLE}")
    return ConfigFile(source=source, default=default, profiles=profiles, lcscmd=lcscmd)


def config_path(env: Mapping[str, str]) -> Path:
    """Where the config file is: ``OCSPS_CONFIG`` if set, else the platform's user config directory.

    platformdirs is imported here rather than at module level so that importing ocsps stays cheap.
    """
    explicit = env.get(ENV_CONFIG)
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return platformdirs.user_config_path(APP_NAME, appauthor=False) / CONFIG_FILE_NAME


_mode_warned: set[str] = set()  # one warning per file and process, not one per command step


def load_config(path: str | os.PathLike[str]) -> ConfigFile:
    """Read and check one config file; relative paths inside it are anchored at its directory."""
    from ocsps.localfiles import others_can_read, read_text_bounded

    file = Path(path)
    text = read_text_bounded(file, what="config file", encoding="utf-8-sig")
    if others_can_read(file) and str(file) not in _mode_warned:
        _mode_warned.add(str(file))
        logging.getLogger("ocsps.config").warning(
            "%s can be read by other users; it names hosts, accounts and proxies: chmod 600 it", file
        )
    return parse_config(text, source=str(file), base_dir=file.resolve().parent)


def find_config(env: Mapping[str, str]) -> ConfigFile | None:
    """Load the config file if there is one. A file named by ``OCSPS_CONFIG`` must exist; the default one
    need not (a first run has no config)."""
    path = config_path(env)
    if not path.exists():
        if env.get(ENV_CONFIG):
            raise UsageError(
                f"{ENV_CONFIG} names {path}, which does not exist (create it with `ocsps config init`)"
            )
        return None
    return load_config(path)


def default_config_text() -> str:
    """The commented starter file written by ``ocsps config init``: every key explained, a lab profile."""
    return _DEFAULT_CONFIG_TEXT


def write_default_config(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``default_config_text()`` to ``path``, creating directories; never overwrite without ``force``.

    Overwriting someone's profiles by running ``config init`` twice would lose real work, hence the refusal.
    """
    from ocsps.localfiles import PRIVATE_MODE, check_output_target

    file = Path(path)
    check_output_target(file)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        if force:
            tmp = file.with_name(file.name + ".tmp")
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(_DEFAULT_CONFIG_TEXT)
            os.replace(tmp, file)
            return file
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_MODE)
        handle = os.fdopen(fd, "w", encoding="utf-8")
    except FileExistsError:
        if file.exists():
            raise UsageError(f"{file} already exists; pass --force to overwrite it") from None
        raise UsageError(f"cannot write config file {file}: a parent is not a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot write config file {file}: {exc.strerror or exc}") from None
    with handle:
        handle.write(_DEFAULT_CONFIG_TEXT)
    return file


_DEFAULT_CONFIG_TEXT: Final = """\
# ocsps configuration
#
# Precedence (first wins): command-line options > OCSPS_* environment variables
#                          > the selected [profiles.NAME] > [default] > built-in defaults.
# Select a profile with --profile NAME or OCSPS_PROFILE=NAME.
# Another file can be used with OCSPS_CONFIG=/path/to/config.toml.
#
# Passwords never go in this file: set OCSPS_PASSWORD, or let ocsps prompt for it.
# Relative file paths below are relative to the directory of this file.
# Every key may appear in [default] and in any profile; the values shown are the built-in defaults.

[default]
# host = "fe01.contoso.com"         # server FQDN: the name certificates and Kerberos know it by
# connect_address = "10.0.0.15"     # address actually dialled, if it differs from host (NAT, tunnel, lab)
# expect_computer = "srv7.corp.local" # name the server reports for itself, if not host (alias, NAT)
# port = 5986                       # WinRM port: 5986 for https, 5985 for http unless set
# ssl = true                        # https; false means http, with WinRM message encryption
# path = "wsman"                    # URL path of the WinRM listener
# auth = "negotiate"                # negotiate | kerberos | ntlm | credssp | basic | certificate
# username = 'CONTOSO\\lyncadmin'    # DOMAIN\\user or user@contoso.com; unset = current Kerberos ticket
# verify = true                     # false disables server certificate validation (ocsps warns loudly)
# ca_bundle = "contoso-ca.pem"      # PEM file with the CA certificates that issued the server certificate
# certificate_pem = "client.pem"    # client certificate, for auth = "certificate" only
# certificate_key_pem = "client.key"  # its private key (unencrypted PEM), for auth = "certificate" only
# encryption = "auto"               # auto | always | never; basic auth over http needs "never"
# connection_timeout = 30           # seconds to establish the connection
# operation_timeout = 20            # seconds the server may hold one request before answering
# read_timeout = 30                 # seconds to wait for an answer; must be greater than operation_timeout
# proxy = "http://proxy.contoso.com:8080"  # proxy URL (no credentials in it)
# no_proxy = false                  # true ignores HTTP_PROXY / HTTPS_PROXY from the environment
# configuration_name = "Microsoft.PowerShell"  # PowerShell session configuration; a JEA endpoint name
# negotiate_service = "WSMAN"       # service class of the server's Kerberos SPN (WSMAN/fe01.contoso.com)
# negotiate_delegate = false        # true: delegate the Kerberos ticket (installer on a share, remote SQL)
# product = "sfb2019"               # ocs2007 | ocs2007r2 | lync2010 | lync2013 | sfb2015 | sfb2019
# parallel = 64                     # hosts that status and check read at once (1-256)

# The simulated server of `ocsps lab`, on this machine over plain http with NTLM message encryption.
[profiles.lab]
host = "127.0.0.1"
ssl = false
auth = "ntlm"
username = 'LAB\\admin'
# port = 5985                       # the lab's port, if it does not listen on the default

# A production pool member over https with Kerberos (uncomment and adapt):
# [profiles.fe01]
# host = "fe01.contoso.com"
# auth = "kerberos"
# ca_bundle = "contoso-root-ca.pem"
# product = "sfb2019"
"""


# ------------------------------------------------------------------ merging the sources


def _flag_label(key: str) -> str:
    return "--" + key.replace("_", "-")


def _env_label(key: str) -> str:
    return OPTIONS[key].env


def _flag_layer(flags: Mapping[str, object]) -> dict[str, object]:
    values: dict[str, object] = {}
    for key, raw in flags.items():
        if raw is None:
            continue
        if key == "password":
            raise UsageError(
                "passwords are not taken as options (they would show in the process list and shell "
                f"history): set {ENV_PASSWORD} or let ocsps prompt"
            )
        if key not in OPTIONS:
            raise UsageError(f"unknown connection option {show(key)}; valid options: {', '.join(OPTIONS)}")
        label = _flag_label(key)
        if isinstance(raw, str) and OPTION_TYPES[key] is not str:
            values[key] = parse_option_text(key, raw, label)
        else:
            values[key] = check_option(key, raw, label)
    return values


def _env_layer(env: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for key, option in OPTIONS.items():
        text = env.get(option.env)
        if text:
            values[key] = parse_option_text(key, text, option.env)
    return values


def _cert_validation(layers: list[Layer]) -> bool | str:
    """The first source that says anything about verification decides it as a whole.

    So ``--no-verify`` on the command line beats a ``ca_bundle`` in the profile, and a source that both
    disables verification and names a CA bundle is contradictory and refused.
    """
    for _, values, label in layers:
        verify = values.get("verify")
        bundle = values.get("ca_bundle")
        if verify is False and bundle is not None:
            raise UsageError(
                f"{label('verify')} = false contradicts {label('ca_bundle')}: a CA bundle is only used when "
                "certificates are validated"
            )
        if bundle is not None:
            return str(bundle)
        if verify is not None:
            return bool(verify)
    return True


def resolve_settings(
    flags: Mapping[str, object],
    env: Mapping[str, str] | None = None,
    config: ConfigFile | None = None,
    profile: str | None = None,
    prompt: Callable[[str], str] | None = None,
) -> ConnectionSettings:
    """Merge flags > environment > config profile > config ``[default]`` > built-in defaults.

    Only ``flags`` is required: ``env`` defaults to no environment at all (pass ``os.environ`` to read
    it), ``config`` to no config file, ``prompt`` to none (a missing password is then a usage error).
    For many servers sharing settings, ``ocsps.Connector`` is the shorter way.

    ``flags`` uses the keys of ``OPTIONS``; ``None`` means "not given". ``profile`` (the ``--profile`` flag)
    beats ``OCSPS_PROFILE``; the name ``default`` means the ``[default]`` table alone. The password comes
    only from ``OCSPS_PASSWORD`` or ``prompt``, and ``prompt`` is called only when a password is needed and
    missing, after every other value has been validated (nobody should type a password for a host name
    that is then refused).
    """
    env = {} if env is None else env
    layers: list[Layer] = [
        ("flags", _flag_layer(flags), _flag_label),
        ("environment", _env_layer(env), _env_label),
    ]
    profile_name = profile or env.get(ENV_PROFILE) or None
    if profile_name is not None and config is None:
        origin = "--profile" if profile else ENV_PROFILE
        raise UsageError(
            f"profile {show(profile_name)} was selected by {origin} but no config file was found"
        )
    if config is not None:
        layers.extend(config.layers(profile_name))

    def pick(key: str) -> object:
        for _, values, _label in layers:
            if key in values:
                return values[key]
        return None

    host = pick("host")
    if host is None:
        raise UsageError(
            f"no server given: pass --host, set {OPTIONS['host'].env}, or set host in a config profile"
        )
    kwargs: dict[str, object] = {"host": host, "cert_validation": _cert_validation(layers)}
    for key in OPTIONS:
        if key in ("host", "verify", "ca_bundle"):
            continue
        value = pick(key)
        if value is not None:
            kwargs[key] = value
    settings = ConnectionSettings(**kwargs)  # type: ignore[arg-type]

    if settings.auth == "certificate" or not settings.username:
        return settings
    from_env = env.get(ENV_PASSWORD)
    if from_env:
        return settings.with_(password=Secret(from_env))
    if not settings.needs_password:
        return settings
    if prompt is None:
        raise UsageError(
            f"auth {settings.auth} needs a password for {settings.username}: set {ENV_PASSWORD} "
            "or run interactively",
            host=settings.host,
        )
    try:
        typed = prompt(f"Password for {settings.username} on {settings.host}: ")
    except EOFError:
        raise UsageError("no password given (end of input)", host=settings.host) from None
    if not typed:
        raise UsageError("no password given (empty input)", host=settings.host)
    return settings.with_(password=Secret(typed))
