"""How ocsps reaches one server: validated connection settings and the rules that merge their sources.

A ``ConnectionSettings`` is everything needed to open a PowerShell Remoting (WinRM/PSRP) session to one
OCS, Lync or Skype for Business server. It is validated when it is built, so that a typo in a host name or an
impossible combination (basic auth over http with message encryption, a read timeout shorter than the
operation timeout) is refused with one line *before* anything is sent to any server.

Settings come from these places, merged in this order (first wins)::

    command-line flags > OCSPS_* environment variables > config profile > [default] table > built-ins

``resolve_settings`` does the merge. It is pure: the caller hands it ``os.environ``, the loaded config file
and a prompt function, which keeps it testable and keeps the CLI thin.

Environment variables (empty values count as unset):

    OCSPS_HOST, OCSPS_CONNECT_ADDRESS, OCSPS_PORT, OCSPS_SSL, OCSPS_PATH, OCSPS_AUTH, OCSPS_USERNAME,
    OCSPS_VERIFY, OCSPS_CA_BUNDLE, OCSPS_CERTIFICATE_PEM, OCSPS_CERTIFICATE_KEY_PEM, OCSPS_ENCRYPTION,
    OCSPS_CONNECTION_TIMEOUT, OCSPS_READ_TIMEOUT, OCSPS_OPERATION_TIMEOUT, OCSPS_PROXY, OCSPS_NO_PROXY,
    OCSPS_CONFIGURATION_NAME, OCSPS_NEGOTIATE_SERVICE, OCSPS_PRODUCT, OCSPS_PARALLEL
                                                         (one per option in ``OPTIONS``)
    OCSPS_PASSWORD   the password (the only non-interactive way to give one)
    OCSPS_PROFILE    the config profile to use when no profile is passed explicitly
    OCSPS_CONFIG     the config file to read instead of the platform default (see ``ocsps.remote.profiles``)

Passwords are wrapped in ``Secret`` as soon as they are read, so that no repr, log line, JSON document or
error message can carry them by accident. Only ``wsman_kwargs()`` reveals the password, because pypsrp needs
it in clear; that dict must never be logged.

This module does not import pypsrp: commands such as ``--help`` must stay fast, and settings are plain data.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal, TypedDict, get_args

import msgspec
from msgspec import UNSET, UnsetType

from ocsps.errors import UsageError
from ocsps.hostname import check_host, show
from ocsps.shapes import FieldError, convert

_ALL_DIGITS = re.compile(r"[0-9]+", re.ASCII)

__all__ = [
    "AUTH_METHODS",
    "AUTH_PACKAGES",
    "DEFAULT_CONFIGURATION_NAME",
    "DEFAULT_NEGOTIATE_SERVICE",
    "DELEGATION_AUTHS",
    "ENCRYPTION_MODES",
    "ENV_CONFIG",
    "ENV_PASSWORD",
    "ENV_PROFILE",
    "MESSAGE_ENCRYPTION_AUTHS",
    "OPTIONS",
    "OPTION_TYPES",
    "PASSWORD_AUTHS",
    "PATH_OPTIONS",
    "ConnectOptions",
    "ConnectionSettings",
    "ConnectionSettingsDocument",
    "Layer",
    "Option",
    "Options",
    "Secret",
    "check_host",
    "check_option",
    "default_port",
    "parse_option_text",
    "product_ids",
    "show",
]


@cache
def product_ids() -> tuple[str, ...]:
    """Product ids, oldest first, from the catalog: read only when a ``product`` setting is checked, so
    that importing settings stays cheap (the parsed catalog is cached on disk)."""
    from ocsps.catalog import load_catalog

    products = load_catalog().products
    return tuple(sorted(products, key=lambda pid: products[pid].order))


def __getattr__(name: str) -> tuple[str, ...]:
    """``PRODUCTS``: the catalog's product ids, loaded on first use."""
    if name == "PRODUCTS":
        return product_ids()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


AUTH_METHODS: Final = ("negotiate", "kerberos", "ntlm", "credssp", "basic", "certificate")
"""Authentication methods pypsrp 0.9 supports; ``negotiate`` tries Kerberos and falls back to NTLM."""

ENCRYPTION_MODES: Final = ("auto", "always", "never")
"""WinRM message encryption: ``auto`` encrypts over http and relies on TLS over https."""

