#!/usr/bin/python
"""Ansible module: write an ocsps change-board .ps1 on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
module: changeboard_script
short_description: Write an ocsps change-board PowerShell script on the controller
description:
  - Renders the same script ocsps runs remotely as a standalone, reviewable C(.ps1) for a change board, with
    a header (action, product, target, change, reason, sha256 of each body), quoted parameter defaults,
    C(-WhatIf) support and a check that it runs on the computer it names.
  - The script is the one C(ocsps render) writes for the same action, byte for byte, since one library
    function writes both. A C(drain) waits for the service to stop. A C(restart) restarts the service with
    its dependents as C(ocsps restart) does, so dependents stop first and start last, every service is looked
    up before anything stops, and what the script stopped is started again if a step fails.
  - Nothing is sent to any server. The file is rewritten only when its content would change.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  action:
    description:
      - The action, for example C(drain), C(stop), C(start), C(restart), C(status).
      - C(restart) writes the board that stops the service's dependents first and starts them again after
        it (it needs O(service)), not the bare stop and start of the one service, which leaves stopped the
        dependents its stop took down, or on OCS 2007 / R2 is refused while they run.
    type: str
    required: true
  service:
    description:
      - The service short name or catalog key the action is for, as in C(ocsps render --service). The
        script's title names it as given.
    type: str
  force:
    description:
      - Send the stop cmdlet's C(-Force) switch, as C(ocsps stop --force) and C(ocsps restart --force) do
        (for O(action=stop) and for the stops of O(action=restart)). An action without that switch refuses
        it.
    type: bool
    default: false
  product:
    description:
      - The product the target server runs, one of the ocsps catalog's product ids (a test keeps this list
        equal to the catalog's).
    type: str
    required: true
    choices: [ocs2007, ocs2007r2, lync2010, lync2013, sfb2015, sfb2019]
  computer:
    description:
      - The FQDN the script is meant for; the script refuses to run elsewhere.
    type: str
    required: true
  change_id:
    description:
      - The change ticket shown in the header.
    type: str
    default: ""
  reason:
    description:
      - Why the change is made, shown in the header.
    type: str
    default: ""
  dest:
    description:
      - Where to write the script on the controller.
    type: path
    required: true
requirements:
  - ocsps (the Python library, on the controller)
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Change-board script for draining med01's Mediation service
  ocsps.sfb.changeboard_script:
    action: drain
    service: RTCMEDSRV
    product: lync2010
    computer: med01.contoso.com
    change_id: CHG-1042
    reason: Cumulative update
    dest: /srv/changes/CHG-1042/med01-drain.ps1
  delegate_to: localhost

- name: Change-board script restarting the A/V Edge service with its dependents
  ocsps.sfb.changeboard_script:
    action: restart
    service: RTCMEDIARELAY
    product: sfb2019
    computer: edge01.contoso.com
    change_id: CHG-1042
    reason: Certificate renewal
    dest: /srv/changes/CHG-1042/edge01-restart.ps1
  delegate_to: localhost
"""

RETURN = r"""
dest:
  description: The file written.
  returned: always
  type: str
body_sha256:
  description: The sha256 of the script body that runs, as the header and the audit log record it.
  returned: success, when the script has one step (every action but C(restart))
  type: str
body_sha256s:
  description:
    - The sha256 of each step's body, in the order of the header (for C(restart), each stop and start).
  returned: success
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import fail_from, require_ocsps

PRODUCTS = ["ocs2007", "ocs2007r2", "lync2010", "lync2013", "sfb2015", "sfb2019"]


def _render(params):
    from ocsps.plans.action_board import action_board
    from ocsps.powershell.changeboard import ChangeInfo, verify_script

    info = ChangeInfo(params["computer"], params["change_id"], params["reason"])
    text = action_board(
        params["action"], params["product"], service=params["service"], force=params["force"], info=info
    )
    return text, verify_script(text).body_hashes


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True),
            service=dict(type="str"),
            force=dict(type="bool", default=False),
            product=dict(type="str", required=True, choices=PRODUCTS),
            computer=dict(type="str", required=True),
            change_id=dict(type="str", default=""),
            reason=dict(type="str", default=""),
            dest=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    dest = module.params["dest"]
    result = {"changed": False, "dest": dest}
    try:
        text, hashes = _render(module.params)
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    result["body_sha256s"] = list(hashes)
    if len(hashes) == 1:
        result["body_sha256"] = hashes[0]
    before = ""
    if os.path.exists(dest):
        with open(dest, encoding="utf-8-sig") as handle:
            before = handle.read()
    if before != text:
        result["changed"] = True
        if module._diff:
            result["diff"] = {"before": before, "after": text, "before_header": dest, "after_header": dest}
        if not module.check_mode:
            # Windows PowerShell reads a BOM-less script in the ANSI code page: the BOM keeps non-ASCII intact.
            module.atomic_move(_written(module, text), dest)
    module.exit_json(**result)


def _written(module, text):
    path = os.path.join(module.tmpdir, "changeboard.ps1")
    with open(path, "w", encoding="utf-8-sig", newline="\n") as handle:
        handle.write(text)
    return path


if __name__ == "__main__":
    main()
