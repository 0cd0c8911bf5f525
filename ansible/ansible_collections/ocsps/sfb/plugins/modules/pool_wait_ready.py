#!/usr/bin/python
"""Ansible module: wait until a Front End pool is Ready and has stayed Ready long enough."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pool_wait_ready
short_description: Wait until a Front End pool is Ready, and stays Ready
description:
  - The readiness wait between two members of a rolling maintenance, the same as C(ocsps pool maintain)'s.
  - "C(serial: 1) alone does not keep a pool's quorum: a member that has just come back is not yet serving,
    and the pool says so by answering C(Busy) until its services have settled."
  - Reads the pool upgrade readiness on a member that is up (C(Get-CsPoolUpgradeReadinessState), or
    C(Get-CsUpgradeDomainInfo) on Skype for Business Server 2019) until it has answered C(Ready) for
    O(stable_for). A C(Busy) answer restarts the timer and is counted; O(max_busy) of them fail the task;
    C(InsufficientActiveFrontEnds), or any state nobody has documented, fails it at once. The wait is
    therefore bounded.
  - Changes nothing; it runs in check mode too (the wait is a read).
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  stable_for:
    description:
      - How long the pool must keep answering C(Ready), for example C(20m). C(0s) passes on the first C(Ready).
      - Default, from the ocsps pool facts, 20m.
    type: str
  max_busy:
    description:
      - How many C(Busy) answers fail the task, at least 1. Default 3.
    type: int
  busy_interval:
    description:
      - How long to wait after a C(Busy) answer before asking again. Default 10m.
    type: str
  poll:
    description:
      - How often to ask while C(Ready) is being timed. Default 1m.
    type: str
  next_members:
    description:
      - The members about to be taken out; when the pool names their upgrade domain as not ready for
        upgrade, that counts as C(Busy).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ocsps.sfb.pool
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: Wait until the pool is Ready for 20 minutes
  ocsps.sfb.pool_wait_ready:
    pool: pool01.contoso.com
    members: "{{ groups['pool01'] }}"
    stable_for: 20m
  delegate_to: localhost
"""

RETURN = r"""
via:
  description: The member the readiness was read on.
  returned: success
  type: str
state:
  description: The last readiness answer (C(Ready) when the task succeeds).
  returned: success
  type: str
reads:
  description: How many times the readiness was read.
  returned: success
  type: int
busy:
  description: How many C(Busy) answers were counted.
  returned: success
  type: int
waited:
  description: Seconds spent waiting.
  returned: success
  type: float
readings:
  description: Every answer, in order.
  returned: success
  type: list
  elements: str
reason:
  description: Why the wait ended, in words.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import (
    POOL_ARGUMENTS,
    argument_spec,
    fail_from,
    open_pool,
    pool_options,
    require_ocsps,
)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            stable_for=dict(type="str"),
            max_busy=dict(type="int"),
            busy_interval=dict(type="str"),
            poll=dict(type="str"),
            next_members=dict(type="list", elements="str", default=[]),
            **POOL_ARGUMENTS,
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False}
    try:
        from ocsps.jsonout import to_builtins
        from ocsps.pool import wait_ready
        from ocsps.pool.member import ReadyResultDocument

        options = pool_options(
            {"ready_poll": "poll"},
            stable_for=params["stable_for"],
            max_busy=params["max_busy"],
            busy_interval=params["busy_interval"],
            ready_poll=params["poll"],
        )
        driver, _product, members = open_pool(module)
        try:
            done = wait_ready(driver, params["pool"], members, options=options, next_servers=params["next_members"])
        finally:
            driver.close()
        doc = to_builtins(ReadyResultDocument.of(done))
        doc.pop("pool", None)
        result.update(doc)
    except Exception as exc:  # every library failure becomes one task failure with its message
        result["reason"] = getattr(exc, "message", str(exc))
        fail_from(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
