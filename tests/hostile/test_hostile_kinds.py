"""Every kind of value that reaches a script or a file, against the hostile corpus.

Kinds: every string parameter of every catalog action (service names, computer names, pool FQDNs, paths,
WMI classes, LcsCmd arguments...), the change-board fields (computer, change id, reason), command-line
values (--service, --host, --param, output file names), topology values and config values.

For each value: refused with a usage error (exit 2 on the command line) before anything is written or
sent; or rendered as exactly one literal under both grammars, and bound, never pasted, when sent; and,
against the lab, it arrives as the same bound value (the lab engine records what it was given). Values in
files are refused or kept exactly. Hypothesis extends the corpus with generated text. The counts go to
``tests.reliability.figures`` (printed at the end of the run and written to docs/reliability.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocsps.catalog import load_catalog
from ocsps.errors import UsageError
from ocsps.lab.estate import SimServer
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology
from ocsps.lab.wsman import PipelineSink
from ocsps.powershell import syntax
from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board, verify_script
from ocsps.powershell.quote import check_value
from ocsps.powershell.script import RenderedScript, render_action
from ocsps.remote.connector import lab_settings
from ocsps.remote.hosts import parse_hosts_file
from ocsps.remote.profiles import parse_config
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from ocsps.remote.settings import OPTIONS
from tests.cli_helpers import run_cli
from tests.reliability import figures

CORPUS: list[str] = json.loads((Path(__file__).parent / "strings.json").read_text())
MARKER = "ocspsmarker"
MED = "med01.contoso.com"
OCS = "ocs01.contoso.com"
CATALOG = load_catalog()


def count(outcome: str) -> None:
    figures.add("hostile", "tried")
    figures.add("hostile", outcome)


def refused_alike(value: str) -> bool:
    """Whether the quoting rules refuse ``value`` (so a refusal elsewhere is the expected one)."""
    try:
        check_value(value, what="value")
    except UsageError:
        return True
    return False


# ------------------------------------------------------------------------------ template parameters
@dataclass(frozen=True)
class ActionCase:
    action: str
    product: str
    strings: tuple[str, ...]  # parameters of type string
    lists: tuple[str, ...]  # parameters of type strings
    fixed: Mapping[str, object] = field(default_factory=dict)  # other required parameters

    def values(self, value: str) -> dict[str, object]:
        chosen: dict[str, object] = dict(self.fixed)
        chosen.update({name: value for name in self.strings})
        chosen.update({name: (value,) for name in self.lists})
        return chosen


def _cases() -> list[ActionCase]:
    cases = []
    for action in CATALOG.actions.values():
        products = [p for p in CATALOG.products.values() if p.service_control in action.templates]
        if not products:
            continue
        product = next((p for p in products if p.id in ("sfb2015", "ocs2007r2")), products[0])
        params = CATALOG.action_params(action, product)
        strings = tuple(p.name for p in params if p.type == "string")
        lists = tuple(p.name for p in params if p.type == "strings")
        fixed = {p.name: 1 for p in params if p.type == "int" and p.required}
        if strings or lists:
            cases.append(ActionCase(action.name, product.id, strings, lists, fixed))
    return cases


CASES = _cases()


def _render(case: ActionCase, value: str) -> RenderedScript:
    try:
        return render_action(case.action, case.product, case.values(value))
    except jinja2.TemplateNotFound:
        pytest.skip(f"{case.action}: its template is not there yet")


@pytest.mark.parametrize("case", CASES, ids=[f"{c.action}-{c.product}" for c in CASES])
def test_every_template_value_is_bound_or_refused(case: ActionCase) -> None:
    """The script text never depends on a value: values are bound exactly, or refused."""
    benign = _render(case, MARKER)
    for value in CORPUS:
        try:
            rendered = _render(case, value)
        except UsageError:
            assert refused_alike(value), f"{case.action} refused {value[:40]!r} for another reason"
            count("refused")
            continue
        if rendered.script != benign.script:
            count("escaped")
        assert rendered.script == benign.script, "a value changed the script text"
        bound = rendered.bound_parameters
        assert all(bound[name] == value for name in case.strings)
        assert all(bound[name] == [value] for name in case.lists)
        count("bound")


# ------------------------------------------------------------------------ change-board embeddings
def _literals(text: str, grammar: str) -> list[str | None]:
    return [literal.value for literal in syntax.string_literals(text, grammar=grammar)]


def assert_same_shape(hostile: str, benign: str, value: str) -> None:
    """Both grammars parse ``hostile`` and find the benign script's literals, ``value`` for each marker."""
    problems = [f for f in syntax.parse(hostile) if not f.known_gap]
    assert problems == [], problems[:2]
    for grammar in syntax.GRAMMARS:
        want = [value if v == MARKER else v for v in BENIGN_LITERALS[grammar]]
        assert _literals(hostile, grammar) == want, f"{grammar}: the literals changed"
    assert verify_script(hostile).ok