MESSAGE_ENCRYPTION_AUTHS: Final = frozenset({"negotiate", "kerberos", "ntlm", "credssp"})
"""Only these methods can encrypt WinRM messages themselves (pypsrp refuses the others)."""

PASSWORD_AUTHS: Final = frozenset({"negotiate", "ntlm", "credssp", "basic"})
"""Methods that need a password once a username is given. Kerberos is absent on purpose: with a username it
uses that principal's ticket from the credential cache (``kinit``), so ocsps does not prompt for it."""

USERNAME_AUTHS: Final = frozenset({"basic", "credssp"})
"""Methods that cannot fall back to the current logon or ticket: pypsrp requires a username for them."""

DELEGATION_AUTHS: Final = frozenset({"negotiate", "kerberos"})
"""Methods that can delegate the credential (a forwardable Kerberos ticket) to the server, for work that
needs a second hop: an update installer on a file share, a database update against a remote SQL Server."""

AUTH_PACKAGES: Final[Mapping[str, tuple[str, str]]] = {
    "credssp": ("requests_credssp", "credssp"),
    "kerberos": ("gssapi", "kerberos"),
}
"""auth -> (module pypsrp needs for it, the ocsps extra that installs it). Windows has Kerberos built in."""

DEFAULT_CONFIGURATION_NAME: Final = "Microsoft.PowerShell"
DEFAULT_NEGOTIATE_SERVICE: Final = "WSMAN"
"""The SPN service class WinRM registers. pypsrp 0.9 defaults to ``host``; Ansible passes ``WSMAN`` too."""

ENV_PASSWORD: Final = "OCSPS_PASSWORD"
ENV_PROFILE: Final = "OCSPS_PROFILE"
ENV_CONFIG: Final = "OCSPS_CONFIG"

"""The longest DNS name (RFC 1035, textual form without the trailing dot)."""

MAX_TIMEOUT: Final = 86400.0
"""One day: anything longer is certainly a unit mistake (milliseconds for seconds)."""


@dataclass(frozen=True)
class Option:
    """One connection option as it appears in flags, the environment and config files: its name and help.

    Its type is the field of the same name in :class:`Options`, so the three sources cannot disagree.
    """

    key: str
    help: str

    @property
    def kind(self) -> str:
        """``str``, ``path``, ``int``, ``bool`` or ``number``: its field's type, for help and generators."""
        if self.key in PATH_OPTIONS:
            return "path"
        return {int: "int", bool: "bool", float: "number"}.get(OPTION_TYPES[self.key], "str")

    @property
    def env(self) -> str:
        """The environment variable that sets this option."""
        return "OCSPS_" + self.key.upper()


OPTIONS: Final[Mapping[str, Option]] = {
    o.key: o
    for o in (
        Option("host", "server FQDN, as certificates and Kerberos know it"),
        Option("connect_address", "address actually dialled when it differs from host"),
        Option("expect_computer", "computer name the server reports, when it differs from host"),
        Option("port", "TCP port; default 5986 with ssl, 5985 without"),
        Option("ssl", "use https (default true)"),
        Option("path", "URL path of the WinRM listener (default wsman)"),
        Option("auth", "negotiate | kerberos | ntlm | credssp | basic | certificate"),
        Option("username", r"DOMAIN\user or user@domain"),
        Option("verify", "validate the server certificate (default true)"),
        Option("ca_bundle", "PEM file of CA certificates used to validate the server"),
        Option("certificate_pem", "client certificate PEM (auth certificate)"),
        Option("certificate_key_pem", "client certificate key PEM (auth certificate)"),
        Option("encryption", "auto | always | never"),
        Option("connection_timeout", "seconds to connect"),
        Option("read_timeout", "seconds to wait for a reply; must exceed operation_timeout"),
        Option("operation_timeout", "seconds the server may hold one WSMan request"),
        Option("proxy", "proxy URL, without credentials"),
        Option("no_proxy", "ignore proxy environment variables"),
        Option("configuration_name", "PowerShell session configuration (JEA endpoint)"),
        Option("negotiate_service", "Kerberos SPN service class (default WSMAN)"),
        Option(
            "negotiate_delegate",
            "Kerberos: delegate the credential to the server for second-hop work (default false)",
        ),
        Option("product", "ocs2007 | ocs2007r2 | lync2010 | lync2013 | sfb2015 | sfb2019"),
        Option("parallel", "hosts read at once by status and check (1-256)"),
    )
}
"""Every option accepted from flags, ``OCSPS_*`` variables and config files, by key."""

