#!/usr/bin/python
"""Ansible module: install a cumulative update on a Front End pool end to end, as ``ocsps patch pool`` does."""

from __future__ import annotations

DOCUMENTATION = r"""
module: patch_pool
short_description: Patch a Lync / Skype for Business Front End pool end to end, one roll unit at a time
description:
  - Does what C(ocsps patch pool) does, with the same library. The pool is rolled with its own method
    (failover / failback on Skype for Business Server, upgrade domains drained on Lync Server 2013, one
    server drained at a time on Lync Server 2010), quorum kept and a stable Ready between units. On each
    server while it is out, the start-up types are held Disabled, the update is installed silently, the
    server restarts if asked, every component is verified at O(expect_version) and the types are
    restored. A version mismatch stops the roll with that server left out.
  - Then the databases are updated (Test-CsDatabase, then Install-CsDatabase -Update where behind, on
    O(sql_server)), the synthetic transactions run with O(post_checks), and every member is read again.
  - Idempotent. Before anything changes, every member is read; when every component of every member
    already reports O(expect_version), no restart is pending and every service runs with its start-up
    type kept, nothing is sent (C(changed=false)).
  - In check mode nothing is sent, not even a read; the plan is returned (RV(plan), RV(roll_steps) and
    RV(server_steps)). Upgrade domains are read from the pool only when the roll runs, so the plan of a
    Lync Server 2013 pool in check mode does not show them.
  - The roll's state file (one journal, each server's patch record inside) lets a later task with
    O(resume) continue at the step each server reached; a completed install is never run again. A new
    roll is refused while an unfinished one of the same pool is saved.
  - A failed task says where the roll stopped (RV(position)), the step each server reached and how it
    was left (RV(reached)), and RV(resume) when the state file can be resumed.
  - Every state-changing call goes to the ocsps audit log, stamped with O(change_id); the roll's intent
    (C(patch pool POOL)) is recorded first, for the members it covers.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  installer:
    description:
      - Path of the update installer as the servers see it, for example
        C(C:\Updates\SkypeServerUpdateInstaller.exe). A local copy on each member is best; a file share
        read from a remote session needs Kerberos delegation.
    type: str
    required: true
  expect_version:
    description:
      - The version every component of every member must report after the update.
    type: str
    required: true
  sql_server:
    description:
      - FQDN of the SQL Server (Back End) holding the pool's databases. Required for the database update
        on products that have Test-CsDatabase (Lync Server 2013 and later), unless O(database_update=false).
    type: str
    default: ""
  database_update:
    description:
      - Update the databases once every member is patched.
    type: bool
    default: true
  post_checks:
    description:
      - Once the pool and its databases are done, run Test-CsRegistration and Test-CsIM from the first
        member (as the pool's health-monitoring test users unless O(test_users)); a failure fails the task.
    type: bool
    default: false
  test_users:
    description:
      - SIP addresses the post-checks sign in as; two addresses are the IM sender, then the receiver. No
        password, the cmdlets run as the server's own test identity. Needs O(post_checks).
    type: list
    elements: str
    default: []
  drain_timeout:
    description:
      - Each server's drain deadline, for example C(30m). Default from the ocsps pool facts.
    type: str
  install_timeout:
    description:
      - The installer's deadline on each server. Default 2h.
    type: str
  reboot_timeout:
    description:
      - From a server's restart until it answers and its services are back. Default 30m.
    type: str
  stable_for:
    description:
      - How long the pool must stay Ready between roll units, for example C(20m) (the default) or C(0s).
    type: str
  resume:
    description:
      - Continue the roll saved in O(state_file) at the step each server reached. Give the same
        O(installer), O(expect_version), O(sql_server) and O(database_update); the saved plan and timings
        are kept, so the timing options are refused here.
    type: bool
    default: false
  rerun_install:
    description:
      - With O(resume), run again an install interrupted before its outcome was recorded and not at the
        expected version (only once sure the installer is no longer running).
    type: bool
    default: false
  state_file:
    description:
      - Where the roll's state is kept. Default C(pool-roll-POOL.json) next to the ocsps audit log, the file
        C(ocsps patch pool) uses, so either can resume the other's roll.
    type: path
extends_documentation_fragment:
  - ocsps.sfb.pool
  - ocsps.sfb.change
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: Patch the Front End pool
  ocsps.sfb.patch_pool:
    pool: pool01.contoso.com
    members: [fe01.contoso.com, fe02.contoso.com, fe03.contoso.com]
    product: sfb2015
    installer: C:\Updates\SkypeServerUpdateInstaller.exe
    expect_version: 6.0.9319.619
    sql_server: sql01.contoso.com
    post_checks: true
    change_id: CHG-1042
  delegate_to: localhost

- name: Continue that roll where it stopped, once the cause is fixed
  ocsps.sfb.patch_pool:
    pool: pool01.contoso.com
    members: [fe01.contoso.com, fe02.contoso.com, fe03.contoso.com]
    product: sfb2015
    installer: C:\Updates\SkypeServerUpdateInstaller.exe
    expect_version: 6.0.9319.619
    sql_server: sql01.contoso.com
    resume: true
    change_id: CHG-1042
  delegate_to: localhost
"""

