"""Unit tests of the patch_pool module: what it refuses before connecting, check mode, idempotence, a roll
and a failed roll against a scripted Lync Server 2010 pool (no network)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import patch_pool

pytest.importorskip("ocsps")

POOL = "pool10.contoso.com"
MEMBERS = ["fe10a.contoso.com", "fe10b.contoso.com", "fe10c.contoso.com"]
INSTALLER = "C:\\Updates\\LyncServerUpdateInstaller.exe"
BEFORE = "4.0.7577.0"
VERSION = "4.0.7577.726"
MODES = {"Automatic": "Auto", "Manual": "Manual", "Disabled": "Disabled"}


class _Estate:
    """Every member's services, start-up types and version, shared by the pool and patch fakes; ``sent``
    lists every change either received, in order."""

    def __init__(self, version=BEFORE, failing=()):
        self.states = {m: {"RTCSRV": "Running", "RTCCLSAGT": "Running"} for m in MEMBERS}
        self.modes = {m: {"RTCSRV": "Auto", "RTCCLSAGT": "Manual"} for m in MEMBERS}
        self.versions = dict.fromkeys(MEMBERS, version)
        self.failing = set(failing)
        self.sent = []
        self.closed = []


class _PoolSide:
    """The pool driver: members drain at once and start at once."""

    def __init__(self, estate):
        self.estate = estate

    def member(self, host):
        from ocsps.pool import MemberState
        from ocsps.results import ServiceState, ServiceStatus

        services = [
            ServiceStatus(name, ServiceState.RUNNING if state == "Running" else ServiceState.STOPPED, state)
            for name, state in self.estate.states[host].items()
        ]
        return MemberState.from_services(host, services, "RTCSRV")

    def drain(self, host):
        self.estate.sent.append(f"{host}: drain")
        self.estate.states[host] = dict.fromkeys(self.estate.states[host], "Stopped")
        return self.member(host)

    def start(self, host):
        self.estate.sent.append(f"{host}: start")
        self.estate.states[host] = dict.fromkeys(self.estate.states[host], "Running")
        return self.member(host)

    def stop_service(self, host, name):
        self.estate.sent.append(f"{host}: stop {name}")
        self.estate.states[host][name] = "Stopped"

    def close(self):
        self.estate.closed.append("pool")


class _PatchSide:
    """The patch driver: an install succeeds (to VERSION) unless the member is in ``failing``."""

    def __init__(self, estate):
        self.estate = estate

    def services(self, host):
        return list(self.estate.states[host])

    def state(self, host, services, installer="", probe=False):
        from ocsps.patch.model import Component, PatchState, ServiceInfo

        states, modes = self.estate.states[host], self.estate.modes[host]
        return PatchState(
            computer=host,
            boot_time="boot-1",
            free_bytes=50 * 1024**3,
            installer_found=True,
            reboot_flags={"windows-update": False},
            services=tuple(ServiceInfo(n, states[n], modes[n]) for n in services),
            components=(Component("Lync Server 2010, Core Components", self.estate.versions[host]),),
        )

    def drain(self, host, name):
        self.estate.sent.append(f"{host}: drain {name}")
        self.estate.states[host][name] = "Stopped"

    def stop(self, host, name):
        self.estate.sent.append(f"{host}: stop {name}")
        self.estate.states[host][name] = "Stopped"

    def start(self, host, name):
        self.estate.sent.append(f"{host}: start {name}")
        self.estate.states[host][name] = "Running"

    def set_startup(self, host, names, startup):
        from ocsps.patch.model import ServiceInfo

        self.estate.sent.append(f"{host}: startup {startup}")
        for name in names:
            self.estate.modes[host][name] = MODES[startup]
        return tuple(ServiceInfo(n, self.estate.states[host][n], self.estate.modes[host][n]) for n in names)

    def install(self, host, path, arguments, timeout):
        from ocsps.patch.model import InstallOutcome

        self.estate.sent.append(f"{host}: install")
        code = 1603 if host in self.estate.failing else 0
        if code == 0:
            self.estate.versions[host] = VERSION
        return InstallOutcome(host, True, code, "C:\\Updates\\update.log", "error 1603")

    def restart(self, host):
        self.estate.sent.append(f"{host}: restart")
        return "boot-1"

    def databases(self, host, sql_server, update):
        raise AssertionError("Lync Server 2010 has no Test-CsDatabase")

    def reset(self, host):
        pass

    def close(self):
        self.estate.closed.append("patch")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("OCSPS_CONFIG", "OCSPS_PROFILE", "OCSPS_HOST", "OCSPS_PRODUCT", "OCSPS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def _run(monkeypatch, capsys, estate=None, check_mode=False, **args):
    def no_connection(*_args, **_kwargs):
        raise AssertionError("the module connected")

    if estate is None:
        monkeypatch.setattr(patch_pool, "open_drivers", no_connection)
    else:
        monkeypatch.setattr(patch_pool, "open_drivers", lambda *_a: (_PoolSide(estate), _PatchSide(estate)))
    values = dict(
        pool=POOL,
        members=MEMBERS,
        product="lync2010",
        installer=INSTALLER,
        expect_version=VERSION,
        stable_for="0s",
    )
    values.update(args, _ansible_check_mode=check_mode)
    values = {k: v for k, v in values.items() if v is not None}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": values})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        patch_pool.main()
    return json.loads(capsys.readouterr().out)


def _installs(estate):
    return [line.split(":")[0] for line in estate.sent if line.endswith(": install")]


def test_check_mode_returns_the_plan_and_sends_nothing(monkeypatch, capsys, tmp_path):
    result = _run(monkeypatch, capsys, check_mode=True)
    assert result["changed"] is True and "failed" not in result, result.get("msg")
    assert result["plan"]["method"] == "drain"
    assert [u["servers"] for u in result["plan"]["units"]] == [[m] for m in MEMBERS]
    assert result["server_steps"] == ["preflight", "hold", "install", "reboot", "verify", "restore"]
    assert [s["kind"] for s in result["roll_steps"]].count("step") == 3
    assert result["state_file"] == str(tmp_path / f"pool-roll-{POOL}.json")
    assert not (tmp_path / "audit.jsonl").exists() and not list(tmp_path.glob("pool-roll-*"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"change_id": "CHG 1; rm"}, "change_id: a change id takes"),
        ({"rerun_install": True}, "rerun_install only applies with resume"),
        ({"resume": True, "stable_for": "1m"}, "drop stable_for"),
        ({"test_users": ["sip:a@contoso.com"]}, "set post_checks"),
        ({"post_checks": True, "test_users": ["not an address"]}, "test_users"),
        ({"sql_server": "bad name!"}, "sql_server"),
        ({"members": ["fe10a.contoso.com", "bad name!"]}, "members"),
        ({"installer": "C:\\Updates\\setup.exe"}, "LyncServerUpdateInstaller.exe"),
        ({"expect_version": "latest"}, "--expect-version is required"),
        ({"product": "sfb2015", "installer": "C:\\U\\SkypeServerUpdateInstaller.exe"}, "--sql-server"),
    ],
    ids=["change-id", "rerun", "resume-timing", "users", "user", "sql", "member", "installer", "version", "db"],
)
def test_bad_input_fails_before_connecting(monkeypatch, capsys, tmp_path, args, expected):
    result = _run(monkeypatch, capsys, **args)
    assert result["failed"] is True and result["exit_code"] == 2, result
    assert expected in result["msg"]
    assert not (tmp_path / "audit.jsonl").exists()


def test_a_roll_patches_each_member_in_turn_and_returns_the_librarys_document(monkeypatch, capsys, tmp_path):
    estate = _Estate()
    state_file = tmp_path / "roll.json"
    result = _run(monkeypatch, capsys, estate, change_id="CHG-2041", state_file=str(state_file))
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True and result["status"] == "done"
    assert _installs(estate) == MEMBERS
    # one member out at a time: each is drained, patched and started before the next is drained
    drains = [line for line in estate.sent if line.endswith(": drain") or line.endswith(": start")]
    assert drains == [f"{m}: {what}" for m in MEMBERS for what in ("drain", "start")]
    assert estate.modes == {m: {"RTCSRV": "Auto", "RTCCLSAGT": "Manual"} for m in MEMBERS}
    assert result["versions_before"] == {m: {"Lync Server 2010, Core Components": BEFORE} for m in MEMBERS}
    doc = result["result"]
    assert doc["status"] == "done" and doc["change_id"] == "CHG-2041" and doc["pool"] == POOL
    assert all(s["at_version"] and s["in_service"] for s in doc["servers"])
    assert result["reached"][MEMBERS[0]] == {
        "phase": "returned",
        "step": "done",
        "patch_status": "done",
        "in_service": True,
        "left_disabled": [],
    }
    assert sorted(estate.closed) == ["patch", "pool"]
    journal = json.loads(state_file.read_text(encoding="utf-8"))
    assert journal["request"]["done"] is True and result["state_file"] == str(state_file)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert audit[0]["action"] == f"patch pool {POOL}" and audit[0]["change_id"] == "CHG-2041"


def test_a_pool_already_at_the_version_is_sent_nothing(monkeypatch, capsys, tmp_path):
    estate = _Estate(version=VERSION)
    result = _run(monkeypatch, capsys, estate)
    assert result["changed"] is False and result["status"] == "current", result
    assert estate.sent == [] and not (tmp_path / "audit.jsonl").exists()


def test_a_member_with_a_service_left_disabled_is_not_current(monkeypatch, capsys):
    estate = _Estate(version=VERSION)
    estate.modes[MEMBERS[1]]["RTCCLSAGT"] = "Disabled"
    result = _run(monkeypatch, capsys, estate)
    # read as not current, the roll runs; the library's last reading then names the service still Disabled
    assert result["failed"] is True and result["status"] == "stopped", result
    assert _installs(estate) == MEMBERS
    assert f"the last reading does not confirm the roll on {MEMBERS[1]}" in result["msg"]
    assert f"left Disabled: {MEMBERS[1]}: RTCCLSAGT" in result["statement"]
    assert result["reached"][MEMBERS[1]]["left_disabled"] == ["RTCCLSAGT"]


def test_a_failed_install_fails_with_where_each_member_was_left_and_a_resume_hint(monkeypatch, capsys, tmp_path):
    estate = _Estate(failing={MEMBERS[1]})
    result = _run(monkeypatch, capsys, estate)
    assert result["failed"] is True and result["changed"] is True and result["resume"] is True
    assert result["status"] == "failed" and result["exit_code"] == 1
    assert _installs(estate) == MEMBERS[:2]  # the roll stopped at the failed member
    reached = result["reached"]
    assert reached[MEMBERS[0]]["phase"] == "returned" and reached[MEMBERS[0]]["in_service"] is True
    assert reached[MEMBERS[1]]["step"] == "install" and reached[MEMBERS[1]]["patch_status"] == "failed"
    assert reached[MEMBERS[1]]["in_service"] is False
    assert reached[MEMBERS[2]] == {
        "phase": "pending",
        "step": "not-started",
        "patch_status": "not-started",
        "in_service": True,
        "left_disabled": [],
    }
    assert MEMBERS[1] in result["position"] and "OUT OF SERVICE" in result["msg"]

    # a new roll is refused while this one is saved; nothing more is sent
    sent = list(estate.sent)
    again = _run(monkeypatch, capsys, estate)
    assert again["failed"] is True and again["exit_code"] == 2
    assert "an unfinished roll of pool10.contoso.com is saved" in again["msg"]
    assert estate.sent == sent


def test_a_resume_asked_something_else_is_refused(monkeypatch, capsys):
    estate = _Estate(failing={MEMBERS[0]})
    first = _run(monkeypatch, capsys, estate)
    assert first["failed"] is True and first["resume"] is True
    sent = list(estate.sent)
    other = _run(monkeypatch, capsys, estate, resume=True, stable_for=None, expect_version="4.0.7577.999")
    assert other["failed"] is True and "was asked something else" in other["msg"]
    assert estate.sent == sent


def test_a_resume_continues_at_the_member_that_failed(monkeypatch, capsys, tmp_path):
    estate = _Estate(failing={MEMBERS[1]})
    state_file = tmp_path / "roll.json"
    first = _run(monkeypatch, capsys, estate, state_file=str(state_file))
    assert first["failed"] is True and first["resume"] is True
    estate.failing.clear()  # the cause is fixed
    sent = len(estate.sent)
    resumed = _run(monkeypatch, capsys, estate, resume=True, stable_for=None, state_file=str(state_file))
    assert "failed" not in resumed, resumed.get("msg")
    assert resumed["changed"] is True and resumed["status"] == "done"
    later = estate.sent[sent:]
    # the failed member is still out: it is not drained again; the member already patched is not touched
    assert _installs(estate)[2:] == MEMBERS[1:]
    assert f"{MEMBERS[1]}: drain" not in later and not any(line.startswith(MEMBERS[0]) for line in later)
    assert json.loads(state_file.read_text(encoding="utf-8"))["request"]["done"] is True
