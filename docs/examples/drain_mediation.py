"""Drain three Mediation servers one at a time; a server whose preflight fails is skipped, not drained."""

import sys
import threading

import _lab

import ocsps
from ocsps.checks import CheckOptions, Status, run_checks

HOSTS = ["med01.contoso.com", "med02.contoso.com", "med03.contoso.com"]


def drain(host: str, cancel: threading.Event) -> ocsps.DrainReport:
    with _lab.server(lab, host) as server:
        for check in run_checks(server, ["drain-ready"], CheckOptions(service="RTCMEDSRV")):
            if check.status is Status.FAIL:
                raise ocsps.Skip("; ".join(f.reason for f in check.findings if f.status is Status.FAIL))
        return server.drain("RTCMEDSRV", timeout=15 * 60, poll=0.5, cancel=cancel)


def show(outcome: ocsps.HostOutcome[ocsps.DrainReport]) -> None:
    done = outcome.result.phase.value if outcome.result else ""
    print(outcome.host, outcome.state.value, done or outcome.step or outcome.error)


with _lab.start() as lab:
    run = ocsps.run_changes(HOSTS, drain, judge=lambda report: report.ok, on_outcome=show)
sys.exit(run.exit_code)