def _board(value: str) -> str:
    """Two steps whose values are passed as quoted arguments (``& { ... } -QueuePath '...'``).

    Quoted parameter defaults (one-step boards, the computer / change id / reason fields) are the same
    quoting function and are covered by ``test_hostile_values.py``.
    """
    wmi = render_action("wmi-setting", "lync2013", {"Class": value, "Namespace": value, "Property": (value,)})
    msmq = render_action("msmq-privacy", "lync2013", {"QueuePath": value})
    return render_change_board("read", [Step("wmi", wmi), Step("msmq", msmq)], ChangeInfo())


BENIGN_BOARD = _board(MARKER)
BENIGN_LITERALS = {grammar: _literals(BENIGN_BOARD, grammar) for grammar in syntax.GRAMMARS}


@pytest.mark.parametrize("value", CORPUS, ids=range(len(CORPUS)))
def test_change_board_values_are_one_literal(value: str) -> None:
    try:
        board = _board(value)
    except UsageError:
        assert refused_alike(value)
        count("refused")
        return
    try:
        assert_same_shape(board, BENIGN_BOARD, value)
    except AssertionError:
        count("escaped")
        raise
    count("literal")


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_generated_values_in_change_boards(value: str) -> None:
    test_change_board_values_are_one_literal(value)


# --------------------------------------------------------------------------------- command line
PREFIXES = ("$OcspsTarget = ", "$OcspsChangeId = ", "$OcspsReason = ", "[string]$QueuePath = ")


@pytest.mark.parametrize("value", CORPUS, ids=range(len(CORPUS)))
def test_render_command_values(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str) -> None:
    """``ocsps render`` with the value as computer, change id, reason and a parameter; -o a file."""
    out = tmp_path / "change.ps1"
    result = run_cli(
        capsys,
        "render",
        "msmq-privacy",
        "-p",
        "sfb2015",
        f"--computer={value}",
        f"--change-id={value}",
        f"--reason={value}",
        "--param",
        f"QueuePath={value}",
        "-o",
        str(out),
    )
    if result.code == 2:
        assert refused_alike(value) and not out.exists()
        assert len(result.err.strip().splitlines()) <= 2, "one line, plus an optional hint"
        count("refused")
        return
    assert result.code == 0, result.err
    text = out.read_text(encoding="utf-8-sig")
    assert verify_script(text).ok
    try:
        assert [f for f in syntax.parse(text) if not f.known_gap] == []
        for grammar in syntax.GRAMMARS:
            literals = syntax.string_literals(text, grammar=grammar)
            for prefix in PREFIXES:
                start = text.index(prefix) + len(prefix)
                found = [lit.value for lit in literals if lit.start == start]
                assert found == [value], (grammar, prefix)
    except AssertionError:
        count("escaped")
        raise
    count("literal")


@pytest.mark.parametrize("value", CORPUS, ids=range(len(CORPUS)))
def test_output_file_names(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str) -> None:
    """A file name is written exactly as given, or refused with exit 2 and nothing left behind."""
    folder = tmp_path / "a" / "b" / "c"
    folder.mkdir(parents=True)
    try:
        target = folder / value
        str(target).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        target = None
    result = run_cli(capsys, "render", "status", "-p", "sfb2015", "-o", str(folder) + "/" + value)
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    if result.code == 2:
        assert "Traceback" not in result.err
        count("refused")
        return
    assert result.code == 0, result.err
    assert target is not None and target.is_file() and target.name == Path(value).name
    assert verify_script(target.read_text(encoding="utf-8-sig")).ok
    count("kept")


