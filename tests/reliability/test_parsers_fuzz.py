"""Parsers under fuzz: random and malformed input gives a typed error (an ``OcspsError``), never a crash.

Every parser of user files or server output gets both random text and structured input built from the
keys it knows with values of every TOML/JSON type, so that the fuzzer reaches the branches that check
types and ranges. A hang would trip the suite's timeout; nothing here measures time.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsps.durations import parse_duration
from ocsps.errors import OcspsError
from ocsps.jsonout import to_builtins
from ocsps.lab import pool_sim
from ocsps.lab import topology as lab_topology
from ocsps.lab.topology import parse_topology
from ocsps.plans.sealed import parse_plan, restart_steps, seal
from ocsps.remote.hosts import parse_hosts_file
from ocsps.remote.profiles import parse_config
from ocsps.remote.settings import OPTIONS
from ocsps.results import (
    parse_activity_level,
    parse_event_record,
    parse_lcscmd_outcome,
    parse_queue_privacy,
    parse_service_status,
    parse_wmi_setting,
)
from ocsps.results.lcscmd_log import parse_lcscmd_log
from tests.reliability import figures

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _typed(section: str, parse: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one parser on one input; count it; let only ``OcspsError`` through as a refusal."""
    figures.add("fuzz", section)
    figures.add("fuzz", "examples")
    try:
        return parse(*args, **kwargs)
    except OcspsError as exc:
        assert str(exc), "a refusal says why"
        figures.add("fuzz", "refused")
        return None
    except Exception:
        figures.add("fuzz", "crashes")
        raise


# ------------------------------------------------------------------------------- value strategies
_TOML_WORDS = [
    "true",
    "false",
    "0",
    "-1",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "3.5",
    "1979-05-27",
    "07:32:00",
    "1979-05-27T07:32:00Z",
    '""',
    "''",
    "[]",
    "{}",
    '["a", 1]',
    "[[1]]",
    "{ a = 1 }",
    '"med01.contoso.com"',
    '"sfb2015"',
    '"ocs2007r2"',
    '"RTCMEDSRV"',
    '"MediationServer"',
    '"FrontEnd"',
    '"LAB\\\\admin"',
    '"ntlm"',
    '"basic"',
    '"Body"',
    "99999999999999999999",
    '"\\u0000"',
    '"a\\nb"',
    '"../../etc/passwd"',
]


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string (lone surrogates make TOML refuse it)


