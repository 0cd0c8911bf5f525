#!/usr/bin/python
"""Ansible module: drain, stop, start or restart one service of an OCS, Lync or Skype for Business server."""

from __future__ import annotations

DOCUMENTATION = r"""
module: service
short_description: Drain, stop, start or restart a service of OCS, Lync Server or Skype for Business Server
description:
  - Brings one service of one server to a state, the way C(ocsps drain), C(ocsps stop), C(ocsps start) and
    C(ocsps restart) do, with the same checks, deadlines and audit trail.
  - C(drained) asks for a graceful stop (C(Stop-CsWindowsService -Graceful)), watches the service empty and
    confirms it with events; the deadline is O(timeout), after which O(then) decides.
  - Idempotent. A service already stopped is not drained or stopped again (C(changed=false)); a running
    service is not started again. C(restarted) always restarts.
  - In check mode nothing is sent but reads; C(changed) is predicted and the script that would run is
    returned with its parameters. In diff mode the status before and after is returned.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  service:
    description:
      - The service short name (for example C(RTCMEDSRV)) or catalog key.
    type: str
    required: true
  state:
    description:
      - The state to bring the service to.
    type: str
    required: true
    choices: [drained, stopped, started, restarted]
  timeout:
    description:
      - How long a drain may take (C(90s), C(15m), C(1h)); for the other states, how long one call may take.
    type: str
    default: 15m
  poll:
    description:
      - How often the status is read while a service drains.
    type: str
    default: 15s
  then:
    description:
      - What to do when a drain's deadline passes and the service still has sessions.
      - C(fail) reports it (the service keeps draining), C(force-stop) stops it, C(leave) lets it stop on its own.
    type: str
    default: fail
    choices: [fail, force-stop, leave]
  leave_running:
    description:
      - Services to keep running during a drain (Lync Server 2013 and later), for example C(RTCCLSAGT).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ocsps.sfb.change
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: Drain the Mediation service, at most 30 minutes
  ocsps.sfb.service:
    host: med01.contoso.com
    product: sfb2015
    service: RTCMEDSRV
    state: drained
    timeout: 30m
  delegate_to: localhost

- name: Start it again after the maintenance
  ocsps.sfb.service:
    host: med01.contoso.com
    product: sfb2015
    service: RTCMEDSRV
    state: started
  delegate_to: localhost
"""

RETURN = r"""
host:
  description: The server that answered.
  returned: always
  type: str
before:
  description: The service's status before anything was sent, as C(ocsps status --json) gives it.
  returned: success
  type: dict
after:
  description: The service's status at the end (in check mode, the status read before).
  returned: success
  type: dict
drain:
  description: The drain report (phase, polls, events, decisions), as C(ocsps drain --json) gives it.
  returned: when O(state=drained) and a drain was sent
  type: dict
script:
  description: The PowerShell script that runs (or would run) on the server.
  returned: in check mode, when a change is predicted
  type: str
parameters:
  description: The values bound to the script's parameters (never pasted into its text).
  returned: in check mode, when a change is predicted
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    argument_spec,
    fail_from,
    open_server,
    require_ocsps,
    status_json,
)

_ACTION = {"drained": "drain", "stopped": "stop", "started": "start", "restarted": "restart"}


def _needed(state, status):
    if state in ("drained", "stopped"):
        return status != "Stopped"
    if state == "started":
        return status != "Running"
    return True


def _change(server, params, timeout, poll):
    """Send the change; return (after status, drain report or None)."""
    state, service = params["state"], params["service"]
    if state == "drained":
        report = server.drain(
            service, timeout=timeout, poll=poll, then=params["then"], leave_running=params["leave_running"]
        )
        return report.last, report
    call = getattr(server, _ACTION[state])
    return call(service, timeout=timeout), None


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            change_id=dict(type="str", default=""),
            service=dict(type="str", required=True),
            state=dict(type="str", required=True, choices=list(_ACTION)),
            timeout=dict(type="str", default="15m"),
            poll=dict(type="str", default="15s"),
            then=dict(type="str", default="fail", choices=["fail", "force-stop", "leave"]),
            leave_running=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False}
    try:
        from ocsps.durations import parse_duration

        timeout = parse_duration(params["timeout"])
        poll = parse_duration(params["poll"])
        with open_server(module, timeout) as server:
            result["host"] = server.host
            before = server.status(params["service"])
            result["before"] = status_json(before)
            if not _needed(params["state"], before.status.value):
                result["after"] = result["before"]
            elif module.check_mode:
                if params["state"] == "drained":  # the one pipeline a run sends: the request and its watch
                    rendered = server.render_drain_watch(
                        params["service"], request=True, poll=poll, until=timeout,
                        leave_running=params["leave_running"],
                    )
                else:
                    rendered = server.render(_ACTION[params["state"]], params["service"])
                result.update(changed=True, after=result["before"], script=rendered.script)
                result["parameters"] = dict(rendered.bound_parameters)
            else:
                result["changed"] = True
                after, report = _change(server, params, timeout, poll)
                if report is not None:
                    from ocsps.jsonout import to_builtins
                    from ocsps.operations.drain import DrainReportDocument

                    result["drain"] = to_builtins(DrainReportDocument.of(report))
                if after is not None:
                    result["after"] = status_json(after)
                if report is not None and not report.ok:
                    module.fail_json(msg=report.note or report.error or report.phase.value, **result)
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    if module._diff:
        result["diff"] = {"before": result.get("before", {}), "after": result.get("after", {})}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
