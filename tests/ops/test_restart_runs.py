"""Restart runs from a folder of cases (tests/data/restart_runs) against a server that keeps Windows' rules.

The fake refuses to stop a service whose dependents run (unless forced) and starts prerequisites with a
service, as the service control manager does, so a wrong order fails here. Each case names the services
absent, stopped before, failing or losing their reply, and the calls, restores and final state expected.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ocsps.catalog import Catalog, Product, Service
from ocsps.errors import ErrorRecord, OperationFailed, OutcomeUnknown, RemoteError, TimeoutExceeded
from ocsps.jsonout import to_builtins
from ocsps.operations.restart import (
    RestartReport,
    RestartReportDocument,
    RunPhase,
    StepOutcome,
    restart_service,
    run_restart_plan,
    run_steps,
)
from ocsps.plans.restart import plan_restart, service_restart_steps, service_stop_steps
from ocsps.plans.restart_document import plan_document
from ocsps.results import EventRecord, ServiceState, ServiceStatus
from tests.conftest import DATA

CASES = sorted((DATA / "restart_runs").glob("*.json"))
REPORT_SCHEMA = json.loads((DATA.parents[1] / "docs" / "schemas" / "restart.schema.json").read_text())


class WindowsRulesServer:
    """Services of one product with Windows' service-control rules; records every change sent."""

    host = "fake01.contoso.com"

    def __init__(
        self,
        catalog: Catalog,
        product: Product,
        *,
        absent: Iterable[str] = (),
        stopped: Iterable[str] = (),
        stop_fails: Iterable[str] = (),
        start_fails: Iterable[str] = (),
        lost_reply: Iterable[str] = (),
        interrupt: Iterable[str] = (),
        time_out: Iterable[str] = (),
    ) -> None:
        self.catalog, self._product = catalog, product
        gone = set(absent)
        self.state = {
            s.key: ServiceState.STOPPED if s.key in set(stopped) else ServiceState.RUNNING
            for s in catalog.services_for(product, include_external=True)
            if s.key not in gone
        }
        self.stop_fails, self.start_fails = set(stop_fails), set(start_fails)
        self.lost_reply = list(lost_reply)
        self.interrupt, self.time_out = set(interrupt), set(time_out)
        self.calls: list[str] = []

    @property
    def product(self) -> Product:
        return self._product

    def resolve(self, service: str | Service) -> Service:
        return service if isinstance(service, Service) else self.catalog.find_service(self.product, service)

    def _status(self, key: str) -> ServiceStatus:
        svc = self.catalog.service_by_key(key)
        state = self.state[key]
        return ServiceStatus(
            name=svc.name or "RTC" + key.upper().replace("-", ""),
            status=state,
            status_text=state.value,
            display_name=svc.display_name(self.product),
            computer=self.host,
        )

    def services(
        self, service: str | Service | None = None, *, activity: bool = True, timeout: float | None = None
    ) -> list[ServiceStatus]:
        return [self._status(k) for k in self.state if not self.catalog.service_by_key(k).external]

    def status(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus:
        key = self.resolve(service).key
        if key not in self.state:
            raise OperationFailed(f"{key} was not found on the server", host=self.host)
        return self._status(key)

    def _change(self, verb: str, key: str) -> ServiceStatus:
        self.calls.append(f"{verb} {key}")
        if key not in self.state:
            raise RemoteError(
                [ErrorRecord("Cannot find any service", fully_qualified_error_id="NoServiceFound")]
            )
        if f"{verb} {key}" in self.interrupt:
            raise KeyboardInterrupt
        if f"{verb} {key}" in self.time_out:
            self._apply(verb, key)
            raise TimeoutExceeded("no answer before the deadline", host=self.host)
        if f"{verb} {key}" in self.lost_reply:
            self.lost_reply.remove(f"{verb} {key}")
            self._apply(verb, key)
            raise OutcomeUnknown("the reply was lost", host=self.host)
        self._apply(verb, key)
        return self._status(key)

    def _apply(self, verb: str, key: str) -> None:
        if verb == "stop":
            if key in self.stop_fails:
                raise RemoteError([ErrorRecord(f"Service '{key}' cannot be stopped")], host=self.host)
            running = [
                s.key
                for s in self.catalog.dependents_of(self.product, self.catalog.service_by_key(key))
                if self.state.get(s.key) is ServiceState.RUNNING
            ]
            if running:
                raise RemoteError(
                    [ErrorRecord(f"Cannot stop service '{key}' because it has dependent services.")],
                    host=self.host,
                )
            self.state[key] = ServiceState.STOPPED
        else:
            if key in self.start_fails:
                raise RemoteError([ErrorRecord(f"Service '{key}' cannot be started")], host=self.host)
            for prereq in self.catalog.prerequisites_of(self.catalog.service_by_key(key)):
                if prereq in self.state:
                    self.state[prereq] = ServiceState.RUNNING
            self.state[key] = ServiceState.RUNNING

    def stop(
        self, service: str | Service, *, force: bool = False, timeout: float | None = None
    ) -> ServiceStatus:
        return self._change("stop", self.resolve(service).key)

    def start(self, service: str | Service, *, timeout: float | None = None) -> ServiceStatus:
        return self._change("start", self.resolve(service).key)

    def begin_drain(
        self, service: str | Service, *, leave_running: Iterable[str] = (), timeout: float | None = None
    ) -> ServiceStatus:
        raise AssertionError("a restart never drains")

    def events(
        self,
        ids: Iterable[int],
        since: datetime,
        *,
        log_name: str | None = None,
        max_events: int | None = None,
        timeout: float | None = None,
    ) -> list[EventRecord]:
        return []


def _server(case: dict[str, Any], catalog: Catalog) -> WindowsRulesServer:
    return WindowsRulesServer(
        catalog,
        catalog.product(case["product"]),
        absent=case.get("absent", ()),
        stopped=case.get("stopped", ()),
        stop_fails=case.get("stop_fails", ()),
        start_fails=case.get("start_fails", ()),
        lost_reply=case.get("lost_reply", ()),
        interrupt=case.get("interrupt", ()),
        time_out=case.get("time_out", ()),
    )


def _run(case: dict[str, Any], server: WindowsRulesServer, decisions: list[str]) -> RestartReport:
    restore = case.get("restore", True)
    if "plan" in case:
        plan = plan_document(plan_restart(case["plan"], product=case["product"]))
        return run_restart_plan(server, plan, restore=restore, on_decision=decisions.append)
    if "stop_with_dependents" in case:
        service = server.resolve(case["stop_with_dependents"])
        steps = service_stop_steps(server.catalog, server.product, service)
        return run_steps(server, steps, restore=restore, on_decision=decisions.append)
    return restart_service(server, case["service"], restore=restore, on_decision=decisions.append)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_restart_run_case(path: Path, catalog: Catalog) -> None:
    case: dict[str, Any] = json.loads(path.read_text())
    expected = case["expected"]
    server = _server(case, catalog)
    decisions: list[str] = []
    if "error" in expected:
        with pytest.raises(OperationFailed, match=expected["error"]):
            _run(case, server, decisions)
        assert server.calls == expected["calls"]
        return
    report = _run(case, server, decisions)
    assert server.calls == expected["calls"]
    assert report.phase.value == expected["phase"]
    assert report.ok is expected["ok"]
    assert [k for k, _ in report.absent] == expected.get("absent", [])
    assert [s.key for s in report.restored] == expected["restored"]
    assert all(s.restore for s in report.restored)
    assert [s.key for s in report.down] == expected["down"]
    assert report.observed
    for step in report.steps:
        if step.key in expected.get("absent", []):
            assert step.outcome in (StepOutcome.SKIPPED, StepOutcome.NOT_RUN), step
            assert not any(call.endswith(f" {step.key}") for call in server.calls), "never sent"
    # the report tells the truth: what it lists as down is what the server shows
    truly_down = [k for k, v in server.state.items() if v is not ServiceState.RUNNING]
    assert sorted(s.key for s in report.down) == sorted(
        k for k in truly_down if k in {s.key for s in report.steps}
    )
    assert len(decisions) == expected.get("decisions", 0)
    document = to_builtins(RestartReportDocument.of(report))
    jsonschema.validate(document, {**REPORT_SCHEMA["$defs"]["report"], "$defs": REPORT_SCHEMA["$defs"]})


def test_cases_cover_each_rule() -> None:
    cases = [json.loads(p.read_text()) for p in CASES]
    assert any(c.get("absent") for c in cases), "absent services"
    assert any(c["expected"].get("restored") for c in cases), "restore after a failure"
    assert any(c.get("restore") is False for c in cases), "restore turned off"
    assert any(c.get("lost_reply") for c in cases), "lost replies"
    assert any("service" in c and c["expected"]["calls"][0] != f"stop {c['service']}" for c in cases), (
        "dependents"
    )


def test_on_step_hears_every_step_and_cancel_restores(catalog: Catalog) -> None:
    """A cancel set during step 2 ends the run before step 3 and brings back both stopped services."""
    server = WindowsRulesServer(catalog, catalog.product("ocs2007r2"))
    plan = plan_document(plan_restart(["MSFT_SIPRoutingSetting.DefaultPort"]))
    cancel = threading.Event()
    heard: list[str] = []

    def on_step(result: Any) -> None:
        heard.append(f"{result.outcome.value} {result.label}")
        if result.number == 2:
            cancel.set()

    report = run_restart_plan(server, plan, on_step=on_step, cancel=cancel)
    assert report.phase is RunPhase.INTERRUPTED and not report.ok
    assert [s.outcome for s in report.steps][2:] == [StepOutcome.NOT_RUN] * (len(report.steps) - 2)
    assert [s.key for s in report.restored] == ["ocs-im-conferencing", "ocs-frontend"]
    assert len(heard) == len(report.steps) + len(report.restored)
    assert all(v is ServiceState.RUNNING for v in server.state.values())


def test_deadline_before_a_step_restores(catalog: Catalog) -> None:
    """Checked with an injected clock: past the deadline no new step starts, and the stops are undone."""
    server = WindowsRulesServer(catalog, catalog.product("ocs2007r2"))
    product = catalog.product("ocs2007r2")
    steps = service_restart_steps(catalog, product, catalog.service_by_key("ocs-application-host"))
    ticks = iter(range(100))
    report = run_steps(server, steps, deadline=3.5, clock=lambda: float(next(ticks)))
    assert report.phase is RunPhase.DEADLINE
    assert server.calls[: len(report.restored) * -1 or None][-1].startswith("stop")
    assert all(v is ServiceState.RUNNING for v in server.state.values())
    assert report.restored and all(s.outcome is StepOutcome.DONE for s in report.restored)


def test_plan_for_another_product_is_refused_before_anything_is_sent(catalog: Catalog) -> None:
    from ocsps.errors import UsageError

    server = WindowsRulesServer(catalog, catalog.product("ocs2007"))
    plan = plan_document(plan_restart(["MSFT_SIPRoutingSetting.DefaultPort"], product="ocs2007r2"))
    with pytest.raises(UsageError, match="the plan is for ocs2007r2"):
        run_restart_plan(server, plan)
    assert server.calls == []
