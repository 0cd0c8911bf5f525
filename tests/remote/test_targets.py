"""``ocsps.remote.targets``: the one place the CLI and the Ansible modules resolve and check their servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocsps.errors import UsageError
from ocsps.remote.targets import Target, pool_servers, resolve_targets

A, B, C = "fe01.contoso.com", "fe02.contoso.com", "fe03.contoso.com"
BASE: dict[str, object] = {"product": "sfb2015", "auth": "ntlm", "username": "CONTOSO\\admin"}


def _env() -> dict[str, str]:
    return {**os.environ, "OCSPS_PASSWORD": "pw"}


def _resolve(
    flags: dict[str, object],
    hosts: list[str],
    per_host: dict[str, dict[str, object]] | None = None,
    warned: list[str] | None = None,
) -> list[Target]:
    return resolve_targets(
        {**BASE, **flags},
        [(h, None) for h in hosts],
        env=_env(),
        per_host=per_host,
        warn=None if warned is None else warned.append,
    )


def test_every_host_shares_the_settings_and_a_host_port_is_its_own() -> None:
    targets = resolve_targets(BASE, [(A, None), (B, 5999)], env=_env())
    assert [(t.host, t.settings.port, t.product.id) for t in targets] == [
        (A, 5986, "sfb2015"),
        (B, 5999, "sfb2015"),
    ]


def test_a_host_with_its_own_options_is_resolved_with_them_and_the_password_is_kept() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    targets = resolve_targets(
        BASE, [(A, None), (B, None)], env=dict(os.environ), prompt=prompt, per_host={B.upper(): {"path": "b"}}
    )
    assert [t.settings.path for t in targets] == ["wsman", "b"]
    assert len(asked) == 1, "the password is asked for once for the whole run"
    assert all(t.settings.password is not None and t.settings.password.reveal() == "typed" for t in targets)


@pytest.mark.parametrize(
    ("flags", "per_host", "message"),
    [
        ({"connect_address": "10.0.0.15"}, None, f"{A}, {B} would all be reached at 10.0.0.15"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, None, "ca_bundle: file not found"),
        ({}, {B: {"ca_bundle": "/nonexistent/b.pem"}}, "ca_bundle: file not found"),
        ({"product": None}, None, "which product do the servers run"),
        ({}, {B: {"product": "nonesuch"}}, "nonesuch"),
    ],
)
def test_refused_before_anything_is_sent(
    flags: dict[str, object], per_host: dict[str, dict[str, object]] | None, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        _resolve(flags, [A, B], per_host)
    assert message in caught.value.message


def test_distinct_ports_on_one_address_are_distinct_endpoints() -> None:
    targets = _resolve({"connect_address": "10.0.0.15"}, [A, B], {B: {"port": 5999}})
    assert [t.settings.port for t in targets] == [5986, 5999]


def test_each_transport_warning_is_told_once_and_a_host_of_its_own_adds_its_own() -> None:
    warned: list[str] = []
    _resolve({"verify": False}, [A, B, C], {C: {"ssl": False, "encryption": "never"}}, warned)
    assert len(warned) == 2
    assert "TLS certificate validation is OFF" in warned[0]
    assert "CLEAR TEXT" in warned[1]


def test_a_protected_connection_warns_of_nothing() -> None:
    warned: list[str] = []
    _resolve({}, [A, B], None, warned)
    assert warned == []


def test_pool_members_must_run_one_product() -> None:
    targets = _resolve({}, [A, B], {B: {"product": "sfb2019"}})
    with pytest.raises(UsageError, match=r"the members of pool01\.contoso\.com run different products"):
        pool_servers(targets, [A, B], "pool01.contoso.com", 60.0)


def test_pool_members_need_settings_and_come_back_in_the_order_given() -> None:
    targets = _resolve({}, [A, B])
    with pytest.raises(UsageError, match=f"no connection settings for {C}"):
        pool_servers(targets, [A, C], "pool01.contoso.com", 60.0)
    _factory, product, members = pool_servers(targets, [B.upper(), A], "pool01.contoso.com", 60.0)
    assert (product.id, members) == ("sfb2015", [B, A])


def test_pool_member_servers_audit_the_step_script_as_a_line_count(tmp_path: Path) -> None:
    import json

    from tests.audit.test_recorder import FakeRendered

    targets = _resolve({"verify": False}, [A, B])
    factory, _product, _members = pool_servers(targets, [A, B], "pool01.contoso.com", 60.0, change_id="CHG-7")
    server = factory(B)
    assert server.session.audit is not None
    server.session.audit(FakeRendered({"StepScript": ["a", "b", "c"], "Computer": B}), None, "ok", 0.5)  # type: ignore[arg-type]
    (line,) = Path(os.environ["OCSPS_AUDIT_LOG"]).read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["host"] == B and entry["change_id"] == "CHG-7"
    assert entry["parameters"] == {"Computer": B, "StepScriptLines": 3}
    assert "TLS certificate validation is OFF" in entry["detail"]
    assert server.session.warn_transport is False
