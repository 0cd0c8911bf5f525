"""resolve_settings: flags > environment > profile > [default] > built-ins, and where passwords come from."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsps.errors import UsageError
from ocsps.remote.profiles import ConfigFile, parse_config, resolve_settings
from ocsps.remote.settings import OPTIONS, ConnectionSettings, check_host

CONFIG_TEXT = """\
[default]
auth = "kerberos"
operation_timeout = 40
read_timeout = 60
path = "wsman"

[profiles.lab]
host = "med01.contoso.com"
connect_address = "127.0.0.1"
ssl = false
auth = "ntlm"
username = 'LAB\\admin'
path = "lab-wsman"

[profiles.pool]
host = "fe01.contoso.com"
ca_bundle = "/etc/ocsps/contoso.pem"
product = "lync2013"

[profiles.insecure]
host = "fe09.contoso.com"
verify = false
"""


def config() -> ConfigFile:
    return parse_config(CONFIG_TEXT, source="config.toml")


def no_prompt_expected(text: str) -> str:
    raise AssertionError(f"prompted unexpectedly: {text}")


def resolve(
    flags: Mapping[str, object] | None = None,
    env: dict[str, str] | None = None,
    cfg: ConfigFile | None = None,
    profile: str | None = None,
    prompt: Callable[[str], str] | None = no_prompt_expected,
) -> ConnectionSettings:
    return resolve_settings(flags or {}, env or {}, cfg, profile, prompt)


# ------------------------------------------------------------------------------------------ precedence


def test_built_in_defaults() -> None:
    s = resolve({"host": "fe01.contoso.com"})
    assert s == ConnectionSettings(host="fe01.contoso.com")


def test_default_table_applies_without_profile() -> None:
    s = resolve({"host": "fe01.contoso.com"}, cfg=config())
    assert (s.auth, s.operation_timeout, s.read_timeout) == ("kerberos", 40, 60)


def test_profile_over_default_table() -> None:
    s = resolve(cfg=config(), profile="lab", env={"OCSPS_PASSWORD": "pw"})
    assert (s.host, s.connect_address, s.ssl, s.port, s.auth) == (
        "med01.contoso.com",
        "127.0.0.1",
        False,
        5985,
        "ntlm",
    )
    assert s.path == "lab-wsman"
    assert s.operation_timeout == 40  # from [default]


def test_environment_over_profile() -> None:
    env = {
        "OCSPS_PORT": "15985",
        "OCSPS_AUTH": "negotiate",
        "OCSPS_PATH": "env-wsman",
        "OCSPS_PASSWORD": "pw",
    }
    s = resolve(cfg=config(), profile="lab", env=env)
    assert (s.port, s.auth, s.path, s.host) == (15985, "negotiate", "env-wsman", "med01.contoso.com")


def test_flags_over_environment() -> None:
    env = {"OCSPS_HOST": "env.contoso.com", "OCSPS_PORT": "1111", "OCSPS_SSL": "false"}
    s = resolve({"host": "flag.contoso.com", "port": 2222}, env=env, cfg=config())
    assert (s.host, s.port, s.ssl) == ("flag.contoso.com", 2222, False)


def test_none_flags_mean_not_given() -> None:
    s = resolve({"host": None, "port": None, "ssl": None}, env={"OCSPS_HOST": "env.contoso.com"})
    assert (s.host, s.port, s.ssl) == ("env.contoso.com", 5986, True)


@pytest.mark.parametrize("key", [k for k in OPTIONS if k not in ("verify", "ca_bundle")])
def test_every_option_follows_the_precedence(key: str) -> None:
    """For each option: a flag beats the environment, which beats the profile, which beats [default]."""
    samples: dict[str, tuple[object, object, object, object]] = {
        "host": ("a.example", "b.example", "c.example", "d.example"),
        "connect_address": ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"),
        "expect_computer": ("e1.example", "e2.example", "e3.example", "e4.example"),
        "port": (1001, 1002, 1003, 1004),
        "ssl": (True, False, True, False),
        "path": ("p1", "p2", "p3", "p4"),
        "auth": ("ntlm", "kerberos", "negotiate", "ntlm"),
        "username": ("u1", "u2", "u3", "u4"),
        "certificate_pem": ("c1", "c2", "c3", "c4"),
        "certificate_key_pem": ("k1", "k2", "k3", "k4"),
        "encryption": ("auto", "always", "auto", "always"),
        "connection_timeout": (1.0, 2.0, 3.0, 4.0),
        "read_timeout": (101.0, 102.0, 103.0, 104.0),
        "operation_timeout": (11.0, 12.0, 13.0, 14.0),
        "proxy": ("http://p1:1", "http://p2:2", "http://p3:3", "http://p4:4"),
        "no_proxy": (True, False, True, False),
        "configuration_name": ("A", "B", "C", "D"),
        "negotiate_service": ("WSMAN", "HTTP", "HOST", "CIFS"),
        "negotiate_delegate": (True, False, True, False),
        "product": ("ocs2007", "lync2010", "sfb2015", "sfb2019"),
        "parallel": (3, 5, 7, 9),
    }
    flag, env_value, profile_value, default_value = samples[key]
    extra: dict[str, object] = {"host": "x.example"} if key != "host" else {}
    if key in ("certificate_pem", "certificate_key_pem"):
        extra.update(auth="certificate", certificate_pem="c", certificate_key_pem="k")
    if key == "ssl":
        extra.update(auth="ntlm")

    def toml(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else repr(value).replace("'", '"')

    def cfg_text(skip_profile: bool) -> str:
        lines = ["[default]", f"{key} = {toml(default_value)}", "[profiles.p]"]
        lines += [f"{k} = {toml(v)}" for k, v in extra.items() if k != key]
        if not skip_profile:
            lines.append(f"{key} = {toml(profile_value)}")
        return "\n".join(lines) + "\n"

    env_text = str(env_value).lower() if isinstance(env_value, bool) else str(env_value)
    env = {OPTIONS[key].env: env_text}
    cfg = parse_config(cfg_text(False), source="c.toml")
    cfg_no_profile_value = parse_config(cfg_text(True), source="c.toml")

    def got(flags: dict[str, object], environ: dict[str, str], c: ConfigFile) -> object:
        return getattr(resolve(flags, environ, c, "p", prompt=lambda _: "pw"), key)

    assert got({key: flag}, env, cfg) == flag
    assert got({}, env, cfg) == env_value
    assert got({}, {}, cfg) == profile_value
    assert got({}, {}, cfg_no_profile_value) == default_value


def test_profile_from_environment_and_flag_wins() -> None:
    env = {"OCSPS_PROFILE": "pool", "OCSPS_PASSWORD": "pw"}
    assert resolve(env=env, cfg=config()).host == "fe01.contoso.com"
    assert resolve(env=env, cfg=config(), profile="lab").host == "med01.contoso.com"


def test_profile_default_means_the_default_table() -> None:
    s = resolve({"host": "fe01.contoso.com"}, cfg=config(), profile="default")
    assert s.auth == "kerberos"


def test_unknown_profile() -> None:
    with pytest.raises(
        UsageError, match=r"config\.toml: no profile 'prod' \(profiles: lab, pool, insecure\)"
    ):
        resolve(cfg=config(), profile="prod")


def test_profile_without_config_file() -> None:
    with pytest.raises(UsageError, match="'lab' was selected by --profile but no config file was found"):
        resolve(profile="lab")
    with pytest.raises(UsageError, match="selected by OCSPS_PROFILE"):
        resolve(env={"OCSPS_PROFILE": "lab"})


def test_no_host_anywhere() -> None:
    with pytest.raises(UsageError, match="no server given: pass --host, set OCSPS_HOST"):
        resolve(cfg=config())


# ------------------------------------------------------------------------------ environment and flags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("off", False),
    ],
)
def test_env_booleans(text: str, expected: bool) -> None:
    s = resolve(env={"OCSPS_HOST": "fe01", "OCSPS_SSL": text, "OCSPS_AUTH": "ntlm"})
    assert s.ssl is expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OCSPS_SSL": "maybe"}, "OCSPS_SSL: expected true or false, got 'maybe'"),
        ({"OCSPS_PORT": "59 86"}, "OCSPS_PORT: expected a port number"),
        ({"OCSPS_PORT": "-1"}, "OCSPS_PORT: expected a port number"),
        ({"OCSPS_PORT": "0"}, "OCSPS_PORT: port must be 1-65535"),
        ({"OCSPS_PORT": "99999999999"}, "OCSPS_PORT: expected a port number"),
        ({"OCSPS_READ_TIMEOUT": "30s"}, "OCSPS_READ_TIMEOUT: expected a number of seconds"),
        ({"OCSPS_READ_TIMEOUT": "nan"}, "OCSPS_READ_TIMEOUT: expected a number of seconds"),
        ({"OCSPS_OPERATION_TIMEOUT": "0"}, "OCSPS_OPERATION_TIMEOUT: must be a positive number"),
        ({"OCSPS_AUTH": "digest"}, "OCSPS_AUTH: 'digest' is not one of"),
        ({"OCSPS_HOST": "fe01;reboot"}, "OCSPS_HOST: not a valid host name"),
        ({"OCSPS_USERNAME": "admin\nINJECTED"}, "OCSPS_USERNAME: 'admin\\nINJECTED' contains"),
        ({"OCSPS_PRODUCT": "lync2016"}, "OCSPS_PRODUCT: 'lync2016' is not one of"),
        ({"OCSPS_VERIFY": "nope"}, "OCSPS_VERIFY: expected true or false"),
    ],
)
def test_env_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(env={"OCSPS_HOST": "fe01", **env})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_env_values_count_as_unset() -> None:
    s = resolve(env={"OCSPS_HOST": "fe01", "OCSPS_PORT": "", "OCSPS_AUTH": "", "OCSPS_PROFILE": ""})
    assert (s.port, s.auth) == (5986, "negotiate")


def test_unrelated_env_is_ignored() -> None:
    s = resolve(env={"OCSPS_HOST": "fe01", "OCSPS_LOG_LEVEL": "debug", "PATH": "/bin"})
    assert s.host == "fe01"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"port": "abc"}, "--port: expected a port number"),
        ({"ssl": "perhaps"}, "--ssl: expected true or false"),
        ({"host": 42}, "--host: expected str, got int 42"),
        ({"read_timeout": "1e9"}, "--read-timeout: expected a number of seconds"),
        ({"colour": "blue"}, "unknown connection option 'colour'"),
        ({"password": "hunter2"}, "passwords are not taken as options"),
        ({"connect_address": "$(whoami)"}, "--connect-address: not a valid host name"),
    ],
)
def test_flag_errors_name_the_option(flags: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve({"host": "fe01", **flags})
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_string_flags_are_parsed() -> None:
    s = resolve({"host": "fe01", "port": "5985", "ssl": "false", "auth": "ntlm", "read_timeout": "45.5"})
    assert (s.port, s.ssl, s.read_timeout) == (5985, False, 45.5)


def test_ipv6_in_brackets_from_flags() -> None:
    assert resolve({"host": "[2001:db8::7]"}).host == "2001:db8::7"


def test_config_errors_name_file_and_table() -> None:
    cfg = parse_config(
        '[profiles.lab]\nhost = "127.0.0.1"\nssl = false\nauth = "basic"\nusername = "u"\n', source="c.toml"
    )
    with pytest.raises(UsageError, match='set encryption = "never"'):
        resolve(cfg=cfg, profile="lab", env={"OCSPS_PASSWORD": "pw"})


# --------------------------------------------------------------------------------- certificate checks


def test_ca_bundle_from_profile() -> None:
    s = resolve(cfg=config(), profile="pool")
    assert s.cert_validation == "/etc/ocsps/contoso.pem"
    assert not s.insecure


def test_verify_false_from_profile_is_insecure() -> None:
    s = resolve(cfg=config(), profile="insecure")
    assert s.cert_validation is False and s.insecure


def test_verify_false_from_env() -> None:
    s = resolve(env={"OCSPS_HOST": "fe01", "OCSPS_VERIFY": "false"})
    assert s.insecure


def test_ca_bundle_from_env_over_profile() -> None:
    s = resolve(cfg=config(), profile="pool", env={"OCSPS_CA_BUNDLE": "/tmp/other.pem"})
    assert s.cert_validation == "/tmp/other.pem"


def test_no_verify_flag_beats_profile_ca_bundle() -> None:
    s = resolve({"verify": False}, cfg=config(), profile="pool")
    assert s.cert_validation is False and s.insecure


def test_verify_true_flag_beats_profile_verify_false() -> None:
    s = resolve({"verify": True}, cfg=config(), profile="insecure")
    assert s.cert_validation is True and not s.insecure


def test_verify_false_and_ca_bundle_in_one_source_contradict() -> None:
    with pytest.raises(UsageError, match="--verify = false contradicts --ca-bundle"):
        resolve({"host": "fe01", "verify": False, "ca_bundle": "/etc/ca.pem"})
    cfg = parse_config('[default]\nhost = "fe01"\nverify = false\nca_bundle = "/ca.pem"\n', source="c.toml")
    with pytest.raises(UsageError, match=r"c\.toml \[default\] verify = false contradicts"):
        resolve(cfg=cfg)


def test_verify_true_with_ca_bundle_uses_the_bundle() -> None:
    s = resolve({"host": "fe01", "verify": True, "ca_bundle": "/etc/ca.pem"})
    assert s.cert_validation == "/etc/ca.pem"


def test_verification_is_never_off_by_default() -> None:
    assert resolve({"host": "fe01"}, cfg=config()).cert_validation is True
    assert resolve({"host": "fe01", "ssl": False, "auth": "ntlm"}).insecure is False


# ------------------------------------------------------------------------------------------- passwords


def test_password_from_environment() -> None:
    s = resolve(cfg=config(), profile="lab", env={"OCSPS_PASSWORD": "S3cret!"})
    assert s.password is not None and s.password.reveal() == "S3cret!"


def test_prompt_only_when_needed_and_after_validation() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    s = resolve(cfg=config(), profile="lab", prompt=prompt)
    assert asked == ["Password for LAB\\admin on med01.contoso.com: "]
    assert s.password is not None and s.password.reveal() == "typed"

    asked.clear()
    with pytest.raises(UsageError):
        resolve({"host": "bad host"}, cfg=config(), profile="lab", prompt=prompt)
    assert asked == []


def test_no_prompt_when_env_password_given() -> None:
    resolve(cfg=config(), profile="lab", env={"OCSPS_PASSWORD": "pw"}, prompt=no_prompt_expected)


@pytest.mark.parametrize(
    "flags",
    [
        {"host": "fe01"},  # negotiate with the current ticket
        {"host": "fe01", "auth": "kerberos"},
        {"host": "fe01", "auth": "kerberos", "username": "admin@CONTOSO.COM"},  # kinit'ed principal
        {"host": "fe01", "auth": "certificate", "certificate_pem": "c", "certificate_key_pem": "k"},
    ],
)
def test_no_prompt_when_no_password_is_needed(flags: dict[str, object]) -> None:
    s = resolve(flags, prompt=no_prompt_expected)
    assert s.password is None


def test_env_password_ignored_for_certificate_and_ticket_auth() -> None:
    env = {"OCSPS_PASSWORD": "pw"}
    assert resolve({"host": "fe01"}, env=env).password is None
    cert = {
        "host": "fe01",
        "auth": "certificate",
        "certificate_pem": "c",
        "certificate_key_pem": "k",
        "username": "u",
    }
    assert resolve(cert, env=env).password is None


def test_kerberos_with_username_uses_env_password() -> None:
    s = resolve({"host": "fe01", "auth": "kerberos", "username": "u@R"}, env={"OCSPS_PASSWORD": "pw"})
    assert s.password is not None


def test_no_prompt_available() -> None:
    with pytest.raises(UsageError) as caught:
        resolve(cfg=config(), profile="lab", prompt=None)
    assert caught.value.host == "med01.contoso.com"
    assert caught.value.message == (
        "med01.contoso.com: auth ntlm needs a password for LAB\\admin: "
        "set OCSPS_PASSWORD or run interactively"
    )


def test_prompt_end_of_input_and_empty() -> None:
    def eof(_: str) -> str:
        raise EOFError

    with pytest.raises(UsageError, match="no password given"):
        resolve(cfg=config(), profile="lab", prompt=eof)
    with pytest.raises(UsageError, match=r"no password given \(empty input\)"):
        resolve(cfg=config(), profile="lab", prompt=lambda _: "")


def test_keyboard_interrupt_propagates() -> None:
    def interrupted(_: str) -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resolve(cfg=config(), profile="lab", prompt=interrupted)


# ------------------------------------------------------------------------------------------------ fuzz

_ENV_NAMES = [o.env for o in OPTIONS.values()] + ["OCSPS_PROFILE"]
_MARKER = "pw-marker-7f3e9c"
_ENV_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["true", "false", "0", "5985", "ntlm", "basic", "certificate", "fe01", "::1", "20", "x;y"]
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(_ENV_NAMES), _ENV_VALUES, max_size=6))
def test_fuzz_environment_gives_settings_or_usage_error(env: dict[str, str]) -> None:
    environ = {"OCSPS_HOST": "fe01.contoso.com", **env, "OCSPS_PASSWORD": _MARKER}
    try:
        s = resolve_settings({}, environ, config(), None, lambda _: "typed")
    except UsageError as exc:
        assert "\n" not in str(exc)
        assert _MARKER not in str(exc)
        return
    assert isinstance(s, ConnectionSettings)
    assert s.insecure == (s.cert_validation is False)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_check_host(text: str) -> None:
    try:
        host = check_host(text)
    except UsageError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert host.isascii() and len(host) <= 253
    assert not any(ch in host for ch in " \t\r\n\x00;$()'\"`|&<>{}%/\\#")


def test_only_the_flags_are_required() -> None:
    """A script resolves settings without building an environment, a config and a prompt to pass."""
    settings = resolve_settings({"host": "fe01.contoso.com", "auth": "kerberos"})
    assert (settings.host, settings.auth) == ("fe01.contoso.com", "kerberos")
