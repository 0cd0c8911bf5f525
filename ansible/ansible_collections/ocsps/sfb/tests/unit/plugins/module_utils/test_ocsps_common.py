"""Per-member connection overrides: checked before anything connects."""

from __future__ import annotations

import pytest

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import member_overrides

pytest.importorskip("ocsps")

MEMBERS = ["fe01.contoso.com", "FE02.contoso.com"]


def test_overrides_are_keyed_by_member_without_regard_to_case():
    found = member_overrides(MEMBERS, {"fe02.CONTOSO.com": {"path": "wsman/fe02", "port": "5985"}})
    assert found == {"fe02.contoso.com": {"path": "wsman/fe02", "port": "5985"}}


@pytest.mark.parametrize(("raw", "message"), [
    ({"fe09.contoso.com": {"path": "x"}}, "not in members"),
    ({"fe01.contoso.com": {"password": "x"}}, "not allowed here"),
    ({"fe01.contoso.com": {"host": "other"}}, "not allowed here"),
    ({"fe01.contoso.com": {"prot": 5985}}, "unknown connection option"),
    ({"fe01.contoso.com": "wsman/fe01"}, "expected a table"),
])
def test_bad_overrides_are_refused_with_the_key(raw, message):
    from ocsps.errors import UsageError

    with pytest.raises(UsageError, match=message):
        member_overrides(MEMBERS, raw)


# ---------------------------------------------------------------- the same servers, checks and audit as the CLI
class _Module:
    """What the shared helpers use of an AnsibleModule: its params and its warnings."""

    def __init__(self, **params):
        from ansible_collections.ocsps.sfb.plugins.module_utils.connection_spec import CONNECTION_ARGUMENT_SPEC

        self.params = {key: None for key in CONNECTION_ARGUMENT_SPEC}
        self.params.update(call_timeout=60.0, member_overrides={}, change_id="")
        self.params.update(params)
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)


@pytest.fixture
def audit_log(tmp_path, monkeypatch):
    """A private audit log and an empty config file; no connection variables from the caller."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(path))
    for name in ("OCSPS_PROFILE", "OCSPS_HOST", "OCSPS_PASSWORD", "OCSPS_PRODUCT", "OCSPS_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OCSPS_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    (tmp_path / "config.toml").chmod(0o600)
    return path


class _Rendered:
    action = "service-stop"
    body_sha256 = "cd" * 32

    def __init__(self, **bound):
        self.bound_parameters = bound


def _record(server, **bound):
    server.session.audit(_Rendered(**bound), None, "ok", 0.25)


def _entries(path):
    import json

    found = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for entry in found:
        entry.pop("time")
    return found


UNPROTECTED = [
    # (module options, the same as CLI options)
    (dict(verify=False), dict(no_verify_tls=True)),
    (dict(ssl=False, encryption="never", auth="basic"), None),
]


@pytest.mark.parametrize(("options", "cli"), UNPROTECTED)
def test_module_audit_record_and_warning_match_the_cli(audit_log, monkeypatch, options, cli):
    """A module's record of a call carries the transport warnings in detail, as the CLI's does."""
    from ocsps.cli.targets import TargetOptions, audited_server, resolve_targets

    from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import open_server

    monkeypatch.setenv("OCSPS_PASSWORD", "pw")
    common = dict(host="fe01.contoso.com", product="sfb2015", username="CONTOSO\\admin")
    module = _Module(**common, **options)
    _record(open_server(module, 60.0), Name="RTCSRV")
    if cli is None:  # options the command line takes only from the environment or a profile
        for key, value in options.items():
            monkeypatch.setenv(f"OCSPS_{key.upper()}", str(value).lower())
        cli = {}
    monkeypatch.setenv("OCSPS_USERNAME", common["username"])
    (target,) = resolve_targets(TargetOptions(hosts=[common["host"]], product="sfb2015", **cli))
    _record(audited_server(target, 60.0), Name="RTCSRV")
    by_module, by_cli = _entries(audit_log)
    assert by_module["detail"] and by_module == by_cli
    assert [w.rstrip(".") for w in module.warnings] == target.settings.transport_warnings()


def test_module_refuses_two_members_on_one_endpoint_like_the_cli(audit_log, monkeypatch):
    from ocsps.cli.targets import TargetOptions, resolve_targets
    from ocsps.errors import UsageError

    from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import pool_connections

    module = _Module(pool="pool01.contoso.com", members=MEMBERS, product="sfb2015", connect_address="10.0.0.15")
    with pytest.raises(UsageError, match="would all be reached at 10.0.0.15") as by_module:
        pool_connections(module)
    monkeypatch.setenv("OCSPS_CONNECT_ADDRESS", "10.0.0.15")
    with pytest.raises(UsageError) as by_cli:
        resolve_targets(TargetOptions(hosts=MEMBERS, product="sfb2015"))
    assert by_module.value.message == by_cli.value.message


@pytest.mark.parametrize(("options", "message"), [
    (dict(ca_bundle="/nonexistent/ca.pem"), "ca_bundle: file not found"),
    (dict(product=None), "which product do the servers run"),
])
def test_module_refuses_what_the_cli_refuses_before_connecting(audit_log, options, message):
    from ocsps.errors import UsageError

    from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import open_server

    module = _Module(host="fe01.contoso.com", product="sfb2015")
    module.params.update(options)
    with pytest.raises(UsageError, match=message):
        open_server(module)


def test_pool_module_servers_audit_the_step_script_as_a_line_count(audit_log):
    from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import pool_connections

    module = _Module(pool="pool01.contoso.com", members=MEMBERS, product="sfb2015", change_id="CHG-5")
    factory, product, members = pool_connections(module)
    assert (product.id, members) == ("sfb2015", MEMBERS)
    _record(factory("fe02.contoso.com"), StepScript=["Stop-Thing", "Start-Thing"])
    (entry,) = _entries(audit_log)
    assert entry["parameters"] == {"StepScriptLines": 2}
    assert entry["host"] == "FE02.contoso.com" and entry["change_id"] == "CHG-5"


def test_pool_members_on_different_products_are_refused(audit_log):
    from ocsps.errors import UsageError

    from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import pool_connections

    module = _Module(
        pool="pool01.contoso.com",
        members=MEMBERS,
        product="sfb2015",
        member_overrides={"fe02.contoso.com": {"product": "sfb2019"}},
    )
    with pytest.raises(UsageError, match="run different products: sfb2015, sfb2019"):
        pool_connections(module)
