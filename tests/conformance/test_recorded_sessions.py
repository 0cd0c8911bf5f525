"""The lab against exchanges recorded from real Windows WinRM servers (see ``docs/lab.md``).

Each in-scope recording is replayed request by request against the lab; every reply is reduced to what a
client observes (action or fault, PSRP message types and states, versions, error ids, CommandState) and
compared with the real server's. Accepted differences are listed, with the reason, in ``scope.toml``.
"""

from __future__ import annotations

import pytest

from ocsps.lab.wsman import HostSpec
from tests.conformance.compare import differences, split_notes
from tests.conformance.recordings import CACHE, MISSING, Recording, available, scope
from tests.conformance.replay import Replay

pytestmark = [pytest.mark.skipif(not available(), reason=MISSING), pytest.mark.timeout(60)]

SCOPE = scope()
IN_SCOPE = sorted(SCOPE["in_scope"])
KNOWN = SCOPE.get("known_differences", {})


def spec_for(recording: Recording) -> HostSpec:
    """The lab plays the product the real server was: its PSRP protocol version, and for PowerShell 3.0 and
    later its PowerShell version (host-specific); a PowerShell 2.0 server is played with the lab's own
    defaults, which is what a Lync 2010 or OCS 2007 R2 host announces in the lab."""
    protocol, ps = recording.announced()
    if not protocol:
        return HostSpec("recorded.lab.local")
    legacy = protocol in ("2.0", "2.1")
    return HostSpec(
        "recorded.lab.local", protocol_version=protocol, ps_version=None if legacy else ps or None
    )


def replay(name: str) -> tuple[Recording, list[str], list[str]]:
    recording = Recording.load(CACHE / f"{name}.yml")
    steps = Replay(recording, spec_for(recording)).run()
    return recording, differences(recording, steps), split_notes(steps)


@pytest.mark.parametrize("name", IN_SCOPE)
def test_lab_answers_like_the_recorded_server(name: str) -> None:
    _, found, _ = replay(name)
    expected = KNOWN.get(name, [])
    assert found == expected, "\n".join(found)


def test_a_powershell_2_server_and_the_lab_announce_the_same_versions() -> None:
    recording = Recording.load(CACHE / "test_psrp_run_protocol_version_2.1.yml")
    assert recording.announced() == ("2.1", "2.0")
    lab = HostSpec("lync2010.lab.local", protocol_version="2.1")
    assert (lab.protocol_version, lab.effective_ps_version) == recording.announced()


def test_long_running_pipeline_output_comes_in_the_receive_that_follows_it() -> None:
    """Receives time out while nothing is ready, and the next one carries the output as soon as it is."""
    _, found, notes = replay("test_psrp_long_running_cmdlet")
    assert found == [] and notes == []