PATH_OPTIONS: Final = frozenset({"ca_bundle", "certificate_pem", "certificate_key_pem"})
"""Options naming local files: a config file anchors them at its own directory."""


class ConnectOptions(TypedDict, total=False):
    """The connection settings a script may pass to ``ocsps.connect`` or ``ocsps.Connector`` by keyword.

    A type checker then flags a misspelt or mistyped setting (``verfy=False``, ``port="5986"``) before the
    script runs; at run time the same names are checked again, with a ``UsageError``. ``verify`` and
    ``ca_bundle`` are the friendly form of ``cert_validation`` (use one or the other).
    """

    connect_address: str | None
    port: int
    ssl: bool
    path: str
    verify: bool
    ca_bundle: str
    cert_validation: bool | str
    certificate_pem: str | None
    certificate_key_pem: str | None
    encryption: Literal["auto", "always", "never"]
    connection_timeout: float
    read_timeout: float
    operation_timeout: float
    proxy: str | None
    no_proxy: bool
    configuration_name: str
    negotiate_service: str
    negotiate_delegate: bool


# --------------------------------------------------------------------------------------------------- secrets


class Secret:
    """A password that refuses to be printed.

    ``repr``, ``str`` and f-strings all give ``'******'``, so a secret inside a dataclass, a log call or an
    exception message stays hidden. ``reveal()`` is the one explicit way out, easy to grep for.
    """

    __slots__ = ("_value",)
    MASK: Final = "******"

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """Return the secret in clear, for the one call that needs it (building the transport)."""
        return self._value

    def __repr__(self) -> str:
        return self.MASK

    def __str__(self) -> str:
        return self.MASK

    def __format__(self, spec: str) -> str:
        return self.MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))


# ------------------------------------------------------------------------------------------------ validation


_USERNAME_EXTRA = frozenset(" ._-@\\")


def _check_username(value: str, what: str) -> str:
    """Accept ``user``, ``DOMAIN\\user`` and ``user@domain``; refuse quotes, metacharacters and controls.

    The name only travels in authentication headers, but it is also echoed in prompts and logs, and no real
    Windows account needs ``;``, ``$()``, quotes or control characters.
    """
    if not value:
        raise UsageError(f"{what}: is empty")
    if len(value) > 256:
        raise UsageError(f"{what}: longer than 256 characters ({show(value)})")
    if value != value.strip():
        raise UsageError(f"{what}: leading or trailing spaces in {show(value)}")
    bad = [ch for ch in value if not (ch.isalnum() or ch in _USERNAME_EXTRA)]
    if bad:
        raise UsageError(
            f"{what}: {show(value)} contains {show(bad[0])}; "
            "allowed are letters, digits, space and . _ - @ \\"
        )
    for sep, form in (("\\", r"DOMAIN\user"), ("@", "user@domain")):
        if value.count(sep) > 1 or value.startswith(sep) or value.endswith(sep):
            raise UsageError(f"{what}: {show(value)} is not of the form {form}")
    return value


_PATH_SEGMENT = r"[A-Za-z0-9._~-]+"
_URL_PATH = re.compile(rf"{_PATH_SEGMENT}(?:/{_PATH_SEGMENT})*(?:\?[A-Za-z0-9._~=-]+)?", re.ASCII)


def _check_url_path(value: str, what: str) -> str:
    """Validate the listener path (``wsman``, ``OcsPowershell``, ``wsman?PSVersion=5.1``).

    A leading ``/`` is dropped because pypsrp inserts one; ``..`` and anything outside a conservative URL
    alphabet are refused.
    """
    if len(value) > 256:
        raise UsageError(f"{what}: longer than 256 characters ({show(value)})")
    path = value.lstrip("/")
    if not path:
        raise UsageError(f"{what}: is empty (the WinRM default is 'wsman')")
    if not _URL_PATH.fullmatch(path) or ".." in path.split("?", 1)[0].split("/"):
        raise UsageError(
            f"{what}: {show(value)} is not a URL path ocsps accepts (letters, digits, . _ ~ - and /, "
            "optionally ?name=value)"
        )
    return path


_CONFIGURATION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,127}", re.ASCII)
_SERVICE_CLASS = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}", re.ASCII)


