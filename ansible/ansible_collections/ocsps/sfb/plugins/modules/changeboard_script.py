#!/usr/bin/python
"""Ansible module: write an ocsps change-board .ps1 on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
module: changeboard_script
short_description: Write an ocsps change-board PowerShell script on the controller
description:
  - Renders the same script ocsps runs remotely as a standalone, reviewable C(.ps1) for a change board, as
    C(ocsps render) does, with a header (action, product, target, change, reason, sha256 of the body),
    quoted parameter defaults, C(-WhatIf) support and a check that it runs on the computer it names.
  - Nothing is sent to any server. The file is rewritten only when its content would change.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  action:
    description:
      - The action, for example C(drain), C(stop), C(start), C(restart), C(status).
    type: str
    required: true
  service:
    description:
      - The service short name or catalog key the action is for.
    type: str
  product:
    description:
      - The product the target server runs.
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
"""

RETURN = r"""
dest:
  description: The file written.
  returned: always
  type: str
body_sha256:
  description: The sha256 of the script body that runs, as the header and the audit log record it.
  returned: success
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import fail_from, require_ocsps

PRODUCTS = ["ocs2007", "ocs2007r2", "lync2010", "lync2013", "sfb2015", "sfb2019"]


def _render(params):
    from ocsps.catalog import load_catalog
    from ocsps.powershell.changeboard import ChangeInfo, Step, render_change_board
    from ocsps.powershell.script import render_action

    catalog = load_catalog()
    product = catalog.product(params["product"])
    values = {}
    label = params["action"]
    if params["service"]:
        service = catalog.find_service(product, params["service"])
        values.update(catalog.service_parameters(product, service))
        label = f"{label} {service.name or service.key}"
    if params["action"] == "drain":
        values["NoWait"] = False
    rendered = render_action(params["action"], product, values, catalog=catalog)
    info = ChangeInfo(params["computer"], params["change_id"], params["reason"])
    return render_change_board(label, [Step(label, rendered)], info), rendered.body_sha256


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True),
            service=dict(type="str"),
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
        text, body_sha256 = _render(module.params)
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc, **result)
    result["body_sha256"] = body_sha256
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
