"""The PSRP runner over real WSMan/PSRP messages: pool reuse, pipeline close, deadline, streams.

Every reply comes from the lab's server side (psrpcore) through ``responses`` (see wire.py), so these tests
see exactly the requests pypsrp sends and can count them; nothing here depends on timing.
"""

from __future__ import annotations

import logging

import pytest

from ocsps.errors import ErrorRecord, RemoteError, TimeoutExceeded
from ocsps.powershell.script import RenderedScript, render_action
from ocsps.remote.server import Server
from ocsps.remote.session import CLOSE_TIMEOUT, Progress
from ocsps.results import ServiceState, ServiceStatus
from tests.session.wire import HOST, SIGNAL_CTRL_C, SIGNAL_TERMINATE, WireLab, probe

pytestmark = pytest.mark.timeout(60)

MODULE_IMPORT = "# ocsps:action=module-import"


def _status(wire: WireLab, host: str = HOST) -> RenderedScript:
    return render_action("status", wire.product(host), {"Name": "RTCMEDSRV"})


def test_pool_is_opened_once_and_reused(wire: WireLab) -> None:
    with Server(wire.session()) as server:
        first = server.status("RTCMEDSRV")
        before = len(wire.actions())
        second = server.status("RTCMEDSRV")
        later = wire.actions()[before:]
        assert server.session.stats.pools_opened == 1
    assert first.name == second.name == "RTCMEDSRV"
    assert "Create" not in later, "the second call reused the pool"
    assert later == ["Signal", "Command", "Receive"], "the first pipeline is released before the second"
    assert wire.count("Create") == 1
    assert wire.count("Delete") == 1
    assert wire.open_shells() == 0


def test_product_module_imported_once_per_pool_inside_the_first_pipeline(wire: WireLab) -> None:
    session = wire.session()
    with session:
        for _ in range(3):
            session.run(_status(wire)).raise_for_errors()
    scripts = wire.executor.scripts()
    assert [MODULE_IMPORT in s for s in scripts] == [True, False, False]
    assert all("ocsps:action=status" in s for s in scripts), "the import rides with the first call"
    with session:  # a new pool needs the module again
        session.run(_status(wire))
    assert sum(MODULE_IMPORT in s for s in wire.executor.scripts()) == 2
    assert session.stats.pools_opened == 2


def test_a_cold_call_costs_one_pipeline(wire: WireLab) -> None:
    """Opening a session and reading one status: one Command, one Receive; no import pipeline, and no
    Signal: the shell's Delete ends the session's last pipeline.

    A pool opens in two Receives, as every recorded real server answers (tests/conformance)."""
    with wire.session() as session:
        session.run(_status(wire)).raise_for_errors()
    assert wire.actions() == ["Create", "Receive", "Receive", "Command", "Receive", "Delete"]


def test_an_import_that_fails_is_retried_with_the_next_call(wire: WireLab) -> None:
    """A call whose pipeline reported errors leaves the import to the next call (it is idempotent)."""
    with wire.session() as session:
        session.run(probe("nonterminating-errors", wire.product()))
        session.run(_status(wire)).raise_for_errors()
    assert [MODULE_IMPORT in s for s in wire.executor.scripts()] == [True, True]


def test_every_pipeline_is_released_before_the_next_and_the_last_by_the_shells_delete(wire: WireLab) -> None:
    with wire.session() as session:
        for _ in range(4):
            session.run(_status(wire))
    commands = wire.commands()
    terminates = [cid for cid, code in wire.signals() if code == SIGNAL_TERMINATE]
    assert len(commands) == 4  # four calls; the module import rides with the first
    assert terminates == commands[:-1]  # each released once, in order, before the next Command
    assert wire.actions()[-1] == "Delete" and wire.open_shells() == 0


def test_values_are_bound_as_parameters_never_pasted(wire: WireLab) -> None:
    hostile = "RTCMEDSRV'; Stop-Computer -Force #"
    with wire.session() as session:
        result = session.run(probe("echo", wire.product(), params={"Name": hostile}))
    (echoed,) = result.output
    assert echoed.extended_properties == {"Name": hostile}
    assert all(hostile not in script for script in wire.executor.scripts())


def test_deadline_stops_the_pipeline_and_keeps_the_pool(wire: WireLab) -> None:
    with wire.session() as session:
        with pytest.raises(TimeoutExceeded) as caught:
            session.run(probe("hang", wire.product()), timeout=1)
        hung = wire.commands()[-1]
        assert wire.executor.cancelled.wait(10), "the server saw the stop"
        session.run(_status(wire)).raise_for_errors()
        codes = [code for cid, code in wire.signals() if cid == hung]
        assert codes[0].endswith(SIGNAL_CTRL_C)
        assert codes[1:] == [SIGNAL_TERMINATE], "the stopped pipeline is released before the next call"
    exc = caught.value
    assert exc.host == HOST and HOST in exc.message and "stopped" in exc.message
    assert "\n" not in str(exc)
    assert wire.count("Create") == 1, "a timed-out call does not cost the pool"


