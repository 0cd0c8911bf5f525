"""Unit tests of the patch module: what it refuses before connecting, check mode, and runs against a scripted
server (no network)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import patch

pytest.importorskip("ocsps")

HOST = "med01.contoso.com"
INSTALLER = "C:\\Updates\\SkypeServerUpdateInstaller.exe"
MODES = {"Automatic": "Auto", "Manual": "Manual", "Disabled": "Disabled"}


class _Server:
    """One server in memory, behind the patch driver's interface; ``sent`` lists the changes it received."""

    def __init__(self, version="6.0.9319.0", exit_code=0, after="6.0.9319.619"):
        self.states = {"RTCMEDSRV": "Running", "RTCCLSAGT": "Running"}
        self.modes = {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"}
        self.version = version
        self.exit_code = exit_code
        self.after = after
        self.sent = []
        self.closed = False

    def services(self, host):
        return list(self.states)

    def state(self, host, services, installer="", probe=False):
        from ocsps.patch.model import Component, PatchState, ServiceInfo

        return PatchState(
            computer=HOST,
            boot_time="boot-1",
            free_bytes=50 * 1024**3,
            installer_found=True,
            reboot_flags={"windows-update": False},
            services=tuple(ServiceInfo(n, self.states[n], self.modes[n]) for n in services),
            components=(Component("Core Components", self.version),),
        )

    def drain(self, host, name):
        self.sent.append(f"drain {name}")
        self.states[name] = "Stopped"

    def stop(self, host, name):
        self.sent.append(f"stop {name}")
        self.states[name] = "Stopped"

    def start(self, host, name):
        self.sent.append(f"start {name}")
        self.states[name] = "Running"

    def set_startup(self, host, names, startup):
        from ocsps.patch.model import ServiceInfo

        self.sent.append(f"startup {startup} {','.join(names)}")
        for name in names:
            self.modes[name] = MODES[startup]
        return tuple(ServiceInfo(n, self.states[n], self.modes[n]) for n in names)

    def install(self, host, path, arguments, timeout):
        from ocsps.patch.model import InstallOutcome

        self.sent.append(f"install {path} {' '.join(arguments)}")
        if self.exit_code == 0:
            self.version = self.after
        return InstallOutcome(HOST, True, self.exit_code, "C:\\Updates\\update.log", "error 1603")

    def restart(self, host):
        self.sent.append("restart")
        return "boot-1"

    def reset(self, host):
        pass

    def close(self):
        self.closed = True


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("OCSPS_CONFIG", "OCSPS_PROFILE", "OCSPS_HOST", "OCSPS_PRODUCT", "OCSPS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def _run(monkeypatch, capsys, server=None, check_mode=False, diff=False, **args):
    import ocsps.patch

    def no_connection(*_args, **_kwargs):
        raise AssertionError("the module connected")

    monkeypatch.setattr(patch, "open_server", no_connection)
    if server is None:
        monkeypatch.setattr(ocsps.patch, "RemotePatchDriver", no_connection)
    else:
        monkeypatch.setattr(ocsps.patch, "RemotePatchDriver", lambda *_a, **_k: server)
    values = dict(host=HOST, product="sfb2015", installer=INSTALLER, expect_version="6.0.9319.619")
    values.update(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": values})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        patch.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_returns_the_plan_and_sends_nothing(monkeypatch, capsys, tmp_path):
    result = _run(monkeypatch, capsys, check_mode=True)
    assert result["changed"] is True and "failed" not in result
    assert [s["name"] for s in result["plan"]["steps"]][3:5] == ["install", "reboot"]
    assert result["plan"]["arguments"] == ["/silentmode"]
    assert not (tmp_path / "audit.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"change_id": "CHG 1; rm"}, "change_id: a change id takes"),
        ({"product": "ocs2007r2", "installer": "C:\\U\\ServerUpdateInstaller.exe"}, "does not patch ocs2007r2"),
        ({"installer": "C:\\Updates\\setup.exe"}, "SkypeServerUpdateInstaller.exe"),
        ({"expect_version": "latest"}, "--expect-version is required"),
        ({"drain_timeout": "soon"}, "soon"),
    ],
    ids=["change-id", "unpatched", "installer", "version", "duration"],
)
def test_bad_input_fails_before_connecting(monkeypatch, capsys, tmp_path, args, expected):
    result = _run(monkeypatch, capsys, **args)
    assert result["failed"] is True and result["exit_code"] == 2, result
    assert expected in result["msg"]
    assert not (tmp_path / "audit.jsonl").exists()


def test_a_run_patches_verifies_and_records(monkeypatch, capsys, tmp_path):
    server = _Server()
    record = tmp_path / "record.json"
    result = _run(monkeypatch, capsys, server, diff=True, change_id="CHG-1042", record=str(record))
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True and result["status"] == "done" and result["step"] == "done"
    assert result["versions_after"] == {"Core Components": "6.0.9319.619"}
    assert result["diff"]["before"]["versions"] == {"Core Components": "6.0.9319.0"}
    assert "no service left Disabled by this run" in result["statement"]
    assert server.sent[:2] == ["drain RTCMEDSRV", "drain RTCCLSAGT"]
    assert server.sent[2] == "startup Disabled RTCMEDSRV,RTCCLSAGT"
    assert server.modes == {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"} and server.closed
    saved = json.loads(record.read_text(encoding="utf-8"))
    assert saved["change_id"] == "CHG-1042" and saved["status"] == "done"
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert audit[0]["action"] == "patch server med01.contoso.com" and audit[0]["change_id"] == "CHG-1042"


def test_a_server_already_at_the_version_is_sent_nothing(monkeypatch, capsys, tmp_path):
    server = _Server(version="6.0.9319.619")
    result = _run(monkeypatch, capsys, server)
    assert result["changed"] is False and result["status"] == "current", result
    assert server.sent == [] and "nothing was changed" in result["reason"]
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["outcome"] for line in audit] == ["starting"]  # the intent only: nothing was changed


def test_a_new_run_over_an_unfinished_record_is_refused_and_resume_continues_it(monkeypatch, capsys, tmp_path):
    record = tmp_path / "record.json"
    first = _run(monkeypatch, capsys, _Server(exit_code=1603), record=str(record))
    saved = json.loads(record.read_text(encoding="utf-8"))
    assert first["failed"] and saved["status"] == "failed" and "install" not in saved["done"], first
    assert "hold" in saved["done"] or "out-of-service" in saved["done"]
    again = _run(monkeypatch, capsys, _Server(), record=str(record))
    assert again["failed"] and "an unfinished patch run of med01.contoso.com" in again["msg"], again
    assert "continue it with resume" in again["msg"]
    other = _run(monkeypatch, capsys, _Server(), record=str(record), resume=True, expect_version="6.0.9319.999")
    assert other["failed"] and "was asked something else" in other["msg"], other
    resumed = _run(monkeypatch, capsys, _Server(), record=str(record), resume=True)
    assert resumed["status"] == "done" and resumed["changed"], resumed
    assert json.loads(record.read_text(encoding="utf-8"))["runs"] == 2


def test_force_patches_a_current_server_again(monkeypatch, capsys):
    server = _Server(version="6.0.9319.619")
    result = _run(monkeypatch, capsys, server, force=True)
    assert result["changed"] is True and result["status"] == "done"
    assert any(s.startswith("install ") for s in server.sent)


def test_a_failed_install_fails_with_the_state_reached(monkeypatch, capsys):
    server = _Server(exit_code=1603)
    result = _run(monkeypatch, capsys, server)
    assert result["failed"] is True and result["changed"] is True
    assert result["status"] == "failed" and result["step"] == "install" and result["exit_code"] == 1
    assert "exit code 1603" in result["msg"] and "OUT OF SERVICE" in result["statement"]
    # the start-up types come back whatever happened; the services stay stopped
    assert server.modes == {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"}
    assert server.states == {"RTCMEDSRV": "Stopped", "RTCCLSAGT": "Stopped"}


def test_a_version_mismatch_leaves_the_server_out_of_service_and_says_so(monkeypatch, capsys):
    server = _Server(after="6.0.9319.600")
    result = _run(monkeypatch, capsys, server)
    assert result["failed"] is True and result["status"] == "stopped" and result["step"] == "verify"
    assert "version mismatch" in result["msg"] and "OUT OF SERVICE" in result["statement"]
    assert not any(s.startswith("start ") for s in server.sent)
