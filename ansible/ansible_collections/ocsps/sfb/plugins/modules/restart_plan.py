#!/usr/bin/python
"""Ansible module: which services a configuration change needs stopped or restarted, and optionally do it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: restart_plan
short_description: Plan (and optionally run) the service restarts a configuration change needs on OCS 2007 / R2
description:
  - Answers from the restart rules of OCS 2007 / R2 (Appendix C of the administration guide), the way
    C(ocsps plan restart) does, which services must be stopped or restarted after the settings in O(changed)
    were changed, in which order, and which rule matched.
  - With O(run=true) the plan runs on the server the way C(ocsps restart --plan) runs a plan file. Every
    planned service is looked up before anything stops; after a failure, or past O(timeout), what the run
    stopped is started again unless O(restore=false). The task fails when not every service runs at the end.
  - A stop or start whose reply is lost is never sent again on a guess; the decision taken from a re-read is
    written to the ocsps audit log, as C(ocsps restart) writes it.
  - In check mode only the plan is made; nothing is sent. Without O(run), the task never connects (the
    product comes from O(product), C(OCSPS_PRODUCT) or the profile).
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  changed:
    description:
      - The changed settings, as C(ocsps plan restart --changed) takes them (a WMI C(Class.Property), a
        snap-in setting, a catalog key).
    type: list
    elements: str
    required: true
  certificate_renewed_same_subject:
    description:
      - The new certificate differs from the old one only in its expiration date (the rules exempt some
        services then).
    type: bool
    default: false
  run:
    description:
      - Run the plan on the server after making it.
    type: bool
    default: false
  restore:
    description:
      - After a failure or the deadline, start again what the run stopped.
    type: bool
    default: true
  timeout:
    description:
      - The deadline of the whole run, for example C(30m).
    type: str
    default: 30m
extends_documentation_fragment:
  - ocsps.sfb.change
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: What does a changed archiving setting need?
  ocsps.sfb.restart_plan:
    product: ocs2007r2
    changed: [MSFT_SIPArchivingServerSetting.ArchivingServer]
  delegate_to: localhost
  register: plan

- name: Restart what it needs on the server
  ocsps.sfb.restart_plan:
    host: ocs01.contoso.com
    product: ocs2007r2
    changed: [MSFT_SIPArchivingServerSetting.ArchivingServer]
    run: true
  delegate_to: localhost
"""

RETURN = r"""
plan:
  description: The restart plan (services in order, the rule each matched, settings that need nothing), as
    C(ocsps plan restart --json) prints it.
  returned: success
  type: dict
report:
  description: The run's report (steps, services restored, services down at the end), as
    C(ocsps restart --plan --json) gives it per host.
  returned: when O(run=true), not in check mode
  type: dict
exit_code:
  description: The exit code C(ocsps restart --plan) would give (1 failed, 4 deadline, 130 interrupted).
  returned: when the run failed
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    argument_spec,
    fail_from,
    open_server,
    require_ocsps,
    resolve,
)


def _product(module):
    """The product to plan for; the connection is resolved only when there is no simpler answer."""
    named = module.params.get("product") or os.environ.get("OCSPS_PRODUCT")
    if named and not module.params["run"]:
        return named
    return resolve(module)[1].id


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            change_id=dict(type="str", default=""),
            changed=dict(type="list", elements="str", required=True),
            certificate_renewed_same_subject=dict(type="bool", default=False),
            run=dict(type="bool", default=False),
            restore=dict(type="bool", default=True),
            timeout=dict(type="str", default="30m"),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False}
    try:
        from ocsps.durations import parse_duration
        from ocsps.plans.restart import plan_restart
        from ocsps.jsonout import to_builtins
        from ocsps.operations.restart import RestartReportDocument
        from ocsps.plans.restart_document import plan_document

        deadline = parse_duration(params["timeout"])
        plan = plan_restart(
            params["changed"],
            product=_product(module),
            certificate_renewed_same_subject=params["certificate_renewed_same_subject"],
        )
        document = plan_document(plan)
        result["plan"] = document
        if params["run"]:
            result["changed"] = bool(document.get("services"))
            if result["changed"] and not module.check_mode:
                from ocsps import audit

                with open_server(module, deadline + 120) as server, audit.change(params["change_id"]):
                    audit.require_writable("restart --plan", [server.host])
                    report = server.run_restart_plan(
                        document,
                        restore=params["restore"],
                        deadline=deadline,
                        on_decision=audit.decision_recorder(server.host, "restart", {}),
                    )
                result["changed"] = report.changed
                result["report"] = to_builtins(RestartReportDocument.of(report))
                if not report.ok:
                    module.fail_json(
                        msg=report.error or "not every service runs again", exit_code=report.exit_code, **result
                    )
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
