"""``patch server`` interrupted, then resumed from its record, against the lab: each case stops a run at
a given point, resumes it from the saved JSON (as a new process would), and asks the lab what happened:
how many installs and restarts it saw, the versions, the services and their start-up types."""

from __future__ import annotations

import json
from typing import Any

import pytest

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
from tests.patch.test_lab_patch import HOST, INSTALLER, TARGET, FastClock, _topology

LONG = {"reboot_timeout": 6 * 3600.0, "restore_timeout": 3600.0}


class Rehearsal:
    """One lab, and runs of one plan against it, each from the record the previous one saved."""

    def __init__(self, patch: dict[str, Any], **options: Any) -> None:
        self.clock = FastClock()
        topology = parse_topology(_topology(patch, {}), source="resume case", clock=self.clock.now)
        self.lab = Lab(topology)
        self.plan = plan_patch(
            HOST, load_catalog().product("sfb2015"), INSTALLER, default_options(TARGET, **{**LONG, **options})
        )
        self.saved = ""
        self.messages: list[str] = []

    def run(self, stop_at: str = "", *, resume: bool = False, rerun_install: bool = False) -> PatchRecord:
        def factory(host: str) -> Server:
            return Server(
                ServerSession(lab_settings(self.lab, host), self.lab.server(host).product, retry_backoff=0.01)
            )

        def on_event(event: PatchEvent) -> None:
            self.messages.append(event.message)
            if stop_at and event.message.startswith(stop_at):
                raise KeyboardInterrupt

        def save(record: PatchRecord) -> None:
            self.saved = json.dumps(record_document(record))

        record = PatchRecord.from_json(json.loads(self.saved)) if resume else None
        driver = RemotePatchDriver(factory, call_timeout=60, probe_timeout=0.1)
        try:
            runner = PatchRunner(
                driver,
                record.plan if record else self.plan,
                save=save,
                clock=self.clock.now,
                sleep=self.clock.sleep,
                on_event=on_event,
                simulation=True,
                record=record,
                rerun_install=rerun_install,
            )
            return runner.run()
        finally:
            driver.close()

    @property
    def knobs(self) -> Any:
        return self.lab.engine.patch.patches[HOST]

    def services(self) -> set[tuple[str, str]]:
        return {(s.status, s.startup) for s in self.lab.server(HOST).services.values()}


CASES: list[tuple[str, dict[str, Any], str, str, tuple[int, int]]] = [
    # (id, lab knobs, interrupted at the event starting with, the resume's own event, (installs, restarts))
    ("after-the-install", {}, "installer exit code", "it is not run again", (1, 1)),
    ("during-the-restart", {"reboot_seconds": 1800}, "restart requested", "not restarting again", (1, 1)),
    ("before-the-install", {}, "step install", "resuming: done before: preflight, out-of-service", (1, 1)),
    ("at-the-verification", {"exit_code": 0}, "step verify", "resuming", (1, 0)),
]


@pytest.mark.parametrize(
    ("knobs", "stop_at", "said", "counts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_an_interrupted_run_resumes_where_it_stopped(
    knobs: dict[str, Any], stop_at: str, said: str, counts: tuple[int, int]
) -> None:
    case = Rehearsal(knobs)
    with case.lab:
        first = case.run(stop_at)
        assert first.status is PatchStatus.INTERRUPTED
        assert first.left_disabled == [] or first.final is None
        resumed = case.run(resume=True)
        assert resumed.status is PatchStatus.DONE, resumed.reason
        assert any(said in m for m in case.messages), said
        assert (case.knobs.installs, case.knobs.restarts) == counts
        assert set(case.knobs.components.values()) == {TARGET}
        assert case.services() == {("Running", "Automatic")}  # in service, nothing left Disabled
        assert resumed.runs == 2


def test_an_install_whose_outcome_was_lost_is_not_run_twice() -> None:
    """The call gives up on the installer (its deadline is the session's, 1 s of wall clock = 1200 lab
    seconds), which goes on running in the lab. Resumed at once: the versions are not there yet and the
    installer may still run, so the run stops and says so, without starting another. Resumed once the
    installer has ended: found at the version, not run again."""
    case = Rehearsal({"install_seconds": 6000}, install_timeout=1.0)
    with case.lab:
        first = case.run()
        assert first.status is PatchStatus.TIMED_OUT and "may still be running" in first.reason
        early = case.run(resume=True)
        assert early.status is PatchStatus.STOPPED, early.reason
        assert "the installer may still be running" in early.reason
        assert case.knobs.installs == 0 and case.knobs.running_install is not None
        assert case.services() <= {("Stopped", "Automatic")}  # restored, still out of service
        case.clock.sleep(6000)
        done = case.run(resume=True)
        assert done.status is PatchStatus.DONE, done.reason
        assert any("the interrupted install finished" in m for m in case.messages)
        assert case.knobs.installs == 1
        assert case.services() == {("Running", "Automatic")}
