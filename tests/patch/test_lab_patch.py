"""Patching one server against the lab over real HTTP, WSMan, PSRP and NTLM.

The lab and the runner share a clock that runs 1200 times faster than the wall clock, so a 15-minute
install and a 5-minute restart take about a second; the runner's waits sleep on the same scale. Nothing is
asserted about time: each case ends in a stated status, and the lab (the witness) is asked afterwards what
it holds: services, start-up types, component versions, how many installs and restarts it saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ocsps.catalog import load_catalog
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology
from ocsps.patch import (
    PatchEvent,
    PatchRecord,
    PatchRunner,
    PatchStatus,
    RemotePatchDriver,
    default_options,
    plan_patch,
)
from ocsps.patch.runner import record_document
from ocsps.remote.connector import lab_settings
from ocsps.remote.server import Server
from ocsps.remote.session import ServerSession
from tests.conftest import DATA, ROOT

BASE = (DATA / "patch" / "sfb2015-mediation.toml").read_text(encoding="utf-8")
HOST = "med01.contoso.com"
INSTALLER = "C:\\Updates\\SkypeServerUpdateInstaller.exe"
TARGET = "6.0.9319.619"
SPEED = 1200.0
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "patch-server.schema.json").read_text(encoding="utf-8"))


def _valid(record: PatchRecord) -> None:
    """The record as ``--json`` prints it matches the published schema."""
    document = {"command": "patch server", **record_document(record), "record": "r.json", "exit_code": 1}
    Draft202012Validator(SCHEMA).validate(document)


@dataclass
class FastClock:
    """Lab time: starts in 2030 and runs ``SPEED`` times faster than the wall clock."""

    start: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return 1.9e9 + (time.monotonic() - self.start) * SPEED

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / SPEED)


def _topology(patch: dict[str, Any], server: dict[str, Any]) -> str:
    """The base topology with ``[servers]`` keys added and ``[servers.patch]`` keys replaced."""

    def toml(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return "'" + value + "'"
        if isinstance(value, list):
            return "[" + ", ".join(toml(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{ " + ", ".join(f"{toml(k)} = {toml(v)}" for k, v in value.items()) + " }"
        return str(value)

    head, _, tail = BASE.partition("[servers.activity.RTCMEDSRV]")
    extra = "".join(f"{k} = {toml(v)}\n" for k, v in server.items())
    patch_lines = "".join(f"{k} = {toml(v)}\n" for k, v in patch.items())
    base_patch = {"install_seconds": 900, "reboot_seconds": 300, "exit_code": 3010}
    base_lines = "".join(f"{k} = {toml(v)}\n" for k, v in base_patch.items() if k not in patch)
    activity = tail.split("[servers.patch]")[0]
    return f"{head}{extra}[servers.activity.RTCMEDSRV]{activity}[servers.patch]\n{base_lines}{patch_lines}"


@dataclass
class Outcome:
    record: PatchRecord
    lab: Lab

    def startup(self) -> dict[str, str]:
        return {s.name: s.startup for s in self.lab.server(HOST).services.values()}

    def status(self) -> dict[str, str]:
        return {s.name: s.status for s in self.lab.server(HOST).services.values()}


def _run(
    patch: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    check: Callable[[Outcome], None] | None = None,
    on_event: Callable[[PatchEvent], None] | None = None,
    skip_current: bool = False,
    **options: Any,
) -> PatchRecord:
    # Reconnecting after the restart costs real HTTP round trips, which a loaded machine stretches: at 1200x
    # the default 30 minutes are 1.5 s of wall time, so cases that do not test this deadline get 6 hours.
    options.setdefault("reboot_timeout", 6 * 3600.0)
    clock = FastClock()
    topology = parse_topology(_topology(patch or {}, server or {}), source="patch case", clock=clock.now)
    with Lab(topology) as lab:

        def factory(host: str) -> Server:
            product = lab.server(host).product
            return Server(ServerSession(lab_settings(lab, host), product, retry_backoff=0.01))

        driver = RemotePatchDriver(factory, call_timeout=60, probe_timeout=0.1)
        plan = plan_patch(
            HOST, load_catalog().product("sfb2015"), INSTALLER, default_options(TARGET, **options)
        )
        try:
            runner = PatchRunner(
                driver,
                plan,
                clock=clock.now,
                sleep=clock.sleep,
                on_event=on_event,
                simulation=True,
                skip_current=skip_current,
            )
            record = runner.run()
        finally:
            driver.close()
        if check is not None:
            check(Outcome(record, lab))
        return record


def _no_service_left_disabled(out: Outcome) -> None:
    assert set(out.startup().values()) == {"Automatic"}, out.startup()
    assert out.record.left_disabled == []
    assert "no service left Disabled by this run" in out.record.statement()


def test_clean_patch_with_restart() -> None:
    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert set(out.status().values()) == {"Running"}
        sim = out.lab.engine.patch.patches[HOST]
        assert (sim.installs, sim.restarts) == (1, 1)
        assert set(sim.components.values()) == {TARGET}
        assert not sim.pending  # the restart cleared the file rename the update asked for

    record = _run(check=check)
    assert record.status is PatchStatus.DONE, record.reason
    assert record.rebooted
    assert set(record.versions_before.values()) == {"6.0.9319.0"}
    assert set(record.versions_after.values()) == {TARGET}
    assert record.install is not None and record.install.exit_code == 3010
    assert record.final is not None and record.out_of_service == []
    steps = [h["step"] for h in record.history if h["message"].startswith("step ")]
    assert steps == ["preflight", "out-of-service", "hold", "install", "reboot", "verify", "back-in-service"]


@pytest.mark.parametrize(
    ("pending", "skip", "status", "installs"),
    [
        ([], True, PatchStatus.CURRENT, 0),
        ([], False, PatchStatus.DONE, 1),  # --reinstall: the update runs again
        (
            ["pending-file-rename"],
            True,
            PatchStatus.STOPPED,
            0,
        ),  # at the version, but a restart is pending: not current
    ],
    ids=["current", "reinstall", "restart-pending"],
)
def test_a_server_already_at_the_version_is_left_alone(
    pending: list[str], skip: bool, status: PatchStatus, installs: int
) -> None:
    at_version = {
        "components": {"Core Components": TARGET, "Mediation Server": TARGET},
        "pending_reboot": pending,
    }

    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert set(out.status().values()) == {"Running"}
        assert out.lab.engine.patch.patches[HOST].installs == installs

    record = _run(at_version, check=check, skip_current=skip)
    assert record.status is status, record.reason
    assert record.status.exit_code == (1 if status is PatchStatus.STOPPED else 0)
    if status is PatchStatus.CURRENT:
        assert record.done == [] and "nothing was changed" in record.reason
        _valid(record)


def test_exit_zero_needs_no_restart_and_the_hold_keeps_services_down_during_the_install() -> None:
    """The lab's update starts every service that is not Disabled (a Fabric update does): held Disabled,
    none ran between the install and the verification."""

    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert out.lab.engine.patch.patches[HOST].restarts == 0

    record = _run({"exit_code": 0}, check=check)
    assert record.status is PatchStatus.DONE, record.reason
    assert not record.rebooted
    install = next(h for h in record.history if h["message"].startswith("installer exit code 0"))
    assert "restart pending" not in install["message"]


def test_installer_failure_reports_the_log_and_leaves_the_server_out_of_service() -> None:
    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert set(out.status().values()) == {"Stopped"}
        assert out.lab.engine.patch.patches[HOST].restarts == 0

    record = _run({"exit_code": 1603}, check=check)
    assert record.status is PatchStatus.FAILED
    assert "exit code 1603" in record.reason
    assert "SkypeServerUpdateInstaller-" in record.reason and ".log" in record.reason
    assert "failed with exit code 1603" in record.reason  # the log's last line
    _valid(record)
    assert "OUT OF SERVICE" in record.statement()


def test_restart_longer_than_its_deadline_times_out_then_restores_start_up_types() -> None:
    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert set(out.status().values()) == {"Stopped"}  # back from the restart, held: nothing started

    record = _run({"reboot_seconds": 1200}, check=check, reboot_timeout=600.0, restore_timeout=1800.0)
    assert record.status is PatchStatus.TIMED_OUT
    assert "did not come back within 600s" in record.reason
    assert record.restored and record.final is not None
    assert "OUT OF SERVICE" in record.statement()


def test_restart_that_outlasts_the_restore_window_says_what_stays_disabled() -> None:
    record = _run({"reboot_seconds": 7200}, reboot_timeout=300.0, restore_timeout=300.0)
    assert record.status is PatchStatus.TIMED_OUT
    assert not record.restored and record.final is None
    assert record.left_disabled == ["RTCMEDSRV", "RTCCLSAGT", "REPLICA"]
    assert "NOT restored" in record.statement() and "state file" in record.statement()
    _valid(record)


def test_an_interruption_after_the_hold_still_restores_start_up_types() -> None:
    """Ctrl-C at the install step: nothing is installed, the start-up types come back, the state is read."""
    interrupted: list[str] = []

    def on_event(event: PatchEvent) -> None:
        if event.message == "step install" and not interrupted:
            interrupted.append(event.step)
            raise KeyboardInterrupt

    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert out.lab.engine.patch.patches[HOST].installs == 0
        assert set(out.status().values()) == {"Stopped"}

    record = _run(check=check, on_event=on_event)
    assert interrupted == ["install"]
    assert record.status is PatchStatus.INTERRUPTED and record.install is None
    assert record.restored and "OUT OF SERVICE" in record.statement()


def test_version_mismatch_stops_with_the_server_out_of_service() -> None:
    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert set(out.status().values()) == {"Stopped"}

    record = _run({"mismatch_components": ["Core Components"]}, check=check)
    assert record.status is PatchStatus.STOPPED
    assert f"Core Components is 6.0.9319.0, expected {TARGET}" in record.reason
    assert "left out of service" in record.reason
    assert record.rebooted


def test_a_service_that_never_drains_stops_the_run_before_anything_changes() -> None:
    def check(out: Outcome) -> None:
        assert out.status()["RTCMEDSRV"] == "Paused"  # still draining, as stated
        assert set(out.startup().values()) == {"Automatic"}
        assert out.lab.engine.patch.patches[HOST].installs == 0

    record = _run(server={"stuck_drain": ["RTCMEDSRV"]}, check=check, drain_timeout=600.0)
    assert record.status is PatchStatus.STOPPED
    assert "RTCMEDSRV did not finish draining within 600s and is still draining" in record.reason
    assert record.held == [] and record.install is None


def test_then_force_stop_stops_a_service_that_never_drains_and_goes_on() -> None:
    record = _run(
        server={"stuck_drain": ["RTCMEDSRV"]},
        check=_no_service_left_disabled,
        drain_timeout=600.0,
        then="force-stop",
    )
    assert record.status is PatchStatus.DONE, record.reason
    assert any("stopping it now (--then force-stop)" in h["message"] for h in record.history)


def test_reboot_never_stops_and_says_a_restart_is_pending() -> None:
    def check(out: Outcome) -> None:
        _no_service_left_disabled(out)
        assert out.lab.engine.patch.patches[HOST].restarts == 0

    record = _run(check=check, reboot="never")
    assert record.status is PatchStatus.REBOOT_PENDING
    assert "--reboot never" in record.reason
    assert "a restart is pending (pending-file-rename)" in record.statement()


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"pending_reboot": ["windows-update"]}, "a restart is already pending (windows-update)"),
        ({"free_gb": 1}, "MB free on the system drive"),
        ({"installer_paths": ["D:\\Other\\SkypeServerUpdateInstaller.exe"]}, "does not see C:\\Updates"),
    ],
    ids=["pending-reboot", "disk", "installer-missing"],
)
def test_preflight_stops_before_any_change(patch: dict[str, Any], expected: str) -> None:
    def check(out: Outcome) -> None:
        assert set(out.status().values()) == {"Running"}
        assert set(out.startup().values()) == {"Automatic"}
        assert out.lab.engine.patch.patches[HOST].installs == 0

    record = _run(patch, check=check)
    assert record.status is PatchStatus.STOPPED
    assert expected in record.reason and "Nothing was changed" in record.reason


def test_a_server_that_answers_as_another_computer_is_refused_before_any_change() -> None:
    def check(out: Outcome) -> None:
        assert set(out.status().values()) == {"Running"}
        assert set(out.startup().values()) == {"Automatic"}

    record = _run(server={"computer_name": "med02.contoso.com"}, check=check)
    assert record.status is PatchStatus.FAILED
    assert "the computer that answered is med02.contoso.com, not med01.contoso.com" in record.reason
    assert record.running_before == [] and record.held == []


def test_an_installer_past_its_deadline_is_reported_as_maybe_still_running() -> None:
    """The lab's installer, like a real process, goes on after the remote command is given up; the
    start-up types are restored, and the statement reports the versions read at the end. The call's
    deadline is on the wall clock (the session's): 1 s there is 1200 s of lab time, less than 6000."""

    def check(out: Outcome) -> None:
        assert set(out.startup().values()) == {"Automatic"}

    record = _run({"install_seconds": 6000}, check=check, install_timeout=1.0)
    assert record.status is PatchStatus.TIMED_OUT
    assert "may still be running" in record.reason
    assert record.restored and record.install is None


def test_a_service_with_its_own_drain_deadline_is_stopped_at_it_and_the_run_goes_on() -> None:
    """pools.toml [service_drain] gives the Response Group service its own deadline and force-stop; the
    same rule on the Mediation service of this lab server: stopped at its deadline, not at the run's."""
    record = _run(
        server={"stuck_drain": ["RTCMEDSRV"]},
        check=_no_service_left_disabled,
        drain_timeout=3600.0,
        service_deadlines={"RTCMEDSRV": 300.0},
        service_then={"RTCMEDSRV": "force-stop"},
    )
    assert record.status is PatchStatus.DONE, record.reason
    assert any(
        h["message"] == "RTCMEDSRV did not drain within its deadline (300s): stopping it now "
        "(pools.toml [service_drain])"
        for h in record.history
    )


def test_the_catalogs_response_group_deadline_reaches_every_patch_run() -> None:
    options = default_options(TARGET)
    assert options.drain_rule("rtcrgs") == (600.0, "force-stop", True)
    assert options.drain_rule("RTCSRV") == (options.drain_timeout, "stop", False)


def test_what_if_shows_the_values_a_run_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The preview and the driver bind from one table: every action a run sent carries the parameter
    names its preview shows."""
    from ocsps.patch.driver import preview_scripts

    sent: dict[str, set[str]] = {}
    render = Server.render

    def spy(self: Server, action: str, service: Any = None, **values: object) -> Any:
        sent.setdefault(action, set()).update(values)
        return render(self, action, service, **values)

    monkeypatch.setattr(Server, "render", spy)
    record = _run()
    assert record.status is PatchStatus.DONE, record.reason
    preview = {
        str(s["action"]): set(s["parameters"])
        for s in preview_scripts(record.plan, load_catalog().product("sfb2015"))
    }
    assert set(preview) <= set(sent)
    assert {a: sent[a] for a in preview} == preview


@pytest.mark.parametrize("product", ["lync2010", "lync2013"])
def test_what_if_binds_the_component_filter_where_versions_come_from_win32_product(product: str) -> None:
    from ocsps.patch.driver import preview_scripts

    catalog_product = load_catalog().product(product)
    plan = plan_patch(
        HOST, catalog_product, "C:\\U\\LyncServerUpdateInstaller.exe", default_options("5.0.8308.1")
    )
    state = next(s for s in preview_scripts(plan, catalog_product) if s["action"] == "patch-state")
    assert "ComponentFilter" in state["parameters"]
