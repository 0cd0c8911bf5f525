"""checks.toml and the lab keys the checks add: bad data fails loudly at load, naming what is wrong."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from ocsps.catalog import CatalogError, load_catalog
from ocsps.checks import load_checks, load_checks_data
from ocsps.checks.spec import parse_checks_data, placeholders
from ocsps.errors import UsageError
from ocsps.lab.topology import parse_topology


def _raw() -> dict[str, Any]:
    text = resources.files("ocsps.catalog").joinpath("data", "checks.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_every_check_in_the_data_has_its_module() -> None:
    assert list(load_checks()) == list(load_checks_data().checks)


def test_texts_name_only_values_their_rule_can_supply() -> None:
    """Placeholders stay few and known; a typo such as {qeue} would otherwise surface only mid-run."""
    allowed = {
        "product", "host", "check_source", "reason", "error", "action", "queue", "level", "looked_for",
        "count", "list", "source_name", "ref", "cert", "new_cert", "subject", "new_from", "not_after",
        "not_before", "days", "who", "expected", "granted", "detail", "ids", "log", "window", "user",
        "service", "module", "state", "actual", "note", "setting", "section", "changed_args", "settings",
        "why", "services", "roles", "role", "valid", "path", "precondition", "text", "busy", "how",
        "pool", "users", "cmdlet", "result", "latency", "diagnosis",
    }  # fmt: skip
    data = load_checks_data()
    rules = [r for spec in data.checks.values() for r in spec.rules.values()] + list(data.common.values())
    used = set()
    for rule in rules:
        for text in (rule.source, rule.fix, rule.consequence, *(o.text for o in rule.outcomes.values())):
            used |= placeholders(text)
    assert used <= allowed, used - allowed


def _mutate(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(_raw())
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["checks"]["archiving-queue"].update(products=["ocs2099"]), "unknown product ocs2099"),
        (lambda r: r["checks"]["archiving-queue"].update(actions=["stop"]), "action stop changes state"),
        (lambda r: r["checks"]["archiving-queue"].update(actions=["nope"]), "unknown action nope"),
        (
            lambda r: r["checks"]["archiving-queue"]["rules"][1]["outcomes"]["ok"].update(status="ok"),
            "status 'ok'; valid: pass, warn, fail, skip",
        ),
        (lambda r: r["checks"]["drain-ready"]["rules"][0].pop("outcomes"), "needs [outcomes.<name>]"),
        (lambda r: r["checks"]["drain-ready"].update(rules=[]), "needs [[rules]]"),
        (lambda r: r.update(extra={}), "unknown top-level key 'extra'"),
        (
            lambda r: r["checks"]["drain-ready"]["rules"].append(r["checks"]["drain-ready"]["rules"][0]),
            "duplicate rule",
        ),
    ],
)
def test_inconsistent_check_data_is_refused(change: Any, message: str) -> None:
    with pytest.raises(CatalogError, match=r"checks\.toml") as info:
        parse_checks_data(_mutate(change), load_catalog())
    assert message in str(info.value)


SERVER = '[[servers]]\nfqdn = "ocs01.contoso.com"\nproduct = "ocs2007r2"\nroles = ["FrontEnd"]\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("module_loads = 1\n", "module_loads must be true or false"),
        ('powershell = "five"\n', "powershell must look like 2.0"),
        ("[[servers.events]]\nid = 0\n", "id must be an event id"),
        ("[[servers.events]]\nid = 14347\nwhen = 3\n", "unknown key 'when'"),
        ('[[servers.certificates]]\nthumbprint = "AB"\n', "serial must be non-empty text"),
        (
            '[[servers.certificates]]\nthumbprint = "AB"\nserial = "01"\nsubject = "CN=a"\nissuer = "CN=b"\n'
            'key_readers = "everyone"\n',
            "key_readers must be a list",
        ),
        ("[servers.certificate_assignments]\nDefault = 3\n", "Default must be non-empty text"),
    ],
)
def test_bad_check_keys_in_a_topology_are_refused(extra: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_topology(SERVER + extra, source="t.toml")
    assert message in info.value.message and "ocs01.contoso.com" in info.value.message


def test_preloaded_events_and_certificates_follow_the_lab_clock() -> None:
    start = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()
    text = SERVER + (
        "[[servers.events]]\nid = 14347\nminutes_ago = 30\n"
        '[[servers.events]]\nid = 25003\nminutes_ago = 5\nlog = "Lync Server"\n'
        '[[servers.certificates]]\nthumbprint = "ab"\nserial = "01"\nsubject = "CN=a"\nissuer = "CN=b"\n'
        "valid_from_days = -10\nvalid_to_days = 20\n"
    )
    (server,) = parse_topology(text, source="t.toml", clock=lambda: start).servers
    first, second = server.events
    assert (first.id, first.log, first.time) == (14347, "Application", server.now() - timedelta(minutes=30))
    assert (second.id, second.log) == (25003, "Lync Server")
    (cert,) = server.certificates
    assert cert.thumbprint == "AB" and cert.key_readers is None
    assert cert.not_before == server.now() - timedelta(days=10)