def _check_pattern(pattern: re.Pattern[str], example: str) -> Callable[[str, str], str]:
    def check(value: str, what: str) -> str:
        if not pattern.fullmatch(value):
            raise UsageError(f"{what}: {show(value)} is not a valid name (like {example})")
        return value

    return check


def _check_choice(choices: Callable[[], tuple[str, ...]]) -> Callable[[str, str], str]:
    def check(value: str, what: str) -> str:
        lowered = value.lower()
        if lowered not in choices():
            raise UsageError(f"{what}: {show(value)} is not one of {', '.join(choices())}")
        return lowered

    return check


def _check_local_path(value: str, what: str) -> str:
    """A local file name: any text an OS accepts, minus control characters (they only ever mean an error)."""
    if not value:
        raise UsageError(f"{what}: is empty")
    if len(value) > 4096:
        raise UsageError(f"{what}: longer than 4096 characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise UsageError(f"{what}: control characters in file path {show(value)}")
    return value


_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def _check_proxy(value: str, what: str) -> str:
    """A proxy URL without credentials: credentials in a URL end up in logs, JSON output and ``ps``."""
    if len(value) > 2048 or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise UsageError(f"{what}: {show(value)} is not a proxy URL")
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError:
        raise UsageError(f"{what}: {show(value)} is not a proxy URL") from None
    if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
        raise UsageError(f"{what}: {show(value)} is not a proxy URL like http://proxy.example.com:8080")
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            f"{what}: credentials in the proxy URL would be shown in logs and JSON output; "
            "use the HTTPS_PROXY environment variable with no_proxy = false instead"
        )
    check_host(parts.hostname, what)
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"{what}: proxy port must be 1-65535")
    return value


def _check_range(low: int, high: int, rule: str) -> Callable[[int, str], int]:
    def check(value: int, what: str) -> int:
        if not low <= value <= high:
            raise UsageError(f"{what}: {rule.format(f'{low}-{high}')}, got {value}")
        return value

    return check


def _check_timeout(value: float, what: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what}: must be a positive number of seconds, got {value}")
    if value > MAX_TIMEOUT:
        raise UsageError(f"{what}: {value} seconds is more than a day; timeouts are in seconds")
    return value


class Options(msgspec.Struct, forbid_unknown_fields=True):
    """The connection options one source gives (a config table, the flags, the environment), each unset
    unless given. msgspec checks the types; ``__post_init__`` runs the domain checks and normalises."""

    host: str | UnsetType = UNSET
    connect_address: str | UnsetType = UNSET
    expect_computer: str | UnsetType = UNSET
    port: int | UnsetType = UNSET
    ssl: bool | UnsetType = UNSET
    path: str | UnsetType = UNSET
    auth: str | UnsetType = UNSET
    username: str | UnsetType = UNSET
    verify: bool | UnsetType = UNSET
    ca_bundle: str | UnsetType = UNSET
    certificate_pem: str | UnsetType = UNSET
    certificate_key_pem: str | UnsetType = UNSET
    encryption: str | UnsetType = UNSET
    connection_timeout: float | UnsetType = UNSET
    read_timeout: float | UnsetType = UNSET
    operation_timeout: float | UnsetType = UNSET
    proxy: str | UnsetType = UNSET
    no_proxy: bool | UnsetType = UNSET
    configuration_name: str | UnsetType = UNSET
    negotiate_service: str | UnsetType = UNSET
    negotiate_delegate: bool | UnsetType = UNSET
    product: str | UnsetType = UNSET
    parallel: int | UnsetType = UNSET

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            value = getattr(self, name)
            if value is UNSET:
                continue
            try:
                setattr(self, name, check(value, name))
            except UsageError as exc:
                raise FieldError(name, str(exc).removeprefix(f"{name}: ")) from None

    def values(self) -> dict[str, object]:
        """The options given, by key, in declaration order."""
        given = ((name, getattr(self, name)) for name in self.__struct_fields__)
        return {name: value for name, value in given if value is not UNSET}


