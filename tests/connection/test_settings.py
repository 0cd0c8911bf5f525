"""ConnectionSettings: defaults, validation, derived views and the mapping onto pypsrp's WSMan."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocsps.catalog import load_catalog
from ocsps.errors import UsageError
from ocsps.jsonout import to_builtins
from ocsps.remote.profiles import resolve_settings
from ocsps.remote.settings import (
    AUTH_METHODS,
    OPTIONS,
    PRODUCTS,
    ConnectionSettings,
    ConnectionSettingsDocument,
    Secret,
    check_host,
    default_port,
)

HOST = "fe01.contoso.com"
ROOT = Path(__file__).resolve().parents[2]


def make(**changes: object) -> ConnectionSettings:
    values: dict[str, object] = {"host": HOST, **changes}
    return ConnectionSettings(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    s = make()
    assert (s.port, s.ssl, s.path, s.auth, s.encryption) == (5986, True, "wsman", "negotiate", "auto")
    assert s.cert_validation is True and not s.insecure and not s.cleartext
    assert (s.connection_timeout, s.read_timeout, s.operation_timeout) == (30, 30, 20)
    assert s.configuration_name == "Microsoft.PowerShell"
    assert s.negotiate_service == "WSMAN"
    assert s.username is None and s.password is None and s.product is None
    assert s.endpoint == "https://fe01.contoso.com:5986/wsman"
    assert s.address == HOST


def test_http_default_port() -> None:
    s = make(ssl=False)
    assert s.port == 5985
    assert s.endpoint == "http://fe01.contoso.com:5985/wsman"
    assert default_port(True) == 5986 and default_port(False) == 5985


def test_normalisation() -> None:
    s = make(auth="NTLM", encryption="Never", product="SfB2019", path="/OcsPowershell", username="a@b.c")
    assert (s.auth, s.encryption, s.product, s.path) == ("ntlm", "never", "sfb2019", "OcsPowershell")
    v6 = ConnectionSettings(host="[2001:db8::1]", port=5985)
    assert v6.host == "2001:db8::1"
    assert v6.endpoint == "https://[2001:db8::1]:5985/wsman"


def test_connect_address_is_dialled_but_host_is_shown() -> None:
    s = make(connect_address="127.0.0.1", ssl=False, auth="ntlm", username="LAB\\admin")
    assert s.address == "127.0.0.1"
    assert s.endpoint == "http://fe01.contoso.com:5985/wsman"
    kwargs = s.wsman_kwargs()
    assert kwargs["server"] == "127.0.0.1"
    assert kwargs["negotiate_hostname_override"] == HOST


def test_no_hostname_override_without_connect_address() -> None:
    assert "negotiate_hostname_override" not in make(auth="kerberos").wsman_kwargs()
    assert "negotiate_hostname_override" not in make(connect_address=HOST.upper()).wsman_kwargs()


def test_with_keeps_validation_and_moves_default_port() -> None:
    s = make()
    http = s.with_(ssl=False)
    assert http.port == 5985
    assert http.with_(ssl=True).port == 5986
    custom = s.with_(port=8443).with_(ssl=False)
    assert custom.port == 8443
    assert s.with_(ssl=False, port=1234).port == 1234
    with pytest.raises(UsageError, match="port must be 1-65535"):
        s.with_(port=70000)
    with pytest.raises(UsageError, match="unknown connection setting 'colour'"):
        s.with_(colour="blue")
    pw = s.with_(username="u", password="text")
    assert isinstance(pw.password, Secret) and pw.password.reveal() == "text"
    assert s.username is None  # frozen: the original is untouched


def test_frozen() -> None:
    s = make()
    with pytest.raises(AttributeError):
        s.host = "other"  # type: ignore[misc]


# ----------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 0.5}, "port: expected int, got float 0.5"),
        ({"port": 65536}, "port must be 1-65535"),
        ({"port": -1}, "port must be 1-65535"),
        ({"port": True}, "port: expected int, got bool"),
        ({"port": False}, "port: expected int, got bool"),
        ({"ssl": "yes"}, "ssl: expected bool, got str 'yes'"),
        ({"auth": "digest"}, "auth: 'digest' is not one of negotiate, kerberos"),
        ({"encryption": "sometimes"}, "encryption: 'sometimes' is not one of auto, always, never"),
        ({"product": "lync2016"}, "product: 'lync2016' is not one of ocs2007"),
        ({"auth": "basic", "username": "u", "ssl": False}, 'set encryption = "never"'),
        ({"auth": "basic", "username": "u", "encryption": "always"}, "encryption always needs"),
        ({"auth": "basic"}, "auth basic needs a username"),
        ({"auth": "credssp"}, "auth credssp needs a username"),
        (
            {"auth": "certificate", "ssl": False, "certificate_pem": "c", "certificate_key_pem": "k"},
            "needs https",
        ),
        (
            {"auth": "certificate", "certificate_pem": "c.pem"},
            "needs both certificate_pem and certificate_key_pem",
        ),
        ({"auth": "certificate", "certificate_key_pem": "k.pem"}, "needs both"),
        ({"auth": "ntlm", "certificate_pem": "c.pem"}, "only used with auth certificate"),
        ({"password": Secret("x")}, "a password is set but no username"),
        ({"connection_timeout": 0}, "connection_timeout: must be a positive number"),
        ({"read_timeout": -3}, "read_timeout: must be a positive number"),
        ({"operation_timeout": float("nan")}, "operation_timeout: must be a positive number"),
        ({"operation_timeout": float("inf")}, "operation_timeout: must be a positive number"),
        ({"read_timeout": "30"}, "read_timeout: expected float, got str '30'"),
        (
            {"read_timeout": 20, "operation_timeout": 20},
            "read_timeout (20s) must be greater than operation_timeout",
        ),
        ({"read_timeout": 10}, "read_timeout (10s) must be greater than operation_timeout (20s)"),
        ({"read_timeout": 100000}, "more than a day"),
        ({"cert_validation": ""}, "ca_bundle: is empty"),
        ({"cert_validation": 0}, "cert_validation: expected true, false or a CA bundle path"),
        ({"proxy": "proxy.contoso.com:8080"}, "is not a proxy URL like"),
        ({"proxy": "ftp://proxy"}, "is not a proxy URL like"),
        ({"proxy": "http://proxy:99999"}, "is not a proxy URL"),
        ({"proxy": "http://user:pw@proxy:8080"}, "credentials in the proxy URL"),
        ({"proxy": "http://pro xy:8080"}, "is not a proxy URL"),
        ({"configuration_name": "Microsoft PowerShell"}, "configuration_name: 'Microsoft PowerShell' is not"),
        ({"configuration_name": "http://schemas.microsoft.com/powershell/x"}, "configuration_name:"),
        ({"negotiate_service": "WSMAN/fe01"}, "negotiate_service: 'WSMAN/fe01' is not a valid name"),
        ({"path": ""}, "path: is empty"),
        ({"path": "/"}, "path: is empty"),
        ({"path": "wsman/../admin"}, "is not a URL path ocsps accepts"),
        ({"connect_address": "not a host"}, "connect_address: not a valid host name"),
    ],
)
def test_invalid_settings(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        make(**changes)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_basic_over_http_with_encryption_never_is_allowed() -> None:
    s = make(auth="basic", username="u", password=Secret("p"), ssl=False, encryption="never")
    assert s.cleartext


def test_basic_password_must_be_latin1() -> None:
    with pytest.raises(UsageError, match="Latin-1") as caught:
        make(auth="basic", username="u", password=Secret("p\u20ac55"))
    assert "\u20ac" not in str(caught.value)


def test_kerberos_and_negotiate_need_no_username() -> None:
    assert not make(auth="kerberos").needs_password
    assert not make(auth="negotiate").needs_password
    assert not make(auth="ntlm").needs_password  # Windows logon or NTLM_USER_FILE
    assert make(auth="ntlm", username="u").needs_password
    assert make(auth="negotiate", username="u").needs_password
    assert not make(auth="kerberos", username="u@CONTOSO.COM").needs_password
    assert not make(auth="ntlm", username="u", password=Secret("p")).needs_password


@pytest.mark.parametrize(
    "host",
    [
        "fe01",
        "fe01.contoso.com",
        "FE01.CONTOSO.COM",
        "sip-fe-01.pool_a.contoso.com",
        "10.0.0.1",
        "::1",
        "2001:db8::1",
        "[2001:db8::1]",
        "xn--bcher-kva.example",
        "a" * 63 + ".com",
        ".".join(["a" * 63] * 3 + ["b" * 61]),
    ],
)
def test_valid_hosts(host: str) -> None:
    assert check_host(host) == host.strip("[]")


HOSTILE = [
    "fe01'",
    'fe01"',
    "fe01;reboot",
    "$(Stop-Computer)",
    "fe01`n",
    "fe01\nfe02",
    "fe01\r\n",
    "fe01\x00",
    "fe01|calc",
    "fe01&calc",
    "fe01>out",
    "fe01 fe02",
    "fe01\t",
    "@(1,2)",
    "{fe01}",
    "fe01\u202e",
    "\u2028fe01",
    "x" * 100_000,
]


HOSTILE_CASES = [
    (field, value)
    for field in ("host", "connect_address", "username", "path")
    for value in HOSTILE
    if not (field == "username" and value == "fe01 fe02")  # account names may contain inner spaces
]


@pytest.mark.parametrize(
    ("field", "value"), HOSTILE_CASES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(HOSTILE_CASES)]
)
def test_hostile_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(UsageError) as caught:
        make(**{field: value})
    message = str(caught.value)
    assert message.startswith(f"{field}: ")
    assert "\n" not in message and "\r" not in message and "\x00" not in message and "\u2028" not in message
    assert len(message) < 300


@pytest.mark.parametrize(
    "username", ["lyncadmin", "CONTOSO\\lyncadmin", "admin@contoso.com", "Jane Doe", "m\u00fcller"]
)
def test_valid_usernames(username: str) -> None:
    assert make(username=username).username == username


@pytest.mark.parametrize("username", ["\\user", "DOMAIN\\", "a\\b\\c", "@contoso.com", "a@b@c", " admin", ""])
def test_malformed_usernames(username: str) -> None:
    with pytest.raises(UsageError, match=r"^username: "):
        make(username=username)


@pytest.mark.parametrize("path", ["wsman", "OcsPowershell", "wsman?PSVersion=5.1", "a/b-c/d_e.f~g"])
def test_valid_paths(path: str) -> None:
    assert make(path=path).path == path


# --------------------------------------------------------------------------------- pypsrp and JSON views


def _wsman_parameters() -> set[str]:
    from pypsrp.wsman import AUTH_KWARGS, WSMan

    names = set(inspect.signature(WSMan.__init__).parameters) - {"self", "kwargs"}
    return names | {k for ks in AUTH_KWARGS.values() for k in ks}


SAMPLES = [
    make(),
    make(auth="kerberos", username="admin@CONTOSO.COM", connect_address="10.0.0.11"),
    make(auth="ntlm", ssl=False, username="LAB\\admin", password=Secret("pw"), connect_address="127.0.0.1"),
    make(auth="credssp", username="CONTOSO\\admin", password=Secret("pw"), cert_validation="/etc/ca.pem"),
    make(auth="basic", username="admin", password=Secret("pw"), ssl=False, encryption="never", port=8080),
    make(auth="certificate", certificate_pem="c.pem", certificate_key_pem="k.pem", cert_validation=False),
    make(proxy="http://proxy.contoso.com:3128", no_proxy=False, read_timeout=90.5, operation_timeout=60),
]


@pytest.mark.parametrize("settings", SAMPLES, ids=[s.auth for s in SAMPLES])
def test_wsman_kwargs_are_accepted_by_pypsrp(settings: ConnectionSettings) -> None:
    from pypsrp.wsman import WSMan

    kwargs = settings.wsman_kwargs()
    assert set(kwargs) <= _wsman_parameters()
    wsman = WSMan(**kwargs)  # builds the transport only; nothing is sent
    transport = wsman.transport
    assert transport.server == settings.address
    assert transport.port == settings.port
    assert transport.auth == settings.auth
    assert transport.cert_validation == settings.cert_validation
    expected = f"{'https' if settings.ssl else 'http'}://{settings.address}:{settings.port}/{settings.path}"
    assert transport.endpoint == expected
    assert wsman.operation_timeout == settings.operation_timeout
    if settings.auth == "certificate":
        assert "password" not in kwargs and transport.certificate_pem == "c.pem"
    else:
        assert transport.username == settings.username
        assert transport.password == (settings.password.reveal() if settings.password else None)


def test_whole_seconds_stay_integers_for_the_wsman_header() -> None:
    kwargs = make().wsman_kwargs()
    assert kwargs["operation_timeout"] == 20 and isinstance(kwargs["operation_timeout"], int)
    assert make(operation_timeout=2.5).wsman_kwargs()["operation_timeout"] == 2.5


def test_negotiate_service_only_for_negotiate_family() -> None:
    assert make(auth="kerberos").wsman_kwargs()["negotiate_service"] == "WSMAN"
    assert "negotiate_service" not in SAMPLES[3].wsman_kwargs()


def test_to_json_is_json_and_complete() -> None:
    s = make(auth="ntlm", username="u", password=Secret("pw"), product="lync2010")
    data = to_builtins(ConnectionSettingsDocument.of(s))
    text = json.dumps(data)
    assert "pw" not in text.replace("password_set", "")
    assert data["password_set"] is True
    assert data["endpoint"] == s.endpoint
    assert "password" not in data
    fields = {f for f in ConnectionSettings.__dataclass_fields__ if f != "password"}
    assert fields <= set(data)


def test_insecure_only_when_explicitly_disabled() -> None:
    assert make(cert_validation=False).insecure
    assert not make(cert_validation="/etc/ca.pem").insecure
    assert to_builtins(ConnectionSettingsDocument.of(make(cert_validation=False)))["insecure"] is True


def test_check_local_files(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x", encoding="utf-8")
    make(cert_validation=str(ca)).check_local_files()
    with pytest.raises(UsageError, match="ca_bundle: file not found"):
        make(cert_validation=str(tmp_path / "missing.pem")).check_local_files()
    cert = make(auth="certificate", certificate_pem=str(ca), certificate_key_pem=str(tmp_path / "k.pem"))
    with pytest.raises(UsageError, match="certificate_key_pem: file not found"):
        cert.check_local_files()


def test_tables_agree() -> None:
    settable = set(ConnectionSettings.__dataclass_fields__) - {"password", "cert_validation"}
    assert settable | {"verify", "ca_bundle"} == set(OPTIONS)
    assert {o.env for o in OPTIONS.values()} >= {"OCSPS_HOST", "OCSPS_PORT", "OCSPS_SSL", "OCSPS_AUTH"}
    assert PRODUCTS[0] == "ocs2007" and "certificate" in AUTH_METHODS


def test_importing_does_not_load_pypsrp() -> None:
    """``ocsps --help`` must stay fast: settings, config and hosts files are plain Python."""
    code = (
        "import sys, ocsps.remote.settings, ocsps.remote.profiles, ocsps.remote.hosts; "
        "heavy = ('pypsrp', 'requests', 'spnego', 'psrpcore', 'platformdirs'); "
        "bad = sorted(m for m in heavy if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_product_ids_come_from_the_catalog_only_when_a_product_is_checked() -> None:
    """The product list has one home, the catalog; importing settings must not load it (start-up)."""
    code = (
        "import sys, ocsps.remote.settings as s; "
        "before = 'ocsps.catalog' in sys.modules; "
        "s.ConnectionSettings(host='fe01.contoso.com'); "
        "unused = 'ocsps.catalog' in sys.modules; "
        "s.ConnectionSettings(host='fe01.contoso.com', product='SFB2015'); "
        "print(before, unused, 'ocsps.catalog' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]
    from ocsps.catalog import load_catalog

    products = load_catalog().products
    assert list(PRODUCTS) == sorted(products, key=lambda pid: products[pid].order)
    assert ConnectionSettings(host="h", product="Lync2010").product == "lync2010"


# ------------------------------------------------------------------------ auth packages and delegation


def test_kerberos_delegation_is_a_setting_passed_to_pypsrp() -> None:
    settings = ConnectionSettings(host="fe01.contoso.com", auth="kerberos", negotiate_delegate=True)
    assert settings.wsman_kwargs()["negotiate_delegate"] is True
    assert to_builtins(ConnectionSettingsDocument.of(settings))["negotiate_delegate"] is True
    assert "negotiate_delegate" not in ConnectionSettings(host="fe01.contoso.com").wsman_kwargs()
    resolved = resolve_settings(
        {"host": "fe01.contoso.com", "auth": "negotiate"},
        {"OCSPS_NEGOTIATE_DELEGATE": "true"},
        None,
        None,
        None,
    )
    assert resolved.negotiate_delegate is True


def test_delegation_needs_kerberos() -> None:
    with pytest.raises(UsageError, match="negotiate_delegate needs auth kerberos or negotiate"):
        ConnectionSettings(
            host="fe01.contoso.com", auth="ntlm", username="C\\a", password="x", negotiate_delegate=True
        )


@pytest.mark.parametrize(("auth", "module", "extra"), [("credssp", "requests_credssp", "credssp")])
def test_a_missing_auth_package_is_a_usage_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, auth: str, module: str, extra: str
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    settings = ConnectionSettings(host="fe01.contoso.com", auth=auth, username="C\\a", password="x")
    with pytest.raises(UsageError) as caught:
        settings.check_installed()
    assert caught.value.exit_code == 2 and module in caught.value.message
    assert caught.value.hint == f"pip install 'ocsps[{extra}]'"
    from ocsps.remote.session import ServerSession

    session = ServerSession(settings, load_catalog().product("sfb2015"))
    with pytest.raises(UsageError):
        session.open()  # the library says the same before anything is sent


def test_the_auth_extras_map_to_pypsrp() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("pypsrp[credssp]") for req in extras["credssp"])
    assert any(req.startswith("pypsrp[kerberos]") for req in extras["kerberos"])
