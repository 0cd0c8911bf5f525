"""The lab endpoint against the unmodified pypsrp client.

Every test talks real HTTP on 127.0.0.1 with pypsrp's WSMan / RunspacePool / PowerShell classes, because
the point of the lab is that client code cannot tell it from a WinRM listener. Fault tests assert what the
client observes and what the server counted, never how long anything took.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import (
    AuthenticationError,
    InvalidPSRPOperation,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.shell import CommandState
from pypsrp.wsman import WSMan

from ocsps.lab.auth import AuthMode, CredentialStore
from ocsps.lab.faults import (
    AUTH_LEGS,
    DROPPED,
    ENCRYPTED,
    HTTP_ERRORS,
    TIMEOUTS,
    UNAUTHORIZED,
    FaultKind,
    Faults,
)
from ocsps.lab.wsman import (
    DEFAULT_MAX_COMMANDS_PER_SHELL,
    FAULT_OPERATION_TIMEOUT,
    FAULT_SHELL_NOT_FOUND,
    HostSpec,
    Invocation,
    LabServer,
    PipelineFailure,
    PipelineSink,
)
from ocsps.lab.wsman.soap import FAULT_MAX_COMMANDS_PER_SHELL

pytestmark = pytest.mark.timeout(30)

USER = "LAB\\admin"
PASSWORD = "Passw0rd!"
FE = "fe01.lab.local"
OCS = "ocs01.lab.local"
NTSERVICE = "Microsoft.Rtc.Management.Deployment.Core.NTService"
E_FAIL = 2147500037
WAIT = 10.0  # generous bound for thread hand-offs; tests never depend on it being short


class LabExecutor:
    """A tiny stand-in for PowerShell: each command name is one behaviour."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Invocation]] = []
        self.called = threading.Event()
        self.started = threading.Event()
        self.cancel_seen = threading.Event()
        self.step = threading.Semaphore(0)
        self._lock = threading.Lock()

    def __call__(self, server: str, invocation: Invocation, out: PipelineSink) -> None:
        with self._lock:
            self.calls.append((server, invocation))
        self.called.set()
        command = invocation.commands[0]
        name = command.text
        if name == "Echo-Parameters":
            for param_name, value in command.parameters:
                out.write({"Name": param_name, "Value": value, "Server": server})
        elif name == "Write-Series":
            big_index = int(command.get("BigIndex", -1))
            for index in range(int(command.get("Count"))):
                size = int(command.get("BigSize", 0)) if index == big_index else 0
                out.write(f"{index}:" + "x" * size)
        elif name == "Throw-Terminating":
            out.write("partial")
            raise PipelineFailure(
                "Cannot find service RTCSRV.",
                category="ObjectNotFound",
                error_id="NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                target="RTCSRV",
                exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
            )
        elif name == "Write-NonTerminating":
            out.write("before")
            out.write_error("Access is denied.", category="PermissionDenied", error_id="AccessDenied,Lab")
            out.write("after")
        elif name == "Wait-Cancel":
            out.write("started")
            self.started.set()
            if out.wait_cancelled(30):
                self.cancel_seen.set()
        elif name == "Get-CsWindowsService":
            out.write_object(
                [NTSERVICE],
                adapted={"Name": "RTCSRV", "Status": "Running", "ActivityLevel": "Active"},
                to_string="RTCSRV",
            )
        elif name == "Write-Stepwise":
            # One object per step; the next is produced only once the test has seen the previous one.
            for index in range(int(command.get("Count"))):
                out.write(f"step {index}")
                if not self.step.acquire(timeout=WAIT):
                    raise PipelineFailure("the client never asked for the next step")
        elif name == "Echo-Input":
            for item in invocation.input:
                out.write(f"in:{item}")
        elif name == "Write-Records":
            out.write_warning("careful")
            out.write_verbose("details")
            out.write_debug("internals")
            out.write_progress("Draining", "50 %", percent_complete=50)
            out.write("done")
        else:
            raise PipelineFailure(
                f"The term '{name}' is not recognized as the name of a cmdlet.",
                category="ObjectNotFound",
                error_id="CommandNotFoundException",
            )