_CHECKS: Final[Mapping[str, Callable[[Any, str], object]]] = {
    "host": check_host,
    "connect_address": check_host,
    "expect_computer": check_host,
    "port": _check_range(1, 65535, "port must be {}"),
    "path": _check_url_path,
    "auth": _check_choice(lambda: AUTH_METHODS),
    "username": _check_username,
    "ca_bundle": _check_local_path,
    "certificate_pem": _check_local_path,
    "certificate_key_pem": _check_local_path,
    "encryption": _check_choice(lambda: ENCRYPTION_MODES),
    "connection_timeout": _check_timeout,
    "read_timeout": _check_timeout,
    "operation_timeout": _check_timeout,
    "proxy": _check_proxy,
    "configuration_name": _check_pattern(_CONFIGURATION_NAME, DEFAULT_CONFIGURATION_NAME),
    "negotiate_service": _check_pattern(_SERVICE_CLASS, DEFAULT_NEGOTIATE_SERVICE),
    "product": _check_choice(lambda: product_ids()),
    "parallel": _check_range(1, 256, "must be {} hosts at once"),
}
"""The domain checks msgspec's types cannot express, by option (each raises a one-line ``UsageError``)."""

OPTION_TYPES: Final[Mapping[str, type]] = {
    f.name: get_args(f.type)[0] for f in msgspec.structs.fields(Options)
}
"""Each option's value type (``int``, ``float``, ``bool`` or ``str``), for parsing environment text."""


def check_option(key: str, value: object, what: str | None = None) -> object:
    """Validate one option value of the right Python type and return it normalised.

    ``what`` names where the value came from (``--port``, ``OCSPS_PORT``, ``config.toml [profiles.lab] port``)
    so that the error tells the administrator which of the three sources to fix.
    """
    if key not in OPTIONS:
        raise UsageError(f"unknown connection option {show(key)}; valid options: {', '.join(OPTIONS)}")
    try:
        checked = convert({key: value}, Options)
    except UsageError as exc:
        raise UsageError(f"{what or key}{str(exc).removeprefix(key)}") from None
    return getattr(checked, key)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def parse_option_text(key: str, text: str, what: str) -> object:
    """Turn the text of an environment variable (or a string flag) into a checked option value."""
    kind = OPTION_TYPES.get(key)
    if kind is None:
        raise UsageError(f"unknown connection option {show(key)}; valid options: {', '.join(OPTIONS)}")
    value: object = text
    stripped = text.strip()
    if kind is bool:
        if stripped.lower() in _TRUE:
            value = True
        elif stripped.lower() in _FALSE:
            value = False
        else:
            raise UsageError(f"{what}: expected true or false, got {show(text)}")
    elif kind is int:
        if not _ALL_DIGITS.fullmatch(stripped) or len(stripped) > 6:
            expected = "a port number" if key == "port" else "a whole number"
            raise UsageError(f"{what}: expected {expected}, got {show(text)}")
        value = int(stripped)
    elif kind is float:
        if not _NUMBER.fullmatch(stripped) or len(stripped) > 20:
            raise UsageError(f"{what}: expected a number of seconds, got {show(text)}")
        value = float(stripped)
    return check_option(key, value, what)


def default_port(ssl: bool) -> int:
    """The WinRM listener defaults: 5986 for https, 5985 for http."""
    return 5986 if ssl else 5985


# -------------------------------------------------------------------------------------------------- settings