RETURN = r"""
pool:
  description: The pool.
  returned: always
  type: str
plan:
  description: The roll's plan (method, quorum rule, roll units and their servers), as C(ocsps patch pool --what-if --json) gives it.
  returned: always
  type: dict
roll_steps:
  description: The whole roll in order (readiness waits, each server's take-down, patch and bring-back).
  returned: in check mode
  type: list
  elements: dict
server_steps:
  description: The steps of each server's patch (C(preflight), C(hold), C(install), C(reboot), C(verify), C(restore)).
  returned: always
  type: list
  elements: str
status:
  description: C(done), C(stopped), C(failed), C(paused), C(timed-out), C(disconnected), C(interrupted), or C(current) when nothing was needed.
  returned: when the pool was read
  type: str
reason:
  description: Why the roll stopped, in words.
  returned: when the roll ran
  type: str
statement:
  description: The pool at the end, from the last reading of every member (at the version, out of service, left Disabled, databases, post-checks).
  returned: when the pool was read
  type: str
position:
  description: Where the roll stands, in words an operator can act on.
  returned: when the roll ran
  type: str
versions_before:
  description: Each member's component versions before anything changed.
  returned: when the pool was read
  type: dict
reached:
  description: Per member, the roll phase, the step its patch reached, its patch status, whether it is in service and the services left Disabled.
  returned: when the roll ran
  type: dict
result:
  description: The library's whole result, as C(ocsps patch pool --json) prints it.
  returned: when the roll ran
  type: dict
state_file:
  description: Where the roll's state is kept.
  returned: always
  type: str
resume:
  description: True when the task failed and the saved state can be continued with O(resume).
  returned: on failure, when the roll ran
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    POOL_ARGUMENTS,
    argument_spec,
    fail_from,
    pool_connections,
    pool_options,
    require_ocsps,
)

_TIMINGS = ("drain_timeout", "stable_for", "install_timeout", "reboot_timeout")


def _request(module):
    """What the task asks, checked before any connection: (patch options, roll options, sql, test users)."""
    from ocsps import audit
    from ocsps.durations import parse_duration
    from ocsps.errors import UsageError
    from ocsps.hostname import check_host
    from ocsps.patch import default_options
    from ocsps.checks.synthetic import check_test_users
    from ocsps.patch.plan import check_options

    params = module.params
    try:
        audit.check_change_id(params["change_id"] or "")
    except ValueError as exc:
        raise UsageError(f"change_id: {exc}") from None
    check_host(params["pool"], "pool")
    for member in params["members"]:
        check_host(member, "members")
    if params["rerun_install"] and not params["resume"]:
        raise UsageError("rerun_install only applies with resume")
    if params["resume"]:
        given = [key for key in _TIMINGS if params[key] is not None]
        if given:
            raise UsageError(f"a resumed roll keeps its saved plan and timings; drop {', '.join(given)}")
    users = check_test_users(
        params["test_users"] or [], post_checks=params["post_checks"], label="test_users", enable="set post_checks"
    )

    def duration(key):
        return None if params[key] is None else parse_duration(params[key])

    options = default_options(
        params["expect_version"],
        install_timeout=duration("install_timeout"),
        reboot_timeout=duration("reboot_timeout"),
    )
    check_options(options)
    roll = pool_options(drain_timeout=params["drain_timeout"], stable_for=params["stable_for"])
    sql = check_host(params["sql_server"], "sql_server") if params["sql_server"] else ""
    return options, roll, sql, users


def _state_path(module):
    from pathlib import Path

    from ocsps.pool import state_path

    params = module.params
    return Path(params["state_file"]) if params["state_file"] else state_path(params["pool"])


def _reached(state, result):
    """Per member: the roll phase, the step its patch reached, and how the last reading left it."""
    outcomes = {s.server: s for s in result.servers}
    reached = {}
    for server in state.plan.servers:
        record = state.work.get(server) or {}
        outcome = outcomes.get(server)
        reached[server] = {
            "phase": state.phase(server).value,
            "step": record.get("step", "not-started"),
            "patch_status": outcome.patch_status if outcome else record.get("status", "not-started"),
            "in_service": outcome.in_service if outcome else None,
            "left_disabled": list(outcome.left_disabled) if outcome else [],
        }
    return reached


def open_drivers(factory, call_timeout):
    """(pool driver, patch driver) over the same audited connections."""
    from ocsps.patch import RemotePatchDriver
    from ocsps.pool import RemoteDriver

    return (
        RemoteDriver(factory, call_timeout=call_timeout),
        RemotePatchDriver(factory, call_timeout=call_timeout),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            installer=dict(type="str", required=True),
            expect_version=dict(type="str", required=True),
            sql_server=dict(type="str", default=""),
            database_update=dict(type="bool", default=True),
            post_checks=dict(type="bool", default=False),
            test_users=dict(type="list", elements="str", default=[]),
            drain_timeout=dict(type="str"),
            install_timeout=dict(type="str"),
            reboot_timeout=dict(type="str"),
            stable_for=dict(type="str"),
            resume=dict(type="bool", default=False),
            rerun_install=dict(type="bool", default=False),
            change_id=dict(type="str", default=""),
            state_file=dict(type="path"),
            **POOL_ARGUMENTS,
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False, "pool": params["pool"]}
    try:
        from ocsps.jsonout import to_builtins
        from ocsps.patch.pool import PoolPatchResultDocument, PoolPatchStatus
        from ocsps.patch.postchecks import synthetic_post_checks
        from ocsps.patch.rollout import PoolPatchRequest, open_rollout
        from ocsps.pool import load_state, roll_steps
        from ocsps.pool.plan import RollPlanDocument, RollStepDocument

        options, roll, sql, users = _request(module)
        path = _state_path(module)
        result["state_file"] = str(path)
        change_id = params["change_id"] or ""
        factory, product, members = pool_connections(module, change_id)
        request = PoolPatchRequest(
            params["pool"],
            tuple(members),
            params["installer"],
            options,
            roll,
            sql,
            params["database_update"],
            change_id,
        )
        if module.check_mode:
            state, plans = request.plan(product, ())
            result.update(
                changed=True,  # nothing is read in check mode: the prediction is that the roll runs
                plan=to_builtins(RollPlanDocument.of(state.plan)),
                roll_steps=[
                    to_builtins(RollStepDocument.of(step)) for step in roll_steps(state.plan, state.options)
                ],
                server_steps=[step.name for step in plans[0].steps],
            )
            module.exit_json(**result)
        rollout = open_rollout(request, path, resume=params["resume"], resume_hint="resume")
        if rollout.saved is None:
            _state, plans = request.plan(product, ())  # a wrong request is refused before any connection
            result["server_steps"] = [step.name for step in plans[0].steps]
        pool_driver, patch_driver = open_drivers(factory, params["call_timeout"])
        try:
            outcome = rollout.run(
                pool_driver,
                patch_driver,
                product,
                rerun_install=params["rerun_install"],
                post_checks=synthetic_post_checks(factory, users, timeout=params["call_timeout"])
                if params["post_checks"]
                else None,
            )
        finally:
            pool_driver.close()
            patch_driver.close()
        state = outcome.roll
        result["plan"] = to_builtins(RollPlanDocument.of(state.plan))
        if outcome.versions_before:
            result["versions_before"] = outcome.versions_before
        result.update(status=outcome.status.value, statement=outcome.statement())
        if outcome.status is PoolPatchStatus.CURRENT:
            module.exit_json(**result)
        moved = any(phase.value != "pending" for phase in state.servers.values())
        result.update(
            changed=moved or bool(state.request.get("database_result")),
            reason=outcome.reason,
            position=state.position(),
            reached=_reached(state, outcome),
            result=to_builtins(PoolPatchResultDocument.of(outcome)),
        )
        if outcome.status is not PoolPatchStatus.DONE:
            resumable = path.exists() and load_state(path).unfinished
            module.fail_json(
                msg=f"{params['pool']}: {outcome.status.value} at {state.position()}: {outcome.reason}; "
                f"{outcome.statement()}",
                exit_code=outcome.exit_code,
                resume=resumable,
                **result,
            )
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
