#!/usr/bin/python
"""Ansible module: install a cumulative update on one server end to end, as ``ocsps patch server`` does."""

from __future__ import annotations

DOCUMENTATION = r"""
module: patch
short_description: Install a cumulative update on one Lync / Skype for Business server, verified end to end
description:
  - Does what C(ocsps patch server) does, with the same library, for one server that is not in an
    Enterprise pool (Mediation, Edge, Standard Edition, Director). Each step is verified before the next. In order,
    preflight (no restart pending, free space, the installer visible from the server, versions read);
    drain every running service, each with its own deadline; record each start-up type and hold it
    Disabled; run the installer silently (exit code 0 success, 3010 success with a restart required,
    anything else a failure, with its log); restart when needed and wait until the server is back; verify
    that every component reports O(expect_version); restore the start-up types and start the services.
  - Whatever happens, the start-up types are restored and the server's final state is read again and
    returned in RV(statement). A failed task says how far the run got (RV(step)) and in what state the
    server was left.
  - Idempotent. Before anything changes the server is read; when every component already reports
    O(expect_version) and no restart is pending, nothing is sent (C(changed=false)), unless O(force).
  - In check mode nothing is sent, not even a read; the plan is returned (RV(plan)) and C(changed) is the
    prediction that the patch would run.
  - Every state-changing call goes to the ocsps audit log, stamped with O(change_id); the run's record (the
    original start-up types among it) is written to RV(record_path). A new run is refused while the record
    holds an unfinished one (it may have left services Disabled); continue it with O(resume), as
    C(ocsps patch server --resume) would.
  - Products whose patch level ocsps cannot verify are refused before anything is sent.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  installer:
    description:
      - Path of the update installer as the server sees it, for example
        C(C:\Updates\SkypeServerUpdateInstaller.exe). A local copy is best; a file share read from a
        remote session needs Kerberos delegation.
    type: str
    required: true
  expect_version:
    description:
      - The version every component must report after the update, for example C(6.0.9319.619).
    type: str
    required: true
  reboot:
    description:
      - C(auto) restarts the server when the installer asks for it (exit 3010) or a restart is pending;
        C(never) stops the task there and says so.
    type: str
    choices: [auto, never]
    default: auto
  then:
    description:
      - A service that has not drained by its deadline; C(stop) ends the task with nothing installed,
        C(force-stop) stops the service and goes on.
    type: str
    choices: [stop, force-stop]
    default: stop
  drain_timeout:
    description:
      - Each service's drain deadline, for example C(30m). Default from the ocsps patch facts, 30m.
    type: str
  install_timeout:
    description:
      - The installer's deadline. Default 2h.
    type: str
  reboot_timeout:
    description:
      - From the restart until the server answers and its services are back. Default 30m.
    type: str
  call_timeout:
    description:
      - Deadline of each ordinary remote call.
    type: str
    default: 120s
  change_id:
    description:
      - The change ticket every audit record of the run carries, for example C(CHG-1042).
    type: str
    default: ""
  record:
    description:
      - Where the run's record is written. Default C(patch-server-HOST.json) next to the ocsps audit log.
    type: path
  force:
    description:
      - Run the patch even when every component already reports O(expect_version).
    type: bool
    default: false
  resume:
    description:
      - Continue the run saved in O(record) at the step it reached; a completed install is never run again.
        Give the same O(installer) and O(expect_version).
    type: bool
    default: false
  rerun_install:
    description:
      - With O(resume), run again an install interrupted before its outcome was recorded and not at the
        expected version (only once sure the installer is no longer running).
    type: bool
    default: false
extends_documentation_fragment:
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: Patch this Mediation server
  ocsps.sfb.patch:
    host: "{{ inventory_hostname }}"
    product: sfb2015
    installer: C:\Updates\SkypeServerUpdateInstaller.exe
    expect_version: 6.0.9319.619
    change_id: CHG-1042
  delegate_to: localhost
"""