def _seconds(value: float) -> int | float:
    """pypsrp formats timeouts into ``PT<n>S``: keep whole seconds as ints so the header reads ``PT20S``."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to open a PowerShell Remoting session to one server, validated on construction.

    ``host`` is the server's name (what certificates, Kerberos and the administrator call it);
    ``connect_address``, when set, is what is actually dialled, like Ansible's ``ansible_host`` (the lab runs
    med01.contoso.com on 127.0.0.1). Kerberos still uses ``host`` for the SPN, and over https the server
    certificate is validated (and SNI sent) for ``host``, not for the address dialled.

    ``port`` 0 means "the default for the scheme" and is replaced at construction, so an instance always
    holds the real port. ``cert_validation`` is True, False (only when explicitly disabled) or a CA bundle
    path. Values are normalised (``auth`` lower-cased, ``[::1]`` unbracketed, ``/wsman`` -> ``wsman``).
    """

    host: str
    connect_address: str | None = None
    port: int = 0
    ssl: bool = True
    path: str = "wsman"
    auth: str = "negotiate"
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    cert_validation: bool | str = True
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None
    encryption: str = "auto"
    connection_timeout: float = 30.0
    read_timeout: float = 30.0
    operation_timeout: float = 20.0
    proxy: str | None = None
    no_proxy: bool = False
    configuration_name: str = DEFAULT_CONFIGURATION_NAME
    negotiate_service: str = DEFAULT_NEGOTIATE_SERVICE
    negotiate_delegate: bool = False
    product: str | None = None
    expect_computer: str | None = None
    parallel: int | None = None
    """Hosts a read command works on at once; None: the command's default."""

    def __post_init__(self) -> None:
        if isinstance(self.ssl, bool) and type(self.port) is int and self.port == 0:
            object.__setattr__(self, "port", default_port(self.ssl))
        given = {name: getattr(self, name) for name in _SETTING_OPTIONS}
        checked = convert({k: v for k, v in given.items() if v is not None}, Options)
        for name, value in checked.values().items():
            object.__setattr__(self, name, value)
        if isinstance(self.password, str):
            object.__setattr__(self, "password", Secret(self.password))
        elif self.password is not None and not isinstance(self.password, Secret):
            raise UsageError("password: expected a Secret or text")
        if isinstance(self.cert_validation, str):
            object.__setattr__(self, "cert_validation", check_option("ca_bundle", self.cert_validation))
        elif not isinstance(self.cert_validation, bool):
            raise UsageError("cert_validation: expected true, false or a CA bundle path")
        self._check_combinations()

    def _check_combinations(self) -> None:
        """Refuse combinations pypsrp would refuse later with a less helpful message, or that cannot work."""
        where = self.host
        if self.auth == "certificate":
            if not self.ssl:
                raise UsageError("auth certificate needs https: set ssl = true", host=where)
            if not self.certificate_pem or not self.certificate_key_pem:
                raise UsageError(
                    "auth certificate needs both certificate_pem and certificate_key_pem", host=where
                )
        elif self.certificate_pem or self.certificate_key_pem:
            raise UsageError(
                "certificate_pem / certificate_key_pem are only used with auth certificate "
                f"(auth is {self.auth})",
                host=where,
            )
        if self.auth in USERNAME_AUTHS and not self.username:
            raise UsageError(f"auth {self.auth} needs a username (DOMAIN\\user or user@domain)", host=where)
        if self.password is not None and not self.username:
            raise UsageError("a password is set but no username", host=where)
        if self.negotiate_delegate and self.auth not in DELEGATION_AUTHS:
            raise UsageError(
                f"negotiate_delegate needs auth kerberos or negotiate (auth is {self.auth}): only a "
                "Kerberos ticket can be delegated",
                host=where,
            )
        if self.auth not in MESSAGE_ENCRYPTION_AUTHS:
            if not self.ssl and self.encryption != "never":
                raise UsageError(
                    f'auth {self.auth} over http cannot encrypt WinRM messages: set encryption = "never" '
                    "to send them in clear, or better use https (ssl = true)",
                    host=where,
                )
            if self.encryption == "always":
                raise UsageError(
                    "encryption always needs auth negotiate, kerberos, ntlm or credssp "
                    f"(auth is {self.auth})",
                    host=where,
                )
        if self.auth == "basic" and self.password is not None:
            try:
                self.password.reveal().encode("latin-1")
            except UnicodeEncodeError:
                raise UsageError(
                    "the password has characters basic auth cannot send (it is limited to Latin-1)",
                    host=where,
                ) from None
        if self.read_timeout <= self.operation_timeout:
            raise UsageError(
                f"read_timeout ({self.read_timeout:g}s) must be greater than operation_timeout "
                f"({self.operation_timeout:g}s): the server may hold a request for the whole operation "
                "timeout and the client must still be listening when the answer comes",
                host=where,
            )

    # ------------------------------------------------------------------------------------------ views

    @property
    def address(self) -> str:
        """What is actually dialled: ``connect_address`` if set, else ``host``."""
        return self.connect_address or self.host

    @property
    def endpoint(self) -> str:
        """The listener URL as the administrator knows it (uses ``host``, not ``connect_address``)."""
        return self._url(self.host)

    @property
    def insecure(self) -> bool:
        """True when certificate validation was explicitly disabled, so the CLI can say so loudly."""
        return self.cert_validation is False

    @property
    def tls_server_name(self) -> str | None:
        """The name the server certificate must carry over https: always ``host``, never the address
        dialled (a certificate for 127.0.0.1 or another server does not prove this is ``host``)."""
        return self.host if self.ssl else None

    @property
    def cleartext(self) -> bool:
        """True when WinRM messages travel unencrypted (http with encryption never)."""
        return not self.ssl and self.encryption == "never"

    def transport_warnings(self) -> list[str]:
        """What an administrator must hear on every run about how unprotected this connection is.

        Certificate validation turned off, and WinRM messages in clear text (http with encryption
        never: commands, output and, with basic auth, the password itself readable on the network).
        Empty for a protected connection. The CLI prints these, the session logs them, the audit log
        records them with each change.
        """
        found = []
        if self.ssl and self.insecure:
            found.append("TLS certificate validation is OFF: the server's identity is not checked")
        if self.cleartext:
            basic = self.auth == "basic"
            what = "the password and every command" if basic else "every command and its output"
            found.append(
                f"WinRM messages travel in CLEAR TEXT (http, encryption never, auth {self.auth}): "
                f"{what} can be read on the network"
            )
        return found

    @property
    def needs_password(self) -> bool:
        """True when authentication cannot proceed without a password that is not set yet.

        Without a username, negotiate and kerberos use the current Kerberos ticket (or Windows logon), so
        no password is needed; kerberos with a username uses that principal's cached ticket.
        """
        return self.password is None and bool(self.username) and self.auth in PASSWORD_AUTHS

    def _url(self, server: str) -> str:
        scheme = "https" if self.ssl else "http"
        shown = f"[{server}]" if ":" in server else server
        return f"{scheme}://{shown}:{self.port}/{self.path}"

    def wsman_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``pypsrp.wsman.WSMan(**kwargs)``.

        Typed ``dict[str, Any]`` so that ``WSMan(**kwargs)`` type-checks. The password is revealed here
        because pypsrp needs it: never log this dict. Auth-specific keys are
        only included for the methods pypsrp reads them for. When ``connect_address`` differs from ``host``,
        ``negotiate_hostname_override`` keeps the Kerberos SPN on the server's real name.
        """
        kwargs: dict[str, Any] = {
            "server": self.address,
            "port": self.port,
            "ssl": self.ssl,
            "path": self.path,
            "auth": self.auth,
            "cert_validation": self.cert_validation,
            "encryption": self.encryption,
            "connection_timeout": _seconds(self.connection_timeout),
            "read_timeout": _seconds(self.read_timeout),
            "operation_timeout": _seconds(self.operation_timeout),
            "no_proxy": self.no_proxy,
        }
        if self.proxy is not None:
            kwargs["proxy"] = self.proxy
        if self.auth == "certificate":
            kwargs["certificate_pem"] = self.certificate_pem
            kwargs["certificate_key_pem"] = self.certificate_key_pem
        else:
            kwargs["username"] = self.username
            kwargs["password"] = self.password.reveal() if self.password is not None else None
        if self.auth in ("negotiate", "kerberos", "ntlm"):
            kwargs["negotiate_service"] = self.negotiate_service
            if self.negotiate_delegate:
                kwargs["negotiate_delegate"] = True
            if self.connect_address is not None and self.connect_address.lower() != self.host.lower():
                kwargs["negotiate_hostname_override"] = self.host
        return kwargs

    def with_(self, **changes: object) -> ConnectionSettings:
        """A copy with some fields changed, validated again.

        Switching ``ssl`` without naming a port moves a default port along (5986 <-> 5985), because a port
        the user never chose should follow the scheme. A text ``password`` is wrapped in ``Secret``.
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise UsageError(f"unknown connection setting {show(unknown[0])}")
        if "ssl" in changes and "port" not in changes and self.port == default_port(self.ssl):
            changes["port"] = 0
        if isinstance(changes.get("password"), str):
            changes["password"] = Secret(str(changes["password"]))
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def check_installed(self) -> None:
        """Fail early, with the install hint, when the chosen auth method needs a package that is missing.

        pypsrp would fail only once connecting, with an ImportError that reads like a server problem.
        """
        import importlib.util

        needed = AUTH_PACKAGES.get(self.auth)
        if needed is None or (self.auth == "kerberos" and os.name == "nt"):
            return
        module, extra = needed
        if importlib.util.find_spec(module) is None:
            raise UsageError(
                f"auth {self.auth} needs the Python package {module}, which is not installed",
                host=self.host,
                hint=f"pip install 'ocsps[{extra}]'",
            )

    def check_local_files(self) -> None:
        """Fail early, with the option name, when a CA bundle or client certificate file is missing.

        Kept out of validation so that settings stay pure data; call it just before connecting.
        """
        files = {"ca_bundle": self.cert_validation if isinstance(self.cert_validation, str) else None}
        files["certificate_pem"] = self.certificate_pem
        files["certificate_key_pem"] = self.certificate_key_pem
        for name, path in files.items():
            if path is not None and not os.path.isfile(path):
                raise UsageError(f"{name}: file not found: {show(path, 200)}", host=self.host)


