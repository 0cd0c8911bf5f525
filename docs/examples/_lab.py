"""The lab the examples run against: a simulated estate on loopback, and a ``Server`` per host.

Against real servers, replace ``server(lab, host)`` with ``ocsps.connect(host, product=..., auth=...)``.
"""

from __future__ import annotations

import ocsps
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology

ESTATE = """
[[pools]]
fqdn = "pool01.contoso.com"
product = "sfb2015"
""" + "".join(
    f'[[servers]]\nfqdn = "{name}.contoso.com"\nproduct = "sfb2015"\n{extra}drain_seconds = 0.3\n'
    for name, extra in [
        ("fe01", 'pool = "pool01.contoso.com"\nroles = ["FrontEnd"]\n'),
        ("fe02", 'pool = "pool01.contoso.com"\nroles = ["FrontEnd"]\n'),
        ("fe03", 'pool = "pool01.contoso.com"\nroles = ["FrontEnd"]\n'),
        ("med01", 'roles = ["MediationServer"]\n'),
        ("med02", 'roles = ["MediationServer"]\n'),
        ("med03", 'roles = ["MediationServer"]\nin_perfmon_group = false\n'),
        ("edge01", 'roles = ["Edge"]\nstopped = ["RTCMEDIARELAY"]\n'),
    ]
) + '[[servers]]\nfqdn = "ocs01.contoso.com"\nproduct = "ocs2007r2"\nroles = ["FrontEnd"]\n'


def start() -> Lab:
    """The examples' estate, served until the ``with`` block ends."""
    return Lab(parse_topology(ESTATE, source="examples estate")).start()


def hosts(lab: Lab) -> list[str]:
    return [s.fqdn for s in lab.topology.servers]


def server(lab: Lab, host: str) -> ocsps.Server:
    """``ocsps.connect`` with the values the lab hands out for ``host`` (plain HTTP on loopback)."""
    c = lab.connection(host)
    return ocsps.connect(
        host,
        product=c["product"],
        auth=c["auth"],
        username=c["username"],
        password=c["password"],
        connect_address=c["connect_address"],
        port=c["port"],
        ssl=False,
        path=c["path"],
        encryption=c["encryption"],
        no_proxy=True,
        timeout=30,
    )
