#!/usr/bin/python
"""Ansible module: drain, stop, start or restart one service of an OCS, Lync or Skype for Business server."""

from __future__ import annotations

DOCUMENTATION = r"""
module: service
short_description: Drain, stop, start or restart a service of OCS, Lync Server or Skype for Business Server
description:
  - Brings one service of one server to a state, the way C(ocsps drain), C(ocsps stop), C(ocsps start) and
    C(ocsps restart) do, with the same library calls, checks, deadlines and audit trail.
  - C(drained) asks for a graceful stop (C(Stop-CsWindowsService -Graceful)), watches the service empty and
    confirms it with events; the deadline is O(timeout), after which O(then) decides.
  - C(stopped) stops the service now. When its ActivityLevel shows active sessions the stop is refused,
    since it cuts them (C(drained) lets them end), unless O(cut_sessions=true) or O(force=true), as
    C(ocsps stop) refuses without C(--yes).
  - C(restarted) restarts the service with its running dependents, as C(ocsps restart) does. Dependents are
    stopped first and started again last. If a step fails, what the run stopped is started again.
  - Idempotent. The service is read first. A service already stopped is not drained or stopped again
    (C(changed=false)). A running service is not started again. C(restarted) always restarts.
  - A change whose reply is lost is never sent again on a guess. The service is re-read (and its events
    searched) until the evidence decides. Each decision is returned in RV(decisions) (or the report) and
    written to the ocsps audit log, as the command line writes it.
  - In check mode nothing is sent but reads; C(changed) is predicted and the scripts that would run are
    returned with their parameters. A stop the run would refuse (active sessions) fails in check mode too.
    In diff mode the status before and after is returned.
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
  cut_sessions:
    description:
      - With O(state=stopped), stop the service even when its ActivityLevel shows active sessions (they are
        cut), as C(ocsps stop --yes) does. Without it such a stop is refused and nothing is sent.
    type: bool
    default: false
  force:
    description:
      - Send the stop cmdlet's C(-Force) switch as is (C(ocsps stop --force), C(ocsps restart --force)).
        Stop-Service (OCS 2007 / R2) then stops the running dependents too; Stop-CsWindowsService (Lync,
        Skype for Business) has its own C(-Force). A forced stop does not ask about sessions.
      - Not needed for dependents with O(state=restarted), which stops them first and starts them again.
    type: bool
    default: false
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
  returned: success, and failures after the first read
  type: dict
after:
  description: The service's status at the end (in check mode, the status read before).
  returned: success, and failures after a change was sent
  type: dict
note:
  description: Why nothing was sent (the service already in the wanted state), or how a lost reply was settled.
  returned: when O(state=stopped) or O(state=started), not in check mode
  type: str
decisions:
  description: What was decided after a lost reply (the re-read state, sent again or not), as the audit
    log records it.
  returned: when O(state=stopped) or O(state=started), not in check mode
  type: list
  elements: str
drain:
  description: The drain report (phase, polls, events, decisions), as C(ocsps drain --json) gives it.
  returned: when O(state=drained), not in check mode
  type: dict
restart:
  description: The restart report (steps, services restored, services down at the end, notes), as
    C(ocsps restart --json) gives it per host.
  returned: when O(state=restarted), not in check mode
  type: dict
exit_code:
  description: The exit code the command line would give (1 failed, 2 bad input, 3 could not connect,
    4 deadline).
  returned: failure
  type: int
script:
  description: The PowerShell script of the change that would run on the server.
  returned: in check mode, when a change is predicted (not for O(state=restarted))
  type: str
parameters:
  description: The values bound to that script's parameters (never pasted into its text).
  returned: in check mode, when a change is predicted (not for O(state=restarted))
  type: dict
steps:
  description:
    - Every script a run would send, in order, each with its C(action), C(parameters), C(body_sha256) and
      C(script), as C(ocsps drain|stop|start --what-if --json) lists them per host (the status read first,
      then the change).
    - For O(state=restarted), the restart's steps (dependents stopped first, started last), each also with
      its C(step) number and C(label), as C(ocsps restart --what-if --json) lists them.
  returned: in check mode, when a change is predicted
  type: list
  elements: dict
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
_CONFIRM = "cut_sessions: true"
_RESTART_MARGIN = 120.0
"""Seconds a restart's connection outlives its deadline, to start again what it stopped (as the CLI)."""


def _shown(rendered):
    return {
        "action": rendered.action,
        "parameters": dict(rendered.bound_parameters),
        "body_sha256": rendered.body_sha256,
        "script": rendered.script,
    }