class ConnectionSettingsDocument(msgspec.Struct):
    """The settings as ``--json`` output and logs show them (``ConnectionSettingsDocument.of``).

    The password is left out: the document has no field that could hold it, and ``password_set`` says
    whether one is present. The encoder refuses a ``Secret``, so the settings object itself is never
    written as JSON. ``endpoint`` and ``insecure`` are the views an administrator reads; timeouts are
    shown as pypsrp is given them (whole seconds as integers).
    """

    host: str
    connect_address: str | None
    endpoint: str
    port: int
    ssl: bool
    path: str
    auth: str
    username: str | None
    password_set: bool
    cert_validation: bool | str
    insecure: bool
    certificate_pem: str | None
    certificate_key_pem: str | None
    encryption: str
    connection_timeout: int | float
    read_timeout: int | float
    operation_timeout: int | float
    proxy: str | None
    no_proxy: bool
    configuration_name: str
    negotiate_service: str
    negotiate_delegate: bool
    product: str | None
    expect_computer: str | None
    parallel: int | None

    @classmethod
    def of(cls, settings: ConnectionSettings) -> ConnectionSettingsDocument:
        return cls(
            host=settings.host,
            connect_address=settings.connect_address,
            endpoint=settings.endpoint,
            port=settings.port,
            ssl=settings.ssl,
            path=settings.path,
            auth=settings.auth,
            username=settings.username,
            password_set=settings.password is not None,
            cert_validation=settings.cert_validation,
            insecure=settings.insecure,
            certificate_pem=settings.certificate_pem,
            certificate_key_pem=settings.certificate_key_pem,
            encryption=settings.encryption,
            connection_timeout=_seconds(settings.connection_timeout),
            read_timeout=_seconds(settings.read_timeout),
            operation_timeout=_seconds(settings.operation_timeout),
            proxy=settings.proxy,
            no_proxy=settings.no_proxy,
            configuration_name=settings.configuration_name,
            negotiate_service=settings.negotiate_service,
            negotiate_delegate=settings.negotiate_delegate,
            product=settings.product,
            expect_computer=settings.expect_computer,
            parallel=settings.parallel,
        )


