#!/usr/bin/python
"""Ansible module: take one Front End server out of its pool, or bring it back, quorum kept."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pool_member
short_description: Take a Front End server out of its pool, or bring it back
description:
  - "The product's own way out and back in, for one member per task (use it with C(serial: 1))."
  - Skype for Business Server 2015 and 2019 fail the server over (C(Invoke-CsComputerFailOver)) and back
    (C(Invoke-CsComputerFailBack)); Lync Server 2013 drains every service gracefully
    (C(Stop-CsWindowsService -Graceful)) and starts them again. Other products' pools are refused.
  - O(state=out) reads the pool first and refuses, sending nothing, when the pool is not Ready (or the
    member's upgrade domain is not ready), the Windows Fabric reports missing replicas, or taking this
    member out would leave fewer servers running than the pool's quorum needs (an unreachable member
    counts as down). Then it waits until the member is out, up to O(timeout).
  - O(state=in) brings the member back and waits until its Front End service runs. It does not wait for the
    pool to be Ready again; M(ocsps.sfb.pool_wait_ready) does, and it should run before the next member
    goes out.
  - Idempotent. A member already out (or in) is sent nothing (C(changed=false)); a member already leaving
    (or coming back) is only waited for.
  - In check mode the pool is read and the same refusals apply; nothing is sent and RV(calls) lists what
    would be.
version_added: "0.1.0"
author: ocsps developers (!UNKNOWN)
options:
  member:
    description:
      - The member to take out or bring back; one of O(members).
    type: str
    required: true
  state:
    description:
      - C(out) takes the member out of the pool, C(in) brings it back.
    type: str
    required: true
    choices: [out, in]
  timeout:
    description:
      - How long the member may take to leave (or come back) after the call, for example C(30m).
      - Default, from the ocsps pool facts, 1h.
    type: str
  poll:
    description:
      - How often the member's services are read while waiting. Default 10s.
    type: str
  wait_time:
    description:
      - The failover and failback cmdlets' C(-WaitTime). Default 1h (the cmdlets' own default).
    type: str
  draining_timeout:
    description:
      - The failover cmdlet's C(-DrainingTimeout); unset leaves it to the cmdlet.
    type: str
extends_documentation_fragment:
  - ocsps.sfb.change
  - ocsps.sfb.pool
  - ocsps.sfb.connection
requirements:
  - ocsps (the Python library, on the controller)
"""

EXAMPLES = r"""
- name: Take this server out of its pool
  ocsps.sfb.pool_member:
    pool: pool01.contoso.com
    members: "{{ groups['pool01'] }}"
    member: "{{ inventory_hostname }}"
    state: out
    timeout: 45m
  delegate_to: localhost

- name: Bring it back
  ocsps.sfb.pool_member:
    pool: pool01.contoso.com
    members: "{{ groups['pool01'] }}"
    member: "{{ inventory_hostname }}"
    state: in
  delegate_to: localhost
"""

RETURN = r"""
member:
  description: The member, as spelled in O(members).
  returned: success
  type: str
operation:
  description: C(take-out) or C(bring-back).
  returned: success
  type: str
method:
  description: C(failover) (Skype for Business Server) or C(drain) (Lync Server 2013).
  returned: success
  type: str
before:
  description: The member's condition and services before anything was sent.
  returned: success
  type: dict
after:
  description: The member's condition and services at the end (in check mode, as read before).
  returned: success
  type: dict
calls:
  description: The state-changing calls sent (in check mode, that would be sent), with their parameters.
  returned: success
  type: list
  elements: dict
quorum:
  description: The quorum decision for a take-out (running after, must run, members down before).
  returned: when a take-out was decided
  type: dict
readiness:
  description: The pool's readiness as read before a take-out.
  returned: when a take-out was decided
  type: dict
reason:
  description: What was found and done, in words.
  returned: always
  type: str
problems:
  description: What the pool reported when a take-out was refused.
  returned: when a take-out is refused
  type: list
  elements: str
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


def _after(params, result):
    """The member's condition after the task; in check mode, the one predicted."""
    if result.get("dry_run") and result["changed"]:
        return "down" if params["state"] == "out" else "up"
    return result["after"]["condition"]


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            change_id=dict(type="str", default=""),
            member=dict(type="str", required=True),
            state=dict(type="str", required=True, choices=["out", "in"]),
            timeout=dict(type="str"),
            poll=dict(type="str"),
            wait_time=dict(type="str"),
            draining_timeout=dict(type="str"),
            **POOL_ARGUMENTS,
        ),
        supports_check_mode=True,
    )
    require_ocsps(module)
    params = module.params
    result = {"changed": False}
    try:
        from ocsps.jsonout import to_builtins
        from ocsps.pool import bring_back, take_out
        from ocsps.pool.member import MemberResultDocument

        options = pool_options(
            {"drain_timeout": "timeout", "service_poll": "poll"},
            drain_timeout=params["timeout"],
            service_poll=params["poll"],
            wait_time=params["wait_time"],
            draining_timeout=params["draining_timeout"],
        )
        driver, product, members = open_pool(module)
        call = take_out if params["state"] == "out" else bring_back
        try:
            done = call(
                driver,
                params["pool"],
                product,
                members,
                params["member"],
                options=options,
                dry_run=module.check_mode,
            )
        finally:
            driver.close()
        doc = to_builtins(MemberResultDocument.of(done))
        doc.pop("pool", None)
        result.update(doc)
    except Exception as exc:  # every library failure becomes one task failure with its message
        survey = getattr(exc, "survey", None)
        if survey is not None:
            result["problems"] = list(survey.problems)
        result["reason"] = getattr(exc, "message", str(exc))
        fail_from(module, exc, **result)
    if module._diff:
        result["diff"] = {"before": {"condition": result["before"]["condition"]}, "after": {"condition": _after(params, result)}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