_SCALAR = st.one_of(
    st.sampled_from(_TOML_WORDS),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=20).map(_toml_string),
)
_TOML_VALUE = st.one_of(
    _SCALAR,
    st.lists(_SCALAR, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(st.tuples(st.sampled_from(["a", "b", "x"]), _SCALAR), max_size=2, unique_by=lambda p: p[0]).map(
        lambda items: "{ " + ", ".join(f"{k} = {v}" for k, v in items) + " }"
    ),
)
_NOISE = st.one_of(st.text(max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


@st.composite
def _mutated(draw: st.DrawFn, base: dict[str, dict[str, str]], keys: dict[str, list[str]]) -> str:
    """A valid TOML document with one or two keys set to random values: each check meets bad data alone."""
    tables = {name: dict(values) for name, values in base.items()}
    for _ in range(draw(st.integers(1, 2))):
        table = draw(st.sampled_from(sorted(keys)))
        tables.setdefault(table, {})[draw(st.sampled_from(keys[table]))] = draw(_TOML_VALUE)
    return "".join(
        f"{name}\n" + "".join(f"{json.dumps(k)} = {v}\n" for k, v in values.items())
        for name, values in tables.items()
    )


# ---------------------------------------------------------------------------------------- topology
_SERVER_KEYS = sorted(getattr(lab_topology, "_SERVER_KEYS", {"fqdn", "product", "roles"}))
_POOL_KEYS = sorted(getattr(pool_sim, "POOL_KEYS", {"fqdn", "site", "product"}))
_TOPOLOGY_BASE = {
    "[lab]": {"username": '"LAB\\\\admin"'},
    "[[pools]]": {"fqdn": '"pool01.contoso.com"', "product": '"sfb2015"'},
    "[[servers]]": {
        "fqdn": '"fe01.contoso.com"',
        "product": '"sfb2015"',
        "roles": '["FrontEnd"]',
        "pool": '"pool01.contoso.com"',
    },
    "[servers.activity.RTCSRV]": {"Messages in Server": "1"},
    "[servers.faults]": {"latency_ms": "0"},
}
_TOPOLOGY_KEYS = {
    "[lab]": ["username", "password", "auth", "other"],
    "[[pools]]": _POOL_KEYS,
    "[[servers]]": _SERVER_KEYS,
    "[servers.activity.RTCSRV]": ["Messages in Server", "x"],
    "[servers.faults]": ["latency_ms", "stuck", "other"],
}


@FUZZ
@given(st.one_of(_mutated(_TOPOLOGY_BASE, _TOPOLOGY_KEYS), _NOISE))
def test_topology_files(text: str) -> None:
    _typed("topology", parse_topology, text, source="fuzz.toml")


# ------------------------------------------------------------------------------------------ config
_CONFIG_KEYS = [*OPTIONS, "password", "unknown"]
_CONFIG_BASE = {
    "[default]": {"auth": '"ntlm"', "username": '"LAB\\\\admin"'},
    '[profiles."lab"]': {"host": '"med01.contoso.com"', "ssl": "false", "encryption": '"auto"'},
}


@FUZZ
@given(st.one_of(_mutated(_CONFIG_BASE, {t: _CONFIG_KEYS for t in _CONFIG_BASE}), _NOISE))
def test_config_files(text: str) -> None:
    config = _typed("config", parse_config, text, source="fuzz.toml")
    if config is not None:
        for name in (None, *config.profile_names):
            _typed("config", config.layers, name)


# -------------------------------------------------------------------------------------------- plans
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_STEP = st.fixed_dictionaries(
    {},
    optional={
        "step": _JSON,
        "do": st.one_of(st.sampled_from(["stop", "start", "restart", ""]), _JSON),
        "key": st.one_of(st.sampled_from(["ocs-frontend", "mediation", "RTCSRV", ""]), _JSON),
    },
)
_PLAN = st.fixed_dictionaries(
    {},
    optional={
        "product": st.one_of(st.sampled_from(["ocs2007r2", "ocs2007", "sfb2015", ""]), _JSON),
        "steps": st.one_of(st.lists(_STEP, max_size=4), _JSON),
        "services": _JSON,
    },
)


@FUZZ
@given(st.one_of(_PLAN, _JSON), st.booleans())
def test_plan_files(plan: Any, sealed: bool) -> None:
    """Sealed plans (as written) and edited ones: parse, then turn into steps, or refuse."""
    if sealed and isinstance(plan, dict):
        text = json.dumps(seal("restart", plan), indent=2, ensure_ascii=False) + "\n"
    else:
        text = json.dumps({"ocsps_plan": "restart", "plan": plan, "sha256": "0" * 64})
    loaded = _typed("plan", parse_plan, text, "restart", source="fuzz.json", reapprove=not sealed)
    if loaded is not None:
        _typed("plan", restart_steps, loaded)


@FUZZ
@given(_NOISE)
def test_plan_files_random_text(text: str) -> None:
    _typed("plan", parse_plan, text, "restart", source="fuzz.json")


# -------------------------------------------------------------------------------------------- hosts
_HOST_PIECES = st.sampled_from(
    [
        "med01.contoso.com",
        "fe01",
        "[::1]",
        "::1",
        "10.0.0.1",
        ":5986",
        ":0",
        ":99999",
        "#",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\ufeff",
        "https://",
        "/",
        "\\",
        "[",
        "]",
        "..",
        "-",
        "_",
        "\x00",
        "é",
    ]
)


@FUZZ
@given(st.one_of(st.lists(_HOST_PIECES | st.text(max_size=6), max_size=12).map("".join), _NOISE))
def test_hosts_files(text: str) -> None:
    entries = _typed("hosts", parse_hosts_file, text, source="fuzz.txt")
    if entries is not None:
        assert all(e.host and "\n" not in e.host for e in entries)


# ------------------------------------------------------------------------- server output and values
_PS_FIELDS = [
    "Name",
    "DisplayName",
    "Status",
    "ActivityLevel",
    "ComputerName",
    "RoleName",
    "Id",
    "TimeCreated",
    "LevelDisplayName",
    "ProviderName",
    "Message",
    "MachineName",
    "LogName",
    "ExitCode",
    "StdOut",
    "StdErr",
    "LogPath",
    "LogText",
    "QueuePath",
    "PrivacyLevel",
    "MsmqInstalled",
    "AdIntegrated",
    "Exists",
    "Class",
    "Property",
    "Value",
    "InstanceId",
]
_OBJECT = st.one_of(
    st.dictionaries(st.sampled_from(_PS_FIELDS), _JSON, max_size=8),
    _JSON,
    st.binary(max_size=20),
)
_OUTPUT_PARSERS = [
    parse_service_status,
    parse_event_record,
    parse_lcscmd_outcome,
    parse_queue_privacy,
    parse_wmi_setting,
    parse_activity_level,
]


@FUZZ
@given(_OBJECT, st.sampled_from(_OUTPUT_PARSERS))
def test_server_output(obj: Any, parse: Any) -> None:
    section = "activity" if parse is parse_activity_level else "output"
    _typed(section, parse, obj)


def _deep(depth: int) -> Any:
    nested: Any = "x"
    for _ in range(depth):
        nested = [nested]
    return nested


def _looped(items: list[Any]) -> list[Any]:
    items = list(items)
    items.append(items)
    return items


# Values no server should send but a broken or hostile one can: numbers past Python's int/str limit
# (4,300 digits), lists nested past the recursion limit, lists that contain themselves.
_MALFORMED = st.one_of(
    st.integers(4301, 6000).map(lambda n: "9" * n),
    st.integers(4301, 6000).map(lambda n: "/Date(" + "1" * n + ")/"),
    st.integers(4301, 6000).map(lambda n: "Inbound Calls=" + "7" * n),
    st.integers(21, 400).map(lambda n: "Inbound Calls=" + "7" * n),
    st.integers(13_000, 20_000).map(lambda bits: 2**bits),
    st.integers(2_000, 50_000).map(_deep),
    st.lists(st.text(max_size=5), max_size=3).map(_looped),
)


@FUZZ
@given(
    st.dictionaries(st.sampled_from(_PS_FIELDS), _MALFORMED, min_size=1, max_size=3),
    st.sampled_from(_OUTPUT_PARSERS),
)
def test_server_output_with_malformed_values(fields: dict[str, Any], parse: Any) -> None:
    base = {"Name": "RTCMEDSRV", "Status": "Running", "Id": 25003, "TimeCreated": "2011-06-14T22:05:00Z"}
    section = "activity" if parse is parse_activity_level else "output"
    obj = fields.get("ActivityLevel") if parse is parse_activity_level else {**base, **fields}
    result = _typed(section, parse, obj)
    if result is not None:
        json.dumps(to_builtins(result))  # what was accepted must still print as JSON


@FUZZ
@given(st.one_of(st.text(max_size=200), st.lists(st.text(max_size=30), max_size=5)))
def test_activity_level_text(value: Any) -> None:
    _typed("activity", parse_activity_level, value)


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_lcscmd_logs(data: bytes | str) -> None:
    _typed("lcscmd", parse_lcscmd_log, data)
    log = parse_lcscmd_log(data, strict=False)  # the lenient form never raises
    assert log.error or log.tasks


@FUZZ
@given(
    st.one_of(
        st.lists(
            st.sampled_from(["1", "90", "0", "0.5", "h", "m", "s", " ", ".", "-", "1e9", "٣"]), max_size=6
        ).map("".join),
        st.text(max_size=12),
    )
)
def test_durations(text: str) -> None:
    seconds = _typed("durations", parse_duration, text)
    if seconds is not None:
        assert 0 < seconds <= 7 * 24 * 3600
