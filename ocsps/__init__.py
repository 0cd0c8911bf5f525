"""ocsps: safe service and role operations for OCS 2007/R2, Lync Server and Skype for Business Server.

The library works without the command line::

    import os
    import ocsps

    with ocsps.connect(
        "med01.contoso.com",
        product="sfb2015",
        auth="ntlm",
        username="CONTOSO\\lyncadmin",
        password=os.environ["OCSPS_PASSWORD"],
    ) as server:
        for service in server.services():
            print(service.name, service.status.value, service.activity)
        report = server.drain("RTCMEDSRV", timeout=900, poll=15, then="fail")
        print(report.phase.value, report.note)

Many servers sharing settings: ``ocsps.Connector(product=..., auth=..., ...)`` validates them once and
``connector.server(host)`` gives a ``Server`` per host (``Connector.for_lab(lab)`` for a running lab).

Every error ocsps raises on purpose is an ``ocsps.OcspsError`` with a one-line message naming the host:
``UsageError`` (bad input, nothing sent), ``ConnectError`` (DNS, refused, TLS, quota, dropped connection;
``AuthenticationError`` and ``RetriesExhausted`` are kinds of it), ``TimeoutExceeded``, ``RemoteError``
(PowerShell error records, in ``.records``), ``OperationFailed`` and ``OutcomeUnknown`` (a change hit by
a lost connection: re-read the state before trying again; deliberately not a ``ConnectError``, so a retry
on connection errors never resends a change). Each has an ``exit_code`` the CLI uses. The package ships
``py.typed``: keyword settings are typed (``ConnectOptions``).

The names below are loaded on first use, so that ``import ocsps`` (and offline commands such as
``--help``) never pay for importing the PowerShell Remoting stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "connect": "ocsps.remote.server",
    "Server": "ocsps.remote.server",
    "Connector": "ocsps.remote.connector",
    "ConnectOptions": "ocsps.remote.settings",
    "ServerSession": "ocsps.remote.session",
    "Progress": "ocsps.remote.session",
    "RunResult": "ocsps.remote.session",
    "ConnectionSettings": "ocsps.remote.settings",
    "Secret": "ocsps.remote.settings",
    "OcspsError": "ocsps.errors",
    "UsageError": "ocsps.errors",
    "ConnectError": "ocsps.errors",
    "AuthenticationError": "ocsps.errors",
    "TimeoutExceeded": "ocsps.errors",
    "RemoteError": "ocsps.errors",
    "OperationFailed": "ocsps.errors",
    "OutcomeUnknown": "ocsps.errors",
    "RetriesExhausted": "ocsps.errors",
    "Cancelled": "ocsps.errors",
    "HostOutcome": "ocsps.operations.fleet",
    "HostState": "ocsps.operations.fleet",
    "Skip": "ocsps.operations.fleet",
    "run_parallel": "ocsps.operations.fleet",
    "run_changes": "ocsps.operations.fleet",
    "ErrorRecord": "ocsps.errors",
    "ParseError": "ocsps.results",
    "ServiceStatus": "ocsps.results",
    "ServiceState": "ocsps.results",
    "ActivityLevel": "ocsps.results",
    "EventRecord": "ocsps.results",
    "QueuePrivacy": "ocsps.results",
    "PrivacyLevel": "ocsps.results",
    "WmiSetting": "ocsps.results",
    "LcsCmdOutcome": "ocsps.results",
    "DrainReport": "ocsps.operations.drain",
    "Phase": "ocsps.operations.drain",
    "Then": "ocsps.operations.drain",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from ocsps.errors import AuthenticationError as AuthenticationError
    from ocsps.errors import Cancelled as Cancelled
    from ocsps.errors import ConnectError as ConnectError
    from ocsps.errors import ErrorRecord as ErrorRecord
    from ocsps.errors import OcspsError as OcspsError
    from ocsps.errors import OperationFailed as OperationFailed
    from ocsps.errors import OutcomeUnknown as OutcomeUnknown
    from ocsps.errors import RemoteError as RemoteError
    from ocsps.errors import RetriesExhausted as RetriesExhausted
    from ocsps.errors import TimeoutExceeded as TimeoutExceeded
    from ocsps.errors import UsageError as UsageError
    from ocsps.operations.drain import DrainReport as DrainReport
    from ocsps.operations.drain import Phase as Phase
    from ocsps.operations.drain import Then as Then
    from ocsps.operations.fleet import HostOutcome as HostOutcome
    from ocsps.operations.fleet import HostState as HostState
    from ocsps.operations.fleet import Skip as Skip
    from ocsps.operations.fleet import run_changes as run_changes
    from ocsps.operations.fleet import run_parallel as run_parallel
    from ocsps.remote.connector import Connector as Connector
    from ocsps.remote.server import Server as Server
    from ocsps.remote.server import connect as connect
    from ocsps.remote.session import Progress as Progress
    from ocsps.remote.session import RunResult as RunResult
    from ocsps.remote.session import ServerSession as ServerSession
    from ocsps.remote.settings import ConnectionSettings as ConnectionSettings
    from ocsps.remote.settings import ConnectOptions as ConnectOptions
    from ocsps.remote.settings import Secret as Secret
    from ocsps.results import ActivityLevel as ActivityLevel
    from ocsps.results import EventRecord as EventRecord
    from ocsps.results import LcsCmdOutcome as LcsCmdOutcome
    from ocsps.results import ParseError as ParseError
    from ocsps.results import PrivacyLevel as PrivacyLevel
    from ocsps.results import QueuePrivacy as QueuePrivacy
    from ocsps.results import ServiceState as ServiceState
    from ocsps.results import ServiceStatus as ServiceStatus
    from ocsps.results import WmiSetting as WmiSetting


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ocsps' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
