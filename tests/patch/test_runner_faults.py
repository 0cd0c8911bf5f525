"""The runner against a scripted server: faults the lab cannot time precisely, with no network.

A lost reply to a change is the case that matters most: the runner must not send the change again on a
guess, must still restore the start-up types it changed (deciding from a fresh reading), and must say what
it could not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ocsps.catalog import load_catalog
from ocsps.errors import OutcomeUnknown, TimeoutExceeded
from ocsps.patch import PatchRunner, PatchStatus, default_options, plan_patch
from ocsps.patch.model import Component, InstallOutcome, PatchState, ServiceInfo

HOST = "med01.contoso.com"
MODES = {"Automatic": "Auto", "Manual": "Manual", "Disabled": "Disabled"}


@dataclass
class ScriptedServer:
    """One server in memory; ``lose`` names calls whose reply is lost after the server acted."""

    states: dict[str, str] = field(default_factory=lambda: {"RTCMEDSRV": "Running", "RTCCLSAGT": "Running"})
    modes: dict[str, str] = field(default_factory=lambda: {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"})
    version: str = "6.0.9319.0"
    lose: set[str] = field(default_factory=set)
    drop_probe_after: str = ""  # the first probe read after this call times out
    calls: list[str] = field(default_factory=list)
    now: float = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def _lost(self, call: str) -> None:
        self.calls.append(call)
        if call in self.lose:
            self.lose.discard(call)
            raise OutcomeUnknown(f"{call}: the connection dropped; it may or may not have run", host=HOST)

    def services(self, host: str) -> list[str]:
        return list(self.states)

    def state(
        self, host: str, services: Sequence[str], installer: str = "", *, probe: bool = False
    ) -> PatchState:
        if probe and self.drop_probe_after and self.drop_probe_after in self.calls:
            self.drop_probe_after = ""
            raise TimeoutExceeded("state: no answer within 0.1s", host=HOST)
        return PatchState(
            computer=HOST,
            boot_time="boot-1",
            free_bytes=50 * 1024**3,
            installer_found=True,
            reboot_flags={"windows-update": False},
            services=tuple(ServiceInfo(n, self.states[n], self.modes[n]) for n in services),
            components=(Component("Core Components", self.version),),
        )

    def drain(self, host: str, name: str) -> None:
        self.states[name] = "Stopped"
        self._lost(f"drain {name}")

    def stop(self, host: str, name: str) -> None:
        self.states[name] = "Stopped"

    def start(self, host: str, name: str) -> None:
        self.states[name] = "Running"
        self._lost(f"start {name}")

    def set_startup(self, host: str, names: Sequence[str], startup: str) -> tuple[ServiceInfo, ...]:
        for name in names:
            self.modes[name] = MODES[startup]
        self._lost(f"set-startup {startup} {','.join(names)}")
        return tuple(ServiceInfo(n, self.states[n], self.modes[n]) for n in names)

    def install(self, host: str, path: str, arguments: Sequence[str], timeout: float) -> InstallOutcome:
        self.version = "6.0.9319.619"
        self._lost("install")
        return InstallOutcome(HOST, True, 0, "C:\\Updates\\x.log")

    def restart(self, host: str) -> str:
        self._lost("restart")
        return "boot-1"

    def reset(self, host: str) -> None:
        pass

    def close(self) -> None:
        pass


def _run(server: ScriptedServer) -> PatchRunner:
    plan = plan_patch(
        HOST,
        load_catalog().product("sfb2015"),
        "C:\\Updates\\SkypeServerUpdateInstaller.exe",
        default_options("6.0.9319.619"),
    )
    runner = PatchRunner(server, plan, clock=server.clock, sleep=server.sleep, stamp=lambda: "t")
    runner.run()
    return runner


def test_a_lost_install_reply_is_never_resent_and_start_up_types_come_back() -> None:
    server = ScriptedServer(lose={"install"})
    record = _run(server).record
    assert record.status is PatchStatus.DISCONNECTED
    assert "install" in record.reason and "may or may not have run" in record.reason
    assert server.calls.count("install") == 1
    assert server.modes == {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"}  # each back to its own type
    assert record.restored and record.left_disabled == []
    assert set(server.states.values()) == {"Stopped"}
    assert "OUT OF SERVICE" in record.statement()


def test_a_lost_hold_reply_is_restored_from_a_fresh_reading() -> None:
    """The Disabled reached the server but the reply did not: the types are restored all the same."""
    server = ScriptedServer(lose={"set-startup Disabled RTCMEDSRV,RTCCLSAGT"})
    record = _run(server).record
    assert record.status is PatchStatus.DISCONNECTED
    assert "install" not in server.calls
    assert server.modes == {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"}
    assert record.restored


def test_a_restore_already_done_is_not_sent_again() -> None:
    """The restore's reply is lost at the end of a good run: the finish reads the server, sees the types
    already back, and sends nothing more."""
    server = ScriptedServer(lose={"set-startup Automatic RTCMEDSRV"})
    record = _run(server).record
    assert record.status is PatchStatus.DISCONNECTED
    restores = [c for c in server.calls if c.startswith("set-startup") and "Disabled" not in c]
    assert restores == ["set-startup Automatic RTCMEDSRV", "set-startup Manual RTCCLSAGT"]
    assert server.modes == {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"}
    assert record.restored and record.left_disabled == []


def test_types_restored_at_the_finish_are_held_again_on_a_resume() -> None:
    """The finish restores the types, then its reading of the final state gets no answer: the record must
    still say that the hold is undone, or a resume would leave the services Automatic and stopped across
    the restart and wait for them to start by themselves."""
    server = ScriptedServer(lose={"install"}, drop_probe_after="set-startup Automatic RTCMEDSRV")
    record = _run(server).record
    assert record.status is PatchStatus.DISCONNECTED
    assert server.modes == {"RTCMEDSRV": "Auto", "RTCCLSAGT": "Manual"}
    assert record.restored and "hold" not in record.done