def test_non_terminating_errors_are_kept_and_mapped(wire: WireLab) -> None:
    with wire.session() as session:
        result = session.run(probe("nonterminating-errors", wire.product()))
    assert result.output == ("before", "after"), "the pipeline completed: had_errors alone would say success"
    assert result.errors == (
        ErrorRecord(
            message="Cannot find any service with service name 'RTCNOPE'.",
            category="ObjectNotFound",
            fully_qualified_error_id="NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
            target="RTCNOPE",
        ),
        ErrorRecord(
            message="Access is denied. The account is not a CsAdministrator.",
            category="PermissionDenied",
            fully_qualified_error_id="AccessDenied,Microsoft.Rtc.Management.GetCsWindowsServiceCmdlet",
            target="med01.contoso.com",
        ),
    )
    with pytest.raises(RemoteError) as caught:
        result.raise_for_errors()
    assert caught.value.records == list(result.errors)
    assert caught.value.message == (
        f"{HOST}: Cannot find any service with service name 'RTCNOPE'. "
        "[NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand] (+1 more)"
    )


def test_terminating_error_is_mapped(wire: WireLab) -> None:
    with wire.session() as session:
        result = session.run(probe("terminating-error", wire.product()))
        session.run(_status(wire)).raise_for_errors()  # a failed pipeline leaves the pool usable
    assert result.output == ("partial",)
    (record,) = result.errors
    assert record.category == "InvalidOperation"
    assert (
        record.fully_qualified_error_id
        == "CouldNotStopService,Microsoft.PowerShell.Commands.StopServiceCommand"
    )
    assert record.target == "RTCMEDSRV"
    assert record.message == "Service 'Mediation (RTCMEDSRV)' cannot be stopped due to the following error."


def test_warnings_verbose_and_debug_go_to_logging(wire: WireLab, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ocsps.remote")
    with wire.session() as session:
        result = session.run(probe("streams", wire.product()))
    text = "Unable to read performance counters: the user is not in Performance Monitor Users."
    assert result.warnings == (text,)
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "ocsps.remote"]
    assert (logging.WARNING, f"{HOST}: {text}") in logged
    assert (
        logging.INFO,
        f"{HOST}: Performing the operation Stop-CsWindowsService on target RTCMEDSRV.",
    ) in logged
    assert (logging.DEBUG, f"{HOST}: graceful stop requested") in logged


def test_progress_records_reach_the_callback(wire: WireLab) -> None:
    seen: list[Progress] = []
    with wire.session(on_progress=seen.append) as session:
        session.run(probe("streams", wire.product()))
    assert seen == [
        Progress(HOST, "Draining RTCMEDSRV", "0% of calls ended", 0),
        Progress(HOST, "Draining RTCMEDSRV", "50% of calls ended", 50),
        Progress(HOST, "Draining RTCMEDSRV", "100% of calls ended", 100),
        Progress(HOST, "Waiting", "no estimate", -1),
    ]


@pytest.mark.parametrize("host", ["med01.contoso.com", "med10.contoso.com", "ocs01.contoso.com"])
def test_typed_results_from_each_protocol_version(wire: WireLab, host: str) -> None:
    """PowerShell 2.0 products answer with PSRP 2.1; the runner and parsers must not assume 2.3."""
    with Server(wire.session(host)) as server:
        services = server.services()
    assert services and all(isinstance(s, ServiceStatus) for s in services)
    assert all(s.status is ServiceState.RUNNING for s in services)


def test_close_requests_are_short(wire: WireLab) -> None:
    """The Delete that ends a session must not wait a full read timeout on a server that stopped answering."""
    with wire.session(
        settings={"read_timeout": 90, "operation_timeout": 60, "connection_timeout": 60}
    ) as session:
        session.run(_status(wire))
    (delete,) = [e for e in wire.exchanges if e.action == "Delete"]
    assert max(delete.timeout) <= CLOSE_TIMEOUT
    commands = [e for e in wire.exchanges if e.action == "Command"]
    assert all(max(e.timeout) == 90 for e in commands), "normal requests keep the configured timeouts"


def test_a_failing_progress_callback_does_not_fail_the_call(
    wire: WireLab, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(progress: Progress) -> None:
        raise RuntimeError("terminal went away")

    with wire.session(on_progress=broken) as session:
        result = session.run(probe("streams", wire.product()))
        assert session.is_open
    assert result.output == ("done",)
    assert any("progress callback failed" in r.getMessage() for r in caplog.records)


def test_open_can_import_the_module_up_front(wire: WireLab) -> None:
    """For a caller that wants a module that does not load to fail at open (the checks do)."""
    with wire.session() as session:
        session.open(import_module=True)
        session.run(_status(wire)).raise_for_errors()
    scripts = wire.executor.scripts()
    assert [MODULE_IMPORT in s for s in scripts] == [True, False]
    assert "ocsps:action=status" not in scripts[0]
