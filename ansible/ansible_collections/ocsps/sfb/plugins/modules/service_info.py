#!/usr/bin/python
"""Ansible module: the services of one OCS, Lync or Skype for Business server, read over PowerShell Remoting."""

from __future__ import annotations

DOCUMENTATION = r"""
module: service_info
short_description: Read the services of an OCS, Lync Server or Skype for Business Server
description:
  - Reads the product's services on one server (status, activity, roles), as C(ocsps status --json) does.
  - "Runs on the controller (use C(delegate_to: localhost)) and connects to the server over PowerShell
    Remoting with the ocsps library, so servers with PowerShell 2.0 (OCS 2007/R2, Lync Server 2010) are
    read too."
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  service:
    description:
      - One service short name (for example C(RTCMEDSRV)) or catalog key; all services when unset.
    type: str
  activity:
    description:
      - Read each service's activity counters (needs membership of Performance Monitor Users on the server).
    type: bool
    default: true
  timeout:
    description:
      - Seconds the read may take, connecting included.
    type: float
    default: 120
extends_documentation_fragment:
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
notes:
  - Supports check mode; nothing is changed either way.
"""

EXAMPLES = r"""
- name: Read the Mediation service of med01
  ocsps.sfb.service_info:
    host: med01.contoso.com
    product: sfb2015
    service: RTCMEDSRV
  delegate_to: localhost
  register: mediation
"""

RETURN = r"""
host:
  description: The server that was read.
  returned: always
  type: str
services:
  description: One entry per service, with the fields of C(ocsps status --json).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Short name, for example C(RTCMEDSRV).
      type: str
    display_name:
      description: Display name.
      type: str
    status:
      description: Windows service state, for example C(Running), C(Paused), C(Stopped).
      type: str
    activity:
      description: Activity counters by name, or null when not read.
      type: dict
    computer:
      description: The computer that answered.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    argument_spec,
    fail_from,
    open_server,
    require_ocsps,
    status_json,
)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            service=dict(type="str"),
            activity=dict(type="bool", default=True),
            timeout=dict(type="float", default=120.0),
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    try:
        with open_server(module, module.params["timeout"]) as server:
            found = server.services(module.params["service"], activity=module.params["activity"])
            module.exit_json(changed=False, host=server.host, services=[status_json(s) for s in found])
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc)


if __name__ == "__main__":
    main()
