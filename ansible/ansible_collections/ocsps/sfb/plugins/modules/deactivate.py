#!/usr/bin/python
"""Ansible module: run an approved OCS 2007 / R2 role deactivation plan, with its acknowledgements."""

from __future__ import annotations

DOCUMENTATION = r"""
module: deactivate
short_description: Run an approved role deactivation plan on an OCS 2007 or OCS 2007 R2 server
description:
  - Runs a plan file written by C(ocsps deactivate plan -o FILE) and approved by the change board, the way
    C(ocsps deactivate run) does. The plan is checked again before anything is sent, an edited plan is refused
    (unless O(reapprove)), every step must log Success for the next to run, and every step, with the
    acknowledgement, goes to the ocsps audit log.
  - Every item of the plan's checklist (backups, notice, drained sessions, ...) must be listed in
    O(acknowledge); a missing one fails the task before anything is sent.
  - The server is the plan's computer unless O(host) names another way to reach it; its product must be
    the plan's.
  - A plan whose journal records every step as done is not run again (C(changed=false)). A plan with some
    steps done is refused unless O(resume_from) says where to go on, as on the command line.
  - In check mode nothing is sent; the steps that would run are returned with their parameters, and the
    checklist items not yet acknowledged.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  plan:
    description:
      - The approved plan file (JSON, sealed by ocsps).
    type: path
    required: true
  acknowledge:
    description:
      - The checklist item ids acknowledged, for example C(backups).
    type: list
    elements: str
    default: []
  journal:
    description:
      - The run journal; default beside the plan file.
    type: path
  resume_from:
    description:
      - Start at this step; earlier steps must be known done.
    type: int
  reapprove:
    description:
      - Accept a plan file edited after it was written (review it first).
    type: bool
    default: false
  check_role:
    description:
      - The LcsCmd role whose state is read to confirm each step (C(SE) or C(EE)).
    type: str
    default: SE
  timeout:
    description:
      - The deadline of one step, for example C(30m).
    type: str
    default: 30m
extends_documentation_fragment:
  - ocsps.sfb.change
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: Deactivate every role of ocs01 as the change board approved it
  ocsps.sfb.deactivate:
    plan: /srv/change/CHG-2001/ocs01-deactivate.json
    acknowledge: [backups, notice, off-peak, sessions-drained, certificates-exported]
    product: ocs2007r2
  delegate_to: localhost
"""

RETURN = r"""
computer:
  description: The plan's computer.
  returned: success
  type: str
steps:
  description: In check mode, the steps that would run, with their parameters and sha256.
  returned: in check mode
  type: list
  elements: dict
missing_acknowledgements:
  description: In check mode, the checklist items not listed in O(acknowledge).
  returned: in check mode
  type: list
  elements: str
report:
  description: The run's report (each step's state, the LcsCmd log verdict), as C(ocsps deactivate run --json)
    gives it.
  returned: when the plan ran
  type: dict
resume_from:
  description: Where a later run goes on after a failed or unknown step.
  returned: when the run stopped early
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    argument_spec,
    fail_from,
    open_server,
    require_ocsps,
)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            change_id=dict(type="str", default=""),
            plan=dict(type="path", required=True),
            acknowledge=dict(type="list", elements="str", default=[]),
            journal=dict(type="path"),
            resume_from=dict(type="int"),
            reapprove=dict(type="bool", default=False),
            check_role=dict(type="str", default="SE"),
            timeout=dict(type="str", default="30m"),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False}
    try:
        from pathlib import Path

        from ocsps.deactivation.approved import PreviewDocument, check_target_product, execute, open_plan
        from ocsps.deactivation.approved import preview, require_acknowledgements, resume_step
        from ocsps.deactivation.configured import configured_lcscmd_facts
        from ocsps.deactivation.plan import check_acknowledgements
        from ocsps.deactivation.run import RunReportDocument
        from ocsps.durations import parse_duration
        from ocsps.jsonout import to_builtins

        deadline = parse_duration(params["timeout"])
        facts = configured_lcscmd_facts()
        path = Path(params["plan"])
        approved = open_plan(
            path, facts, reapprove=params["reapprove"], journal_path=Path(params["journal"]) if params["journal"] else None,
            resume_from=params["resume_from"], finished_ok=True,
        )
        plan = approved.plan
        result["computer"] = plan.computer
        if approved.finished:  # the library's answer: nothing is left to run, so nothing changes
            module.exit_json(msg=f"the journal records every step of {path} as done", **result)
        check_target_product(plan, params.get("product"))
        result["changed"] = True
        if module.check_mode:
            result["steps"] = to_builtins([PreviewDocument.of(step) for step in preview(approved, facts)])
            missing = check_acknowledgements(plan, params["acknowledge"])[1]
            result["missing_acknowledgements"] = [item.id for item in missing]
            module.exit_json(**result)
        acked = require_acknowledgements(plan, params["acknowledge"])
        with open_server(module, deadline, default_host=plan.computer) as server:
            report = execute(
                server, approved, facts, acknowledged=acked,
                check_role=params["check_role"], timeout=deadline, change_id=params["change_id"] or None,
            )
        result["report"] = to_builtins(RunReportDocument.of(report))
        if not report.ok:
            resume = resume_step(report)
            if resume is not None:
                result["resume_from"] = resume
            module.fail_json(msg=f"the deactivation stopped at step {report.stopped_at}", **result)
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