RETURN = r"""
host:
  description: The server.
  returned: always
  type: str
plan:
  description: The planned steps, the installer, its switches and the deadlines, as C(ocsps patch server --what-if --json) gives them.
  returned: always
  type: dict
status:
  description: C(done), C(stopped), C(failed), C(reboot-pending), C(timed-out), C(disconnected), C(interrupted), or C(current) when nothing was needed.
  returned: when the server was read
  type: str
step:
  description: The step the run reached (C(preflight), C(out-of-service), C(hold), C(install), C(reboot), C(verify), C(back-in-service), C(done)).
  returned: when the patch ran
  type: str
reason:
  description: Why the run stopped, in words.
  returned: when the patch ran
  type: str
statement:
  description: The server's state at the end, from the last reading only (in or out of service, any service left Disabled, versions read, a pending restart).
  returned: when the server was read
  type: str
versions_before:
  description: Each component's version before anything changed.
  returned: when the server was read
  type: dict
versions_after:
  description: Each component's version as verified after the update.
  returned: when the patch reached the verification
  type: dict
run:
  description: The whole record of the run, as C(ocsps patch server --json) prints it.
  returned: when the patch ran
  type: dict
record_path:
  description: Where the record was written.
  returned: when the patch ran
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    argument_spec,
    fail_from,
    open_server,
    require_ocsps,
    resolve,
)


def _plan(module):
    """The plan, from the options alone: refused here, before any connection, when the request is wrong."""
    from ocsps import audit
    from ocsps.durations import parse_duration
    from ocsps.errors import UsageError
    from ocsps.patch import default_options, plan_patch
    from ocsps.patch.plan import check_options

    params = module.params
    try:
        audit.check_change_id(params["change_id"] or "")
    except ValueError as exc:
        raise UsageError(f"change_id: {exc}") from None

    def duration(key):
        return None if params[key] is None else parse_duration(params[key])

    options = default_options(
        params["expect_version"],
        reboot=params["reboot"],
        then=params["then"],
        drain_timeout=duration("drain_timeout"),
        install_timeout=duration("install_timeout"),
        reboot_timeout=duration("reboot_timeout"),
    )
    check_options(options)
    settings, product = resolve(module)
    return plan_patch(settings.host, product, params["installer"], options)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            installer=dict(type="str", required=True),
            expect_version=dict(type="str", required=True),
            reboot=dict(type="str", choices=["auto", "never"], default="auto"),
            then=dict(type="str", choices=["stop", "force-stop"], default="stop"),
            drain_timeout=dict(type="str"),
            install_timeout=dict(type="str"),
            reboot_timeout=dict(type="str"),
            call_timeout=dict(type="str", default="120s"),
            change_id=dict(type="str", default=""),
            record=dict(type="path"),
            force=dict(type="bool", default=False),
            resume=dict(type="bool", default=False),
            rerun_install=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False}
    try:
        from pathlib import Path

        from ocsps import audit
        from ocsps.durations import parse_duration
        from ocsps.jsonout import to_builtins
        from ocsps.patch import PatchRunner, PatchStatus, RemotePatchDriver, save_record, state_path
        from ocsps.patch.plan import PatchPlanDocument
        from ocsps.patch.runner import record_document
        from ocsps.patch.state import open_saved_record
        from ocsps.errors import UsageError

        plan = _plan(module)
        result["host"] = plan.host
        result["plan"] = to_builtins(PatchPlanDocument.of(plan))
        if module.check_mode:
            result["changed"] = True  # nothing is read in check mode: the prediction is that the patch runs
            module.exit_json(**result)
        call_timeout = parse_duration(params["call_timeout"])
        path = Path(params["record"]) if params["record"] else state_path(plan.host)
        if params["rerun_install"] and not params["resume"]:
            raise UsageError("rerun_install only applies with resume")
        saved = open_saved_record(
            path,
            plan.host,
            params["installer"],
            plan.options.expect_version,
            resume=params["resume"],
            simulation=False,
            resume_hint="resume",
        )
        driver = RemotePatchDriver(lambda _host: open_server(module, call_timeout), call_timeout=call_timeout)
        try:
            with audit.change(params["change_id"] or ""):
                audit.require_writable(f"patch server {plan.host}", [plan.host])

                def save(record):
                    record.change_id = params["change_id"] or record.change_id
                    save_record(path, record)

                record = PatchRunner(
                    driver,
                    saved.plan if saved is not None else plan,
                    save=save,
                    record=saved,
                    rerun_install=params["rerun_install"],
                    skip_current=not params["force"],
                ).run()
        finally:
            driver.close()
        doc = record_document(record)
        result.update(
            changed=record.status is not PatchStatus.CURRENT and record.step != "preflight",
            status=doc["status"],
            step=doc["step"],
            reason=doc["reason"],
            statement=doc["statement"],
            versions_before=doc["versions_before"],
            versions_after=doc["versions_after"],
            run=doc,
            record_path=str(path),
        )
        if module._diff:
            result["diff"] = {
                "before": {"versions": doc["versions_before"]},
                "after": {"versions": doc["versions_after"] or doc["versions_before"]},
            }
        if record.status not in (PatchStatus.DONE, PatchStatus.CURRENT):
            module.fail_json(
                msg=f"{plan.host}: {record.status.value} at {record.step}: {record.reason}; {record.statement()}",
                exit_code=record.status.exit_code,
                **result,
            )
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