_SETTING_OPTIONS: Final = tuple(key for key in OPTIONS if key not in ("verify", "ca_bundle"))
"""The options that are fields of ``ConnectionSettings`` as they are (the other two make cert_validation)."""

# ----------------------------------------------------------------------------------------------- resolution

Layer = tuple[str, Mapping[str, object], Callable[[str], str]]
"""(source name, checked values, label for one key) — one source of settings."""


def settings_from_keywords(
    host: str,
    *,
    product: str,
    auth: str,
    username: str | None,
    password: str | Secret | None,
    options: Mapping[str, Any],
) -> ConnectionSettings:
    """The keyword form of ``ocsps.connect`` and ``ocsps.Connector`` as settings, checked.

    ``verify`` and ``ca_bundle`` become ``cert_validation`` (naming both is a contradiction), a plain
    password is wrapped in ``Secret``, and a keyword that is not a setting is a usage error, for callers
    that did not run a type checker.
    """
    known = {f.name for f in dataclasses.fields(ConnectionSettings)} - {"host", "password", "product"}
    known |= {"verify", "ca_bundle"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown connection setting {show(unknown[0])}; valid: {', '.join(sorted(known))}")
    values = dict(options)
    verify, bundle = values.pop("verify", None), values.pop("ca_bundle", None)
    if bundle is not None and (verify is False or "cert_validation" in values):
        raise UsageError("ca_bundle contradicts verify=False / cert_validation")
    if bundle is not None:
        values["cert_validation"] = bundle
    elif verify is not None:
        values["cert_validation"] = verify
    secret = Secret(password) if isinstance(password, str) else password
    settings = ConnectionSettings(
        host=host, auth=auth, username=username, password=secret, product=product, **values
    )
    settings.check_local_files()
    settings.check_installed()
    return settings