@pytest.fixture(scope="module")
def env_lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture
def cli_env(env_lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Lab:
    """The CLI pointed at the lab's med01 through the environment, as an administrator would."""
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    env = {
        "OCSPS_CONNECT_ADDRESS": "127.0.0.1",
        "OCSPS_PORT": str(env_lab.port),
        "OCSPS_SSL": "false",
        "OCSPS_PATH": f"wsman/{MED}",
        "OCSPS_EXPECT_COMPUTER": MED,  # every host name given is answered by med01: declared as an alias
        "OCSPS_AUTH": "ntlm",
        "OCSPS_USERNAME": env_lab.username,
        "OCSPS_PASSWORD": env_lab.password,
        "OCSPS_PRODUCT": "sfb2015",
        "OCSPS_CONFIG": str(tmp_path / "config.toml"),
        "OCSPS_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("OCSPS_HOST", "OCSPS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return env_lab


@pytest.mark.parametrize("value", CORPUS, ids=range(len(CORPUS)))
def test_service_and_host_options(capsys: pytest.CaptureFixture[str], cli_env: Lab, value: str) -> None:
    """--service and --host: refused with exit 2 and nothing sent, or a real service / host name."""
    before = cli_env.requests().get("requests", 0)
    for option, other in (("--service", ["--host", MED]), ("--host", ["--service", "RTCMEDSRV"])):
        result = run_cli(capsys, "status", f"{option}={value}", *other, "--json")
        if result.code == 2:
            assert "Traceback" not in result.err and len(result.err.strip().splitlines()) <= 2
            assert cli_env.requests().get("requests", 0) == before, "nothing was sent"
            count("refused")
            continue
        assert result.code == 0, (option, result.err)
        (host,) = result.json()["hosts"]
        if option == "--host":
            assert host["host"] == value, "the host name is used exactly as given"
        else:
            names = {s["name"].casefold() for s in host["result"]}
            service = CATALOG.find_service(CATALOG.product("sfb2015"), value)
            assert names == {(service.name or service.key).casefold()}
        before = cli_env.requests().get("requests", 0)
        count("bound")


# ------------------------------------------------------------------------- arrival at the lab
class Recording(dict[str, Any]):
    """The engine's handlers, replaced: every ocsps action only records the parameters it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def get(self, action: str, default: Any = None) -> Any:
        def record(sim: SimServer, params: Mapping[str, Any], out: PipelineSink) -> None:
            self.seen.append((action, dict(params)))

        return record


@dataclass
class Arrival:
    lab: Lab
    recording: Recording
    servers: dict[str, Server]
    cases: list[ActionCase]


@pytest.fixture(scope="module")
def arrival() -> Iterator[Arrival]:
    with Lab() as lab:
        recording = Recording()
        lab.engine.handlers = recording
        servers: dict[str, Server] = {}
        for fqdn in (MED, OCS):
            product = lab.server(fqdn).product
            session = ServerSession(lab_settings(lab, fqdn), product, retry_backoff=0.05)
            servers[product.id] = Server(session).open()
        usable = []
        for case in CASES:
            server = servers[case.product]
            try:
                rendered = render_action(case.action, case.product, case.values(MARKER))
                server.session.run(rendered).raise_for_errors()
            except (jinja2.TemplateNotFound, UsageError):
                continue
            usable.append(case)
        try:
            yield Arrival(lab, recording, servers, usable)
        finally:
            for server in servers.values():
                server.close()


def _arrives(arrival: Arrival, case: ActionCase, value: str) -> None:
    try:
        rendered = render_action(case.action, case.product, case.values(value))
    except UsageError:
        assert refused_alike(value)
        count("refused")
        return
    arrival.recording.seen.clear()
    arrival.servers[case.product].session.run(rendered).raise_for_errors()
    ((action, params),) = arrival.recording.seen
    if action != case.action or params != rendered.bound_parameters:
        count("escaped")
    assert action == case.action and params == rendered.bound_parameters, (params, rendered.bound_parameters)
    count("arrived")


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_value_arrives_as_the_same_bound_value(arrival: Arrival, index: int) -> None:
    """Each value goes to every string parameter of one action (rotating over every action)."""
    assert arrival.cases, "no action could run on the lab"
    _arrives(arrival, arrival.cases[index % len(arrival.cases)], CORPUS[index])


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.text(max_size=60), pick=st.integers(min_value=0))
def test_generated_values_arrive_as_bound(arrival: Arrival, value: str, pick: int) -> None:
    _arrives(arrival, arrival.cases[pick % len(arrival.cases)], value)


# ----------------------------------------------------------------------------------- files
TOPOLOGY = """
[lab]
username = {username}
password = {password}

[[servers]]
fqdn = {fqdn}
product = "sfb2015"
pool = {pool}
site = {site}
roles = ["MediationServer"]
msmq_installed = true
[servers.queues]
{queue} = "Body"
[servers.wmi.{wmi}]
Value = 1
"""
TOPOLOGY_FIELDS = ("username", "password", "fqdn", "pool", "site", "queue", "wmi")


def _topology(**values: str) -> str:
    defaults = {
        "username": "LAB\\admin",
        "password": "pw",
        "fqdn": MED,
        "pool": "pool01.contoso.com",
        "site": "Redmond",
        "queue": ".\\private$\\x",
        "wmi": "MSFT_X",
    }
    defaults.update(values)
    return TOPOLOGY.format(**{k: json.dumps(v) for k, v in defaults.items()})


@pytest.mark.parametrize("fieldname", TOPOLOGY_FIELDS)
def test_topology_values_are_refused_or_kept(fieldname: str) -> None:
    for value in CORPUS:
        try:
            topology = parse_topology(_topology(**{fieldname: value}), source="hostile.toml")
        except UsageError:
            count("refused")
            continue
        (server,) = topology.servers
        kept = {
            "username": topology.username,
            "password": topology.password,
            "fqdn": server.fqdn,
            "pool": server.pool,
            "site": server.site,
            "queue": next(iter(server.queues)),
            "wmi": next(iter(server.wmi)),
        }[fieldname]
        if kept != value:
            count("escaped")
        assert kept == value, (fieldname, value[:40])
        count("kept")


def test_topology_wmi_class_and_queue_arrive_through_the_engine() -> None:
    """Hostile WMI class and queue names in a topology, read back through the lab's real handlers."""
    usable = [v for v in CORPUS if not refused_alike(v) and v.strip() and "\\u" not in json.dumps(v)[1:3]]
    lines = [_topology().split("[servers.wmi.")[0]]
    wanted = []
    for value in usable:
        try:
            parse_topology(_topology(queue=value, wmi=value), source="hostile.toml")
        except UsageError:
            continue
        wanted.append(value)
        lines.append(f"[servers.wmi.{json.dumps(value)}]\nValue = 1\n")
    queues = "".join(f'{json.dumps(v)} = "Body"\n' for v in wanted)
    default_queue = '[servers.queues]\n".\\\\private$\\\\x" = "Body"\n'
    text = "".join(lines).replace(default_queue, "[servers.queues]\n" + queues)
    topology = parse_topology(text, source="hostile.toml")
    with Lab(topology) as lab:
        server = Server(ServerSession(lab_settings(lab, MED), lab.server(MED).product, retry_backoff=0.05))
        with server:
            # The engine looks each name up exactly as it arrives: finding it proves the value is intact.
            # (The result parsers trim surrounding white space, so the echo is compared trimmed.)
            for index, value in enumerate(wanted[::2]):
                if index % 2:
                    (setting,) = server.wmi_setting(value)
                    ok = setting.wmi_class == value.strip() and setting.instance is not None
                else:
                    privacy = server.queue_privacy(value)
                    ok = privacy.exists and privacy.queue_path == value.strip()
                count("arrived" if ok else "escaped")
                assert ok, value[:40]
    assert len(wanted) > len(CORPUS) // 2


STRING_OPTIONS = [key for key, option in OPTIONS.items() if option.kind in ("str", "path")]


@pytest.mark.parametrize("key", STRING_OPTIONS)
def test_config_values_are_refused_or_kept(key: str) -> None:
    for value in CORPUS:
        try:
            config = parse_config(f"[default]\n{key} = {json.dumps(value)}\n", source="hostile.toml")
            stored = config.values(None)[key]
        except UsageError:
            count("refused")
            continue
        if stored != value:
            count("escaped")
        assert stored == value, (key, value[:40])
        count("kept")


def test_hosts_file_lines_are_refused_or_names() -> None:
    for value in CORPUS:
        try:
            entries = parse_hosts_file(value, source="hosts.txt")
        except UsageError:
            count("refused")
            continue
        ok = all(e.host and e.host in value and e.host.isprintable() and " " not in e.host for e in entries)
        count("kept" if ok else "escaped")
        assert ok, value[:40]
