#!/usr/bin/python
"""Ansible module: what a Front End pool looks like now (members, readiness, fabric, quorum, problems)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pool_info
short_description: Read a Front End pool of Lync Server 2013 or Skype for Business Server
description:
  - Reads what C(ocsps pool status) shows, for a playbook to decide on or report; changes nothing.
  - Every read is attempted and each failure is reported under RV(problems) next to what did work
    (an unreachable member, readiness or fabric state that could not be read), so the task itself succeeds
    unless the options are wrong.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options: {}
extends_documentation_fragment:
  - ocsps.sfb.pool
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: Read the pool
  ocsps.sfb.pool_info:
    pool: pool01.contoso.com
    members: "{{ groups['pool01'] }}"
    product: sfb2015
  delegate_to: localhost
  run_once: true
  register: pool

- name: Stop when the pool has a problem
  ansible.builtin.assert:
    that: pool.problems | length == 0
    fail_msg: "{{ pool.problems }}"
"""

RETURN = r"""
pool:
  description: The pool's FQDN.
  returned: success
  type: str
product:
  description: The product the members run.
  returned: success
  type: str
via:
  description: The member the readiness and fabric state were read on (the first one that is up).
  returned: success
  type: str
members:
  description: Each member with its condition (C(up), C(down), C(changing), C(unreachable)), Front End
    service status, services and upgrade domain.
  returned: success
  type: list
  elements: dict
readiness:
  description: The pool upgrade readiness (state, upgrade domains), or null when it could not be read.
  returned: success
  type: dict
fabric:
  description: The Windows Fabric state (missing replicas called out), or null when it could not be read.
  returned: success
  type: dict
quorum:
  description: The pool's quorum rule, the members down now and how many more may go (C(can_lose)).
  returned: success
  type: dict
problems:
  description: What forbids taking a member out now (empty when nothing does).
  returned: success
  type: list
  elements: str
notes:
  description: Things worth knowing that do not forbid anything.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    POOL_ARGUMENTS,
    argument_spec,
    fail_from,
    open_pool,
    require_ocsps,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(**POOL_ARGUMENTS), supports_check_mode=True)
    require_ocsps(module)
    try:
        from ocsps.jsonout import to_builtins
        from ocsps.pool import survey_pool
        from ocsps.pool.survey import PoolSurveyDocument

        driver, product, members = open_pool(module)
        try:
            survey = survey_pool(driver, module.params["pool"], product.id, members)
        finally:
            driver.close()
    except Exception as exc:  # every library failure becomes one task failure with its message
        fail_from(module, exc)
    module.exit_json(changed=False, **to_builtins(PoolSurveyDocument.of(survey)))


if __name__ == "__main__":
    main()
