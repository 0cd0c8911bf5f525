"""What one simulated server announces about itself: name, PSRP and PowerShell versions, quotas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from psrpcore.types import PSVersion

from ocsps.lab.faults import Faults

PROTOCOL_DEFAULT_PS: Final[dict[str, str]] = {"2.0": "2.0", "2.1": "2.0", "2.2": "3.0", "2.3": "5.1.17763.1"}
"""The PowerShell version a real host running each PSRP protocol version reports."""

DEFAULT_MAX_COMMANDS_PER_SHELL: Final = 1000
"""WinRM's ``MaxConcurrentCommandsPerShell`` default (``winrm/config/winrs``, 2008 R2 and later)."""


@dataclass(frozen=True)
class HostSpec:
    """One simulated server behind the listener.

    ``protocol_version`` is the PSRP version announced to the client: "2.1" for PowerShell 2.0
    (OCS 2007 R2, Lync 2010), "2.2" for 3.0/4.0, "2.3" for 5.1. ``ps_version`` is what
    ``$PSVersionTable.PSVersion`` would report (derived from the protocol when omitted).
    ``max_envelope_kb`` is what the WinRM config reports (150 on PowerShell 2.0 systems, 500 later).
    ``max_commands_per_shell`` is WinRM's ``MaxConcurrentCommandsPerShell`` quota: how many commands a shell
    may hold before the client terminates (Signal terminate) some of them.
    """

    fqdn: str
    protocol_version: str = "2.3"
    ps_version: str | None = None
    faults: Faults = field(default_factory=Faults, compare=False)
    max_envelope_kb: int | None = None
    max_commands_per_shell: int = DEFAULT_MAX_COMMANDS_PER_SHELL

    def __post_init__(self) -> None:
        if not self.fqdn or "/" in self.fqdn or any(c.isspace() for c in self.fqdn):
            raise ValueError(f"invalid host name {self.fqdn!r}")
        if self.protocol_version not in PROTOCOL_DEFAULT_PS:
            raise ValueError(
                f"protocol_version must be one of {', '.join(PROTOCOL_DEFAULT_PS)}, "
                f"not {self.protocol_version!r}"
            )
        if self.max_commands_per_shell < 1:
            raise ValueError(f"max_commands_per_shell must be at least 1, not {self.max_commands_per_shell}")
        PSVersion(self.effective_ps_version)  # validates the format early

    @property
    def effective_ps_version(self) -> str:
        return self.ps_version or PROTOCOL_DEFAULT_PS[self.protocol_version]

    @property
    def server_assigns_ids(self) -> bool:
        """Whether the server names shells and commands itself, ignoring the client's ShellId and CommandId.

        WinRM 2.0, the stack of PowerShell 2.0 hosts, does (seen in a recorded Windows 6.1.7601 exchange);
        later WinRM keeps the client's.
        """
        return self.protocol_version in ("2.0", "2.1")

    @property
    def effective_max_envelope_kb(self) -> int:
        if self.max_envelope_kb is not None:
            return self.max_envelope_kb
        return 150 if self.protocol_version in ("2.0", "2.1") else 500