@pytest.fixture
def executor() -> LabExecutor:
    return LabExecutor()


def make_lab(executor: LabExecutor, auth: AuthMode = "ntlm", **kwargs: Any) -> LabServer:
    hosts = kwargs.pop("hosts", [HostSpec(FE), HostSpec(OCS, protocol_version="2.1")])
    return LabServer(hosts, executor=executor, credentials=(USER, PASSWORD), auth=auth, **kwargs)


@pytest.fixture
def lab(executor: LabExecutor) -> Iterator[LabServer]:
    with make_lab(executor, "ntlm") as server:
        yield server


@pytest.fixture
def basic_lab(executor: LabExecutor) -> Iterator[LabServer]:
    with make_lab(executor, "basic") as server:
        yield server


def client(lab: LabServer, fqdn: str = FE, **overrides: Any) -> WSMan:
    kwargs = lab.client_kwargs(fqdn)
    kwargs.setdefault("operation_timeout", 5)
    kwargs.update(overrides)
    return WSMan(**kwargs)


def run(pool: RunspacePool, command: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(command)
    for name, value in params.items():
        ps.add_parameter(name, value)
    ps.invoke()
    ps.close()
    return ps


# -- authentication and encryption ------------------------------------------------------------------


def test_ntlm_with_message_encryption_over_http(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = run(pool, "Echo-Parameters", Name="RTCSRV", Count=3, Flag=True)
        assert wsman.transport.encryption is not None
    assert [(o.extended_properties["Name"], o.extended_properties["Value"]) for o in ps.output] == [
        ("Name", "RTCSRV"),
        ("Count", 3),
        ("Flag", True),
    ]
    assert ps.output[0].extended_properties["Server"] == FE
    counters = lab.counters(FE).snapshot()
    assert counters[AUTH_LEGS] == 2
    assert counters[UNAUTHORIZED] == 2
    soap_requests = sum(counters.get(a, 0) for a in ("Create", "Command", "Receive", "Signal", "Delete"))
    assert counters[ENCRYPTED] == soap_requests


def test_negotiate_sends_final_token_and_encrypts(executor: LabExecutor) -> None:
    with make_lab(executor, "negotiate") as lab, client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = run(pool, "Echo-Parameters", Name="x")
        transport: Any = wsman.transport
        context = transport.session.auth.contexts["127.0.0.1"]
        assert context.complete
        assert lab.counters(FE)[ENCRYPTED] >= 3
    assert ps.output[0].extended_properties["Value"] == "x"


def test_basic_over_http_without_encryption(basic_lab: LabServer) -> None:
    kwargs = basic_lab.client_kwargs(FE)
    assert kwargs["encryption"] == "never"
    with client(basic_lab) as wsman, RunspacePool(wsman) as pool:
        ps = run(pool, "Echo-Parameters", Name="y")
    assert ps.output[0].extended_properties["Value"] == "y"
    assert basic_lab.counters(FE)[ENCRYPTED] == 0


@pytest.mark.parametrize("auth", ["ntlm", "negotiate", "basic"])
def test_wrong_password_is_refused(executor: LabExecutor, auth: AuthMode) -> None:
    with make_lab(executor, auth) as lab:
        with client(lab, password="wrong") as wsman, pytest.raises(AuthenticationError):
            RunspacePool(wsman).open()
        assert lab.counters(FE)[UNAUTHORIZED] >= 1
        assert lab.counters(FE)["Create"] == 0
    assert executor.calls == []


def test_unknown_user_is_refused_even_with_a_valid_password(lab: LabServer) -> None:
    with client(lab, username="LAB\\intruder") as wsman, pytest.raises(AuthenticationError):
        RunspacePool(wsman).open()


def test_bare_user_name_matches_the_domain_account(lab: LabServer) -> None:
    with client(lab, username="admin") as wsman, RunspacePool(wsman) as pool:
        assert run(pool, "Echo-Parameters", A=1).output[0].extended_properties["Value"] == 1


def test_clear_text_soap_is_refused_when_encryption_is_required(lab: LabServer) -> None:
    with client(lab, encryption="never") as wsman, pytest.raises(AuthenticationError):
        RunspacePool(wsman).open()
    assert lab.counters(FE)["Create"] == 0


def test_ntlm_user_file_is_set_only_while_running(executor: LabExecutor) -> None:
    before = os.environ.get("NTLM_USER_FILE")
    lab = make_lab(executor, "ntlm").start()
    try:
        path = CredentialStore.shared().path(lab)
        assert path is not None and os.environ["NTLM_USER_FILE"] == path
        with open(path, encoding="utf-8") as fh:
            assert "LAB:admin:Passw0rd!" in fh.read().splitlines()
    finally:
        lab.stop()
    assert os.environ.get("NTLM_USER_FILE") == before
    assert CredentialStore.shared().path(lab) is None


def test_two_labs_with_the_same_user_and_different_passwords(executor: LabExecutor) -> None:
    other = LabServer([FE], executor=executor, credentials=(USER, "Other-Secret1"), auth="negotiate")
    with make_lab(executor, "ntlm") as lab, other:
        for server, password in ((lab, PASSWORD), (other, "Other-Secret1"), (lab, PASSWORD)):
            with client(server, password=password) as wsman, RunspacePool(wsman) as pool:
                assert run(pool, "Echo-Parameters", A=1).output
        with client(other, password=PASSWORD) as wsman, pytest.raises(AuthenticationError):
            RunspacePool(wsman).open()


def test_colon_in_an_ntlm_password_is_refused_up_front(executor: LabExecutor) -> None:
    lab = LabServer([FE], executor=executor, credentials=(USER, "pass:word"), auth="ntlm")
    with pytest.raises(ValueError):
        lab.start()
    assert lab.port == 0


# -- PSRP behaviour -----------------------------------------------------------------------------------


def test_powershell_2_host_announces_protocol_2_1(lab: LabServer) -> None:
    with client(lab, OCS) as wsman, RunspacePool(wsman) as pool:
        assert pool.protocol_version == "2.1"
        assert wsman.max_envelope_size == 153600  # pypsrp only grows the envelope from protocol 2.2 on
        ps = PowerShell(pool)
        ps.add_cmdlet("Echo-Parameters").add_parameter("Name", "ocs")
        with pytest.raises(InvalidPSRPOperation):
            ps.merge_warning("output")  # PowerShell 2.0 cannot merge streams; pypsrp refuses locally
        ps.invoke()
        ps.close()
        assert ps.output[0].extended_properties["Server"] == OCS
        assert pool.application_private_data is not None
        table = pool.application_private_data.data["PSVersionTable"]
        assert str(table["PSRemotingProtocolVersion"]) == "2.1"
        assert str(table["PSVersion"]) == "2.0"


def test_powershell_5_host_announces_protocol_2_3(lab: LabServer) -> None:
    with client(lab, FE) as wsman, RunspacePool(wsman) as pool:
        assert pool.protocol_version == "2.3"
        assert wsman.max_envelope_size == 512000


def test_terminating_error_fails_the_pipeline(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = run(pool, "Throw-Terminating")
    assert ps.had_errors
    assert ps.state == PSInvocationState.FAILED
    assert ps.output == ["partial"]
    [record] = ps.streams.error
    error: Any = record
    assert str(error) == "Cannot find service RTCSRV."
    assert error.fq_error == "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand"
    assert error.target_object == "RTCSRV"
    assert "ObjectNotFound" in error.message
    assert error.exception.types[0] == "Microsoft.PowerShell.Commands.ServiceCommandException"


def test_non_terminating_error_lands_in_the_error_stream_only(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = run(pool, "Write-NonTerminating")
    assert not ps.had_errors
    assert ps.state == PSInvocationState.COMPLETED
    assert ps.output == ["before", "after"]
    [error] = ps.streams.error
    assert str(error) == "Access is denied."
    assert error.fq_error == "AccessDenied,Lab"


def test_executor_bug_fails_the_pipeline_instead_of_hanging(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = run(pool, "Get-Nothing")
    assert ps.had_errors
    assert "not recognized" in str(ps.streams.error[0])


def test_adapted_objects_and_records(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        service = run(pool, "Get-CsWindowsService").output[0]
        records = run(pool, "Write-Records")
    assert service.types[0] == NTSERVICE
    assert service.adapted_properties == {"Name": "RTCSRV", "Status": "Running", "ActivityLevel": "Active"}
    assert str(service) == "RTCSRV"
    assert records.output == ["done"]
    assert [w.message for w in records.streams.warning] == ["careful"]
    assert [v.message for v in records.streams.verbose] == ["details"]
    assert [d.message for d in records.streams.debug] == ["internals"]
    [progress] = records.streams.progress
    assert (progress.activity, progress.percent_complete) == ("Draining", 50)


def test_script_parameters_arrive_typed_and_in_order(lab: LabServer, executor: LabExecutor) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool, PowerShell(pool) as ps:
        ps.add_script("param($Name, $Items) Stop-CsWindowsService @PSBoundParameters")
        ps.add_parameter("Name", "RTCSRV").add_parameter("Items", [1, "two"]).add_argument(None)
        ps.invoke()
    [(server, invocation)] = executor.calls
    [command] = invocation.commands
    assert server == FE
    assert invocation.script == "param($Name, $Items) Stop-CsWindowsService @PSBoundParameters"
    assert command.is_script
    assert command.parameters == (("Name", "RTCSRV"), ("Items", [1, "two"]), (None, None))
    assert command.get("name") == "RTCSRV"
    assert invocation.protocol_version == "2.3"
    assert ps.had_errors  # the test executor does not know scripts


def test_output_stream_is_complete_and_ordered_across_receives(lab: LabServer) -> None:
    big = 700_000  # larger than the 512000-byte envelope pypsrp negotiates with protocol 2.3
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        lab.reset_counters()
        ps = run(pool, "Write-Series", Count=6, BigIndex=3, BigSize=big)
    assert [item.split(":", 1)[0] for item in ps.output] == ["0", "1", "2", "3", "4", "5"]
    assert len(ps.output[3]) == len("3:") + big
    assert lab.counters(FE)["Receive"] >= 2


def test_receive_replies_respect_max_envelope_size(basic_lab: LabServer) -> None:
    envelope = 30_000
    sizes: list[int] = []
    with client(basic_lab, max_envelope_size=envelope) as wsman, RunspacePool(wsman) as pool:

        def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            sizes.append(len(response.content))

        transport: Any = wsman.transport
        transport.session.hooks["response"].append(record)
        basic_lab.reset_counters()
        ps = run(pool, "Write-Series", Count=3, BigIndex=1, BigSize=100_000)
    assert len(ps.output[1]) == 100_002
    assert basic_lab.counters(FE)["Receive"] >= 4
    assert max(sizes) <= envelope


def test_long_pipeline_output_streams_as_it_is_produced(lab: LabServer, executor: LabExecutor) -> None:
    """Each Receive returns what is ready while the pipeline runs: a drain watch sees every poll."""
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Write-Stepwise").add_parameter("Count", 3)
        ps.begin_invoke()
        for index in range(3):
            while len(ps.output) <= index:
                ps.poll_invoke()
            assert ps.output == [f"step {i}" for i in range(index + 1)]
            assert ps.state == PSInvocationState.RUNNING
            executor.step.release()
        ps.end_invoke()
        assert ps.state == PSInvocationState.COMPLETED
        assert ps.output == ["step 0", "step 1", "step 2"]


def _invoke_open(pool: RunspacePool, command: str = "Get-CsWindowsService") -> PowerShell:
    """Run a pipeline and leave it unterminated (no Signal terminate), as pypsrp's invoke() does."""
    ps = PowerShell(pool)
    ps.add_cmdlet(command)
    ps.invoke()
    return ps


def test_commands_beyond_max_concurrent_commands_per_shell_are_refused(executor: LabExecutor) -> None:
    server = make_lab(executor, hosts=[HostSpec(FE, max_commands_per_shell=3)])
    with server, client(server) as wsman, RunspacePool(wsman) as pool:
        held = [_invoke_open(pool) for _ in range(3)]
        with pytest.raises(WSManFaultError) as info:
            _invoke_open(pool)
        assert info.value.code == FAULT_MAX_COMMANDS_PER_SHELL
        assert "maximum number of concurrent commands per shell" in str(info.value.reason)
        held[0].close()  # Signal terminate frees a slot; finished but unterminated commands do not
        assert _invoke_open(pool).output[0] is not None


def test_terminated_commands_do_not_count_against_the_quota(executor: LabExecutor) -> None:
    server = make_lab(executor, hosts=[HostSpec(FE, max_commands_per_shell=2)])
    with server, client(server) as wsman, RunspacePool(wsman) as pool:
        for _ in range(5):
            assert run(pool, "Get-CsWindowsService").output


def test_default_quota_is_the_windows_default() -> None:
    assert HostSpec(FE).max_commands_per_shell == DEFAULT_MAX_COMMANDS_PER_SHELL == 1000
    with pytest.raises(ValueError, match="at least 1"):
        HostSpec(FE, max_commands_per_shell=0)


@pytest.mark.parametrize(("fqdn", "server_names_them"), [(OCS, True), (FE, False)])
def test_winrm_2_names_shells_and_commands_itself(lab: LabServer, fqdn: str, server_names_them: bool) -> None:
    """A PowerShell 2.0 host (WinRM 2.0) ignores the client's CommandId and ShellId; later ones keep them."""
    with client(lab, fqdn) as wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-CsWindowsService")
        ps.invoke()
        assert ps.output and ps.state == PSInvocationState.COMPLETED
        assert (str(ps._command_id).upper() != str(ps.id).upper()) is server_names_them
        ps.close()


def test_pool_opens_in_two_receives_like_a_real_server(basic_lab: LabServer) -> None:
    """Capability exchange first, then the pool Opened in the next Receive: every recorded server does so."""
    with client(basic_lab) as wsman:
        pool = RunspacePool(wsman)
        pool.open()
        assert basic_lab.counters(FE)["Receive"] == 2
        pool.close()


def test_set_max_and_min_runspaces_as_the_specification_spells_them(basic_lab: LabServer) -> None:
    with client(basic_lab) as wsman, RunspacePool(wsman) as pool:
        pool.max_runspaces = 5  # pypsrp sends SET_MAX_RUNSPACES with the call id "CI"
        assert pool.get_available_runspaces() == 5
        pool.min_runspaces = 2
        assert pool.min_runspaces == 2
        with pytest.raises(InvalidPSRPOperation):
            pool.min_runspaces = -1
        with pytest.raises(InvalidPSRPOperation):
            pool.max_runspaces = 1  # below the minimum


def test_reset_runspace_state_needs_a_pipeline_to_have_run(basic_lab: LabServer) -> None:
    with client(basic_lab) as wsman, RunspacePool(wsman) as pool:
        with pytest.raises(InvalidPSRPOperation):
            pool.reset_runspace_state()
        run(pool, "Get-CsWindowsService")
        pool.reset_runspace_state()  # raises when the server refuses


def test_command_state_done_carries_the_exit_code(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-CsWindowsService")
        ps.begin_invoke()
        states = []
        while not states or states[-1][0] != CommandState.DONE:
            state, rc, _ = pool.shell.receive("stdout", command_id=ps._command_id)
            states.append((state, rc))
        assert states[-1] == (CommandState.DONE, 0)
        assert all(state != CommandState.RUNNING for state, _ in states)  # WinRM reports Done only


def test_unknown_command_id_is_an_invalid_selectors_fault(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool, pytest.raises(WSManFaultError) as info:
        pool.shell.receive("stdout", command_id=str(uuid.uuid4()).upper())
    assert info.value.code == FAULT_SHELL_NOT_FOUND
    assert "command identifier that does not exist" in str(info.value)


def test_pool_reused_for_several_pipelines(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        for index in range(3):
            assert run(pool, "Echo-Parameters", Index=index).output[0].extended_properties["Value"] == index
        assert lab.open_shells(FE) == 1
    counters = lab.counters(FE).snapshot()
    assert (counters["Create"], counters["Command"], counters["Signal"], counters["Delete"]) == (1, 3, 3, 1)
    assert lab.open_shells(FE) == 0


def test_stop_cancels_a_long_running_pipeline(lab: LabServer, executor: LabExecutor) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Wait-Cancel")
        ps.begin_invoke()
        assert executor.started.wait(WAIT)
        ps.stop()
        assert executor.cancel_seen.wait(WAIT)
        assert ps.state == PSInvocationState.STOPPED
        ps.close()
        assert lab.counters(FE)["Signal"] == 2  # ctrl_c, then terminate on close
        assert run(pool, "Echo-Parameters", After="stop").output[0].extended_properties["Value"] == "stop"


def test_many_hosts_on_one_listener(lab: LabServer) -> None:
    with client(lab, OCS) as ocs, RunspacePool(ocs) as ocs_pool:
        assert run(ocs_pool, "Echo-Parameters", A=1).output[0].extended_properties["Server"] == OCS
    with client(lab, FE, path="wsman") as default, RunspacePool(default) as default_pool:
        assert run(default_pool, "Echo-Parameters", A=1).output[0].extended_properties["Server"] == FE
    assert lab.counters(OCS)["Create"] == 1
    assert lab.counters(FE)["Create"] == 1
    unknown = client(lab, FE, path="wsman/unknown.lab.local")
    with unknown, pytest.raises(WinRMTransportError) as info:
        RunspacePool(unknown).open()
    assert info.value.code == 404


def test_hosts_can_be_added_at_run_time(lab: LabServer) -> None:
    lab.add_host(HostSpec("edge01.lab.local", protocol_version="2.2"))
    with client(lab, "edge01.lab.local") as wsman, RunspacePool(wsman) as pool:
        assert pool.protocol_version == "2.2"
        assert run(pool, "Echo-Parameters", A=1).output[0].extended_properties["Server"] == "edge01.lab.local"


def test_pipeline_input_reaches_the_executor(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool, PowerShell(pool) as ps:
        ps.add_cmdlet("Echo-Input")
        assert ps.invoke(input=(item for item in ["a", "b"])) == ["in:a", "in:b"]
    assert lab.counters(FE)["Send"] >= 1


def test_concurrent_pipelines_in_one_pool_do_not_mix(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        series, echo = PowerShell(pool), PowerShell(pool)
        series.add_cmdlet("Write-Series").add_parameter("Count", 50)
        echo.add_cmdlet("Echo-Parameters").add_parameter("Only", "echo")
        series.begin_invoke()
        echo.begin_invoke()
        echo_output = echo.end_invoke()
        series_output = series.end_invoke()
        series.close()
        echo.close()
    assert series_output == [f"{index}:" for index in range(50)]
    assert [o.extended_properties["Value"] for o in echo_output] == ["echo"]


# -- faults -------------------------------------------------------------------------------------------


def test_drop_before_processing(basic_lab: LabServer, executor: LabExecutor) -> None:
    with client(basic_lab) as wsman, RunspacePool(wsman) as pool:
        basic_lab.faults(FE).drop_next("Command")
        with pytest.raises(requests.exceptions.ConnectionError):
            run(pool, "Echo-Parameters", A=1)
        assert executor.calls == []
        assert basic_lab.counters(FE)[DROPPED] == 1
        # Without message encryption the client simply continues on a new connection.
        assert run(pool, "Echo-Parameters", A=2).output[0].extended_properties["Value"] == 2


def test_drop_after_processing_runs_the_command(basic_lab: LabServer, executor: LabExecutor) -> None:
    with client(basic_lab) as wsman, RunspacePool(wsman) as pool:
        basic_lab.faults(FE).drop_next("Command", after_processing=True)
        with pytest.raises(requests.exceptions.ConnectionError):
            run(pool, "Echo-Parameters", A=1)
        assert executor.called.wait(WAIT)
        assert basic_lab.counters(FE)[DROPPED] == 1


def test_drop_mid_receive_loses_the_reply(basic_lab: LabServer, executor: LabExecutor) -> None:
    with client(basic_lab) as wsman, RunspacePool(wsman) as pool:
        basic_lab.reset_counters()
        basic_lab.faults(FE).drop_next("Receive", after_processing=True)
        with pytest.raises(requests.exceptions.ConnectionError):
            run(pool, "Echo-Parameters", A=1)
        assert len(executor.calls) == 1
        assert basic_lab.counters(FE)["Receive"] == 1
        assert basic_lab.faults(FE).pending()["drop_after"] == {}


def test_dropped_connection_breaks_an_encrypted_ntlm_session(lab: LabServer) -> None:
    with client(lab) as wsman:
        pool = RunspacePool(wsman)
        pool.open()
        lab.faults(FE).drop_next("Command")
        with pytest.raises(requests.exceptions.ConnectionError):
            run(pool, "Echo-Parameters", A=1)
        # The security context died with the connection: every later request is undecryptable, closing
        # the pool included. Recovery needs a new WSMan client (and a new pool).
        with pytest.raises(WinRMTransportError) as info:
            run(pool, "Echo-Parameters", A=2)
        assert info.value.code == 400
        with pytest.raises(WinRMTransportError):
            pool.close()
    assert lab.open_shells(FE) == 1
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        assert run(pool, "Echo-Parameters", A=3).output


def test_create_replayed_after_a_lost_reply_is_refused(basic_lab: LabServer) -> None:
    basic_lab.faults(FE).drop_next("Create", after_processing=True)
    with client(basic_lab) as wsman:
        pool = RunspacePool(wsman)
        with pytest.raises(requests.exceptions.ConnectionError):
            pool.open()
        assert basic_lab.open_shells(FE) == 1  # the server did create it
        with pytest.raises(WSManFaultError) as info:
            pool.open()  # same ShellId: the live shell is neither replaced nor leaked
        assert info.value.code == E_FAIL
    assert basic_lab.open_shells(FE) == 1


def test_http_503_on_create(lab: LabServer) -> None:
    lab.faults(FE).fail_next("Create", 503)
    with client(lab) as wsman:
        pool = RunspacePool(wsman)
        with pytest.raises(WinRMTransportError) as info:
            pool.open()
        assert info.value.code == 503
        pool.open()
        assert run(pool, "Echo-Parameters", A=1).output
        pool.close()
    counters = lab.counters(FE)
    assert (counters["Create"], counters[HTTP_ERRORS]) == (2, 1)


def test_http_500_on_receive_is_an_encrypted_wsman_fault(lab: LabServer) -> None:
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        lab.faults(FE).fail_next("Receive", 500)
        with pytest.raises(WSManFaultError) as info:
            run(pool, "Echo-Parameters", A=1)
        assert info.value.code == E_FAIL
    assert lab.counters(FE)[HTTP_ERRORS] == 1


def test_stuck_receive_times_out_until_released(lab: LabServer, executor: LabExecutor) -> None:
    faults = lab.faults(FE)
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        faults.set_stuck(True)
        ps = PowerShell(pool)
        ps.add_cmdlet("Echo-Parameters").add_parameter("A", 1)
        ps.begin_invoke()
        assert executor.called.wait(WAIT)
        ps.poll_invoke(timeout=1)  # pypsrp swallows the OperationTimeout fault and reports no progress
        assert ps.state == PSInvocationState.RUNNING
        assert ps.output == []
        assert lab.counters(FE)[TIMEOUTS] == 1
        faults.set_stuck(False)
        ps.end_invoke()
        ps.close()
    assert ps.state == PSInvocationState.COMPLETED
    assert ps.output[0].extended_properties["Value"] == 1


def test_receive_timeout_fault_code(lab: LabServer) -> None:
    lab.faults(FE).set_stuck(True)
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Echo-Parameters").add_parameter("A", 1)
        ps.begin_invoke()
        with pytest.raises(WSManFaultError) as info:
            pool._receive(ps.id, timeout=1)
        assert info.value.code == FAULT_OPERATION_TIMEOUT
        lab.faults(FE).set_stuck(False)
        ps.end_invoke()
        ps.close()


def test_latency_beyond_the_client_read_timeout(lab: LabServer) -> None:
    faults = lab.faults(FE)
    faults.set_latency(5_000)
    with client(lab, read_timeout=1) as wsman, pytest.raises(requests.exceptions.ReadTimeout):
        RunspacePool(wsman).open()
    faults.set_latency(0)
    with client(lab) as wsman, RunspacePool(wsman) as pool:
        assert run(pool, "Echo-Parameters", A=1).output


def test_faults_at_construction(executor: LabExecutor) -> None:
    hosts = [HostSpec(FE, faults=Faults(http_503={"Create": 1}))]
    with make_lab(executor, "basic", hosts=hosts) as lab, client(lab) as wsman:
        with pytest.raises(WinRMTransportError):
            RunspacePool(wsman).open()
        with RunspacePool(wsman) as pool:
            assert run(pool, "Echo-Parameters", A=1).output


def test_faults_bookkeeping() -> None:
    faults = Faults(drop={"Receive": 2})
    faults.fail_next("Send", 500)
    faults.drop_next("Receive", after_processing=True)
    assert [faults.consume("Receive") for _ in range(4)] == [
        FaultKind.DROP,
        FaultKind.DROP,
        FaultKind.DROP_AFTER,
        FaultKind.NONE,
    ]
    assert faults.consume("Send") is FaultKind.HTTP_500
    with pytest.raises(ValueError):
        faults.drop_next("Enumerate")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Faults(http_500={"Create": -1})
    faults.set_stuck()
    faults.clear()
    assert not faults.is_stuck()


# -- lifecycle ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["0.0.0.0", "10.1.2.3", "::", "lab.example.com"])
def test_only_loopback_addresses(executor: LabExecutor, address: str) -> None:
    with pytest.raises(ValueError):
        make_lab(executor, address=address)


def test_ipv6_loopback(executor: LabExecutor) -> None:
    try:
        lab = make_lab(executor, "basic", address="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert lab.url(FE).startswith("http://[::1]:")
        with client(lab) as wsman, RunspacePool(wsman) as pool:
            assert run(pool, "Echo-Parameters", A=1).output
    finally:
        lab.stop()


def test_port_zero_picks_a_free_port(executor: LabExecutor) -> None:
    lab = make_lab(executor)
    assert lab.port == 0
    with lab:
        assert lab.port > 0
        assert lab.url(OCS) == f"http://127.0.0.1:{lab.port}/wsman/{OCS}"


def test_stop_closes_idle_and_blocked_connections(executor: LabExecutor) -> None:
    lab = make_lab(executor, "basic").start()
    lab.faults(FE).set_stuck(True)
    wsman = client(lab, operation_timeout=60, read_timeout=90)
    pool = RunspacePool(wsman)
    pool.open()
    ps = PowerShell(pool)
    ps.add_cmdlet("Echo-Parameters").add_parameter("A", 1)
    ps.begin_invoke()
    outcome: list[BaseException] = []

    def poll() -> None:
        try:
            ps.poll_invoke()
        except BaseException as exc:
            outcome.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    lab.stop()  # must not wait for the 60 s OperationTimeout of the blocked Receive
    poller.join(WAIT)
    assert not poller.is_alive()
    assert outcome and isinstance(outcome[0], requests.exceptions.ConnectionError)
    wsman.close()


def test_serve_forever_returns_on_stop(executor: LabExecutor) -> None:
    lab = make_lab(executor).start()
    before = signal.getsignal(signal.SIGTERM)
    runner = threading.Thread(target=lab.serve_forever, kwargs={"handle_signals": False})
    runner.start()
    lab.stop()
    runner.join(WAIT)
    assert not runner.is_alive()
    assert signal.getsignal(signal.SIGTERM) is before


def test_https_validates_the_certificate_by_default(executor: LabExecutor) -> None:
    with make_lab(executor, "ntlm", https=True) as lab:
        assert lab.cert_path is not None and os.path.exists(lab.cert_path)
        kwargs = lab.client_kwargs(FE)
        kwargs.pop("cert_validation")
        with WSMan(**kwargs) as wsman, pytest.raises(requests.exceptions.SSLError):
            RunspacePool(wsman).open()
        with client(lab) as wsman, RunspacePool(wsman) as pool:
            assert run(pool, "Echo-Parameters", A=1).output
        assert lab.counters(FE)[ENCRYPTED] == 0  # TLS protects the messages; no WSMan encryption
        cert_path = lab.cert_path
    assert not os.path.exists(cert_path)
