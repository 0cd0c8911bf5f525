"""Read every server of the estate at once; alert on each service not running and each host not read."""

import threading

import _lab

import ocsps


def services(host: str, cancel: threading.Event) -> list[ocsps.ServiceStatus]:
    with _lab.server(lab, host) as server:
        return server.services(activity=False, cancel=cancel, deadline=60)


def alert(outcome: ocsps.HostOutcome[list[ocsps.ServiceStatus]]) -> None:
    down = [f"{s.name} {s.status.value}" for s in outcome.result or [] if not s.is_running]
    for problem in filter(None, [outcome.error, *down]):
        print(f"ALERT {outcome.host}: {problem}")


with _lab.start() as lab:
    raise SystemExit(ocsps.run_parallel(_lab.hosts(lab), services, on_outcome=alert, deadline=120).exit_code)
