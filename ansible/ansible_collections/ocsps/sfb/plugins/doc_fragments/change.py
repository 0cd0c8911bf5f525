"""The option every state-changing module takes: the change ticket its audit records carry."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  change_id:
    description:
      - The change ticket every audit record of the task carries, for example C(CHG-1042), as C(--change-id)
        does on the command line; C(ocsps report --change-id) gathers them into the post-implementation report.
      - "Letters, digits and C(. _ : / -), at most 64 characters; anything else fails the task before anything
        is sent."
    type: str
    default: ""
"""
