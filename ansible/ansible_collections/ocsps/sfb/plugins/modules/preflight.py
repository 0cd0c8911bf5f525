#!/usr/bin/python
"""Ansible module: the ocsps preflight checks of one server, before a maintenance window."""

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Run the ocsps preflight checks on an OCS, Lync Server or Skype for Business Server
description:
  - Runs the read-only checks of C(ocsps check) (drain readiness, pending restarts, the TLS certificate trap,
    archiving queues, deactivation readiness) and returns pass, warn, fail or skip per check, each with its
    reason, fix and cited source.
  - Nothing on the server is changed. The task fails when a check fails, unless O(fail_on) says otherwise.
  - The ocsps config file is read as the command line reads it (C(OCSPS_CONFIG)); the deactivation-readiness
    check looks for LCSCmd.exe where its C([lcscmd] path) says, as a deactivation run does.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  checks:
    description:
      - Names of the checks to run (see C(ocsps check --list)); all that apply to the product when empty.
    type: list
    elements: str
    default: []
  service:
    description:
      - The service the drain-readiness check looks at, for example C(RTCMEDSRV).
    type: str
  queue_path:
    description:
      - The archiving destination queue the archiving-queue check reads.
    type: str
  changed:
    description:
      - Changed settings (C(Class.Property)) whose restarts the pending-restart check looks for.
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - The worst status that still lets the task succeed is the one below this one.
    type: str
    default: fail
    choices: [fail, warn, never]
  timeout:
    description:
      - Seconds the checks may take, connecting included.
    type: float
    default: 120
extends_documentation_fragment:
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
notes:
  - Supports check mode; the checks only read either way.
"""

EXAMPLES = r"""
- name: Nightly preflight of every Mediation server
  ocsps.sfb.preflight:
    host: "{{ inventory_hostname }}"
    product: sfb2015
    service: RTCMEDSRV
  delegate_to: localhost
  register: preflight
"""

RETURN = r"""
host:
  description: The server that was checked.
  returned: always
  type: str
status:
  description: The worst status of all checks (pass, warn, fail, skip).
  returned: success
  type: str
checks:
  description: One result per check, as C(ocsps check --json) gives it.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    argument_spec,
    fail_from,
    open_server,
    require_ocsps,
)

_FAILING = {"fail": ("fail",), "warn": ("fail", "warn"), "never": ()}


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            checks=dict(type="list", elements="str", default=[]),
            service=dict(type="str"),
            queue_path=dict(type="str"),
            changed=dict(type="list", elements="str", default=[]),
            fail_on=dict(type="str", default="fail", choices=list(_FAILING)),
            timeout=dict(type="float", default=120.0),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False}
    try:
        from ocsps.checks import CheckOptions, run_checks, select_checks, validate_checks
        from ocsps.checks.spec import worst
        from ocsps.jsonout import to_builtins

        names = select_checks(params["checks"])
        options = CheckOptions(
            queue_path=params["queue_path"], service=params["service"], changed=tuple(params["changed"])
        )
        with open_server(module, params["timeout"]) as server:
            result["host"] = server.host
            validate_checks(names, server.product, options)
            found = run_checks(server, names, options, timeout=params["timeout"])
        result["checks"] = to_builtins(found)
        result["status"] = worst([r.status for r in found]).value
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    if result["status"] in _FAILING[params["fail_on"]]:
        module.fail_json(msg=f"preflight {result['status']} on {result['host']}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
