"""The options every module that talks to a Front End pool takes."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  pool:
    description:
      - The pool's FQDN, for example C(pool01.contoso.com).
    type: str
    required: true
  members:
    description:
      - Every Front End server of the pool, by FQDN, in topology order (the quorum rule of some pool sizes
        counts the first servers). Not only the ones to change; there is no lookup of pool members.
      - Each member is reached with the module's connection options, its FQDN taking the place of O(host).
    type: list
    elements: str
    required: true
  member_overrides:
    description:
      - "Connection options that differ per member, keyed by member FQDN, for example
        C({fe01.contoso.com: {connect_address: 10.0.0.11}, fe02.contoso.com: {path: wsman-fe02}})."
      - Any connection option but O(host) (the member), O(password) and O(profile) (set those once).
      - A member without an entry uses the module's options, then C(OCSPS_*) and the config profile.
    type: dict
    default: {}
  call_timeout:
    description:
      - Seconds one remote read may take.
    type: float
    default: 120.0
"""
