"""Passwords must never leak: not through repr, str, JSON, logs or any error message."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from ocsps.errors import UsageError
from ocsps.jsonout import to_builtins
from ocsps.remote.profiles import parse_config, resolve_settings
from ocsps.remote.settings import ConnectionSettings, ConnectionSettingsDocument, Secret

PASSWORD = "Tr0ub4dor&3-unique-marker"


def lab_settings() -> ConnectionSettings:
    return ConnectionSettings(
        host="med01.contoso.com",
        connect_address="127.0.0.1",
        ssl=False,
        auth="ntlm",
        username="LAB\\admin",
        password=Secret(PASSWORD),
    )


def test_secret_is_masked_everywhere() -> None:
    secret = Secret(PASSWORD)
    assert repr(secret) == "******"
    assert str(secret) == "******"
    assert f"{secret}" == "******" and f"{secret!r}" == "******" and f"{secret:>20}" == "******"
    assert "%s %r" % (secret, secret) == "****** ******"  # noqa: UP031
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD) and secret != Secret("other")
    assert hash(secret) == hash(Secret(PASSWORD))
    assert bool(secret) and not bool(Secret(""))
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[arg-type]


def test_settings_views_do_not_contain_the_password() -> None:
    s = lab_settings()
    document = json.dumps(to_builtins(ConnectionSettingsDocument.of(s)))
    for text in (repr(s), str(s), document, s.endpoint, f"{s}"):
        assert PASSWORD not in text
    assert to_builtins(ConnectionSettingsDocument.of(s))["password_set"] is True
    assert "password" not in ConnectionSettingsDocument.__struct_fields__


def test_the_encoder_refuses_the_settings_object_with_its_password() -> None:
    """Only the document is written: the settings themselves hold a ``Secret``, which no encoder writes."""
    with pytest.raises(TypeError, match="Secret") as caught:
        to_builtins(lab_settings())
    assert PASSWORD not in str(caught.value)


def test_only_wsman_kwargs_reveals_it() -> None:
    assert lab_settings().wsman_kwargs()["password"] == PASSWORD


def test_password_survives_copy_and_pickle_but_stays_masked() -> None:
    s = lab_settings()
    copied = pickle.loads(pickle.dumps(s))
    assert copied == s and PASSWORD not in repr(copied)


def test_logging_settings_does_not_leak(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("ocsps.test").debug(
            "connecting with %s / %r", lab_settings(), lab_settings().password
        )
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(
    "changes",
    [
        {"host": "bad host"},
        {"port": 0.5},
        {"auth": "basic", "ssl": False},
        {"read_timeout": 1},
        {"path": "x;y"},
        {"proxy": "http://u:p@proxy"},
        {"username": "admin;rm"},
        {"username": None},
    ],
)
def test_validation_errors_never_contain_the_password(changes: dict[str, object]) -> None:
    with pytest.raises(UsageError) as caught:
        lab_settings().with_(**changes)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)
    assert all(PASSWORD not in str(arg) for arg in caught.value.args)


def test_basic_latin1_error_does_not_show_the_password() -> None:
    hostile = "p\u20acss" + PASSWORD
    with pytest.raises(UsageError) as caught:
        ConnectionSettings(host="fe01", auth="basic", username="u", password=Secret(hostile))
    assert hostile not in str(caught.value) and PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "env_extra",
    [
        {"OCSPS_HOST": "fe01;reboot"},
        {"OCSPS_PORT": "x"},
        {"OCSPS_AUTH": "basic", "OCSPS_SSL": "false"},
        {"OCSPS_READ_TIMEOUT": "5"},
        {"OCSPS_PROFILE": "missing"},
    ],
)
def test_resolve_errors_never_contain_the_password(env_extra: dict[str, str]) -> None:
    cfg = parse_config('[profiles.lab]\nhost = "127.0.0.1"\nauth = "ntlm"\nusername = "u"\n', source="c.toml")
    env = {"OCSPS_PASSWORD": PASSWORD, "OCSPS_USERNAME": "u", **env_extra}
    with pytest.raises(UsageError) as caught:
        resolve_settings({}, env, cfg, None, None)
    assert PASSWORD not in str(caught.value)


def test_resolved_password_is_wrapped() -> None:
    s = resolve_settings({"host": "fe01", "username": "u"}, {"OCSPS_PASSWORD": PASSWORD}, None, None, None)
    assert isinstance(s.password, Secret)
    document = json.dumps(to_builtins(ConnectionSettingsDocument.of(s)))
    assert PASSWORD not in repr(s) and PASSWORD not in document


def test_prompted_password_is_wrapped() -> None:
    s = resolve_settings({"host": "fe01", "username": "u"}, {}, None, None, lambda _: PASSWORD)
    assert isinstance(s.password, Secret)
    assert PASSWORD not in repr(s)


def test_password_in_config_file_is_refused_without_echo() -> None:
    with pytest.raises(UsageError) as caught:
        parse_config(f'[profiles.lab]\npassword = "{PASSWORD}"\n', source="c.toml")
    assert PASSWORD not in str(caught.value)