def _preview(server, params, action, poll, timeout):
    """What a run would send, as ``ocsps ... --what-if`` shows it (the library's previews): the read
    first, then the change; for a restart, each of its steps."""
    if action == "restart":
        from ocsps.plans.restart import service_restart_steps
        from ocsps.plans.restart_script import rendered_steps

        steps = service_restart_steps(server.catalog, server.product, server.resolve(params["service"]))
        planned = rendered_steps(steps, server.product, force=params["force"])
        return {"steps": [dict(_shown(step.rendered), step=n, label=step.label) for n, step in enumerate(planned, 1)]}
    if action == "drain":
        from ocsps.operations.preview import preview_drain

        rendered = preview_drain(
            server.catalog, server.product, params["service"], poll=poll, until=timeout,
            leave_running=params["leave_running"],
        )
    else:
        from ocsps.operations.preview import preview_change

        rendered = preview_change(server.catalog, server.product, params["service"], action, force=params["force"])
    change = rendered[-1]
    return {
        "script": change.script,
        "parameters": dict(change.bound_parameters),
        "steps": [_shown(one) for one in rendered],
    }


def _drain(module, server, params, timeout, poll, decided, result):
    from ocsps.jsonout import to_builtins
    from ocsps.operations.drain import DrainReportDocument

    report = server.drain(
        params["service"],
        timeout=timeout,
        poll=poll,
        then=params["then"],
        leave_running=params["leave_running"],
        on_decision=decided,
    )
    result["changed"] = report.changed
    result["drain"] = to_builtins(DrainReportDocument.of(report))
    if report.before is not None:
        result["before"] = status_json(report.before)
    if report.last is not None:
        result["after"] = status_json(report.last)
    if not report.ok:
        module.fail_json(
            msg=report.note or report.error or report.phase.value, exit_code=report.exit_code, **result
        )


def _change(module, server, params, action, decided, result):
    from ocsps.operations.change import ServiceChange, change_service

    done = ServiceChange(server.host, params["service"], action)
    try:
        change_service(
            server,
            params["service"],
            action,
            force=params["force"],
            confirm=(lambda before: True) if params["cut_sessions"] else None,
            on_decision=decided,
            report=done,
            how_to_confirm=_CONFIRM,
        )
    finally:  # a refusal or a failure still reports what was read
        result["changed"] = done.changed
        result["note"] = done.note
        result["decisions"] = list(done.decisions)
        if done.before is not None:
            result["before"] = status_json(done.before)
        if done.after is not None:
            result["after"] = status_json(done.after)


def _restart(module, server, params, timeout, decided, result):
    from ocsps.jsonout import to_builtins
    from ocsps.operations.restart import RestartReportDocument, restart_service

    svc = server.resolve(params["service"])
    report = restart_service(server, svc, force=params["force"], deadline=timeout, on_decision=decided)
    result["changed"] = report.changed
    result["restart"] = to_builtins(RestartReportDocument.of(report))
    if svc.key in report.read_before:
        result["before"] = status_json(report.read_before[svc.key])
    if svc.key in report.read_after:
        result["after"] = status_json(report.read_after[svc.key])
    if not report.ok:
        msg = report.error or "not every service runs again: " + ", ".join(
            f"{s.display_name} {s.status.value}" for s in report.down
        )
        module.fail_json(msg=msg, exit_code=report.exit_code, **result)


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
            cut_sessions=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    action = _ACTION[params["state"]]
    result = {"changed": False}
    try:
        from ocsps import audit
        from ocsps.durations import parse_duration
        from ocsps.operations.change import already_done, busy_stop

        timeout = parse_duration(params["timeout"])
        poll = parse_duration(params["poll"])
        if action == "drain":
            from ocsps.operations.drain import check_timing

            check_timing(timeout, poll)
        call_timeout = timeout + _RESTART_MARGIN if action == "restart" else timeout
        with open_server(module, call_timeout) as server, audit.change(params["change_id"]):
            result["host"] = server.host
            if params["leave_running"] and action != "drain":
                module.warn("leave_running applies to state=drained only; it is ignored here")
            if action == "drain":  # refused, or said, before anything is read or sent
                keep = server.catalog.leave_running(server.product, params["leave_running"])
                for warning in keep.warnings:
                    module.warn(warning)
            if module.check_mode:
                before = server.status(params["service"])
                result["before"] = result["after"] = status_json(before)
                if not already_done(action, before):
                    refusal = busy_stop(
                        action, params["service"], before, force=params["force"] or params["cut_sessions"],
                        host=server.host, how_to_confirm=_CONFIRM,
                    )
                    if refusal is not None:  # refused as the run would refuse it
                        raise refusal
                    result["changed"] = True
                    result.update(_preview(server, params, action, poll, timeout))
            else:
                audit.require_writable(f"{action} {params['service']}", [server.host])
                # the audit lines of the decisions after a lost reply: the same as the command line's
                named = {} if action == "restart" else {"Name": params["service"]}
                decided = audit.decision_recorder(server.host, action, named)
                if action == "drain":
                    _drain(module, server, params, timeout, poll, decided, result)
                elif action == "restart":
                    _restart(module, server, params, timeout, decided, result)
                else:
                    _change(module, server, params, action, decided, result)
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    if module._diff:
        result["diff"] = {"before": result.get("before", {}), "after": result.get("after", {})}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
