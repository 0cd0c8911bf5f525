"""The lab the examples run against: a simulated estate on loopback, and a ``Server`` per host.

Against real servers, replace ``server(lab, host)`` with ``ocsps.connect(host, product=..., auth=...)``, or
``ocsps.Connector(...).server(host)`` for many hosts sharing settings.
"""

from __future__ import annotations

import ocsps
from ocsps.lab.runtime import Lab
from ocsps.lab.topology import parse_topology

# A Front End pool, three Mediation servers, an Edge and an OCS 2007 R2 server (see docs/lab.md).
ESTATE = """
[[pools]]
fqdn = "pool01.contoso.com"
product = "sfb2015"

[[servers]]
fqdn = "fe01.contoso.com"
product = "sfb2015"
pool = "pool01.contoso.com"
roles = ["FrontEnd"]
drain_seconds = 0.3

[[servers]]
fqdn = "fe02.contoso.com"
product = "sfb2015"
pool = "pool01.contoso.com"
roles = ["FrontEnd"]
drain_seconds = 0.3

[[servers]]
fqdn = "fe03.contoso.com"
product = "sfb2015"
pool = "pool01.contoso.com"
roles = ["FrontEnd"]
drain_seconds = 0.3

[[servers]]
fqdn = "med01.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.3

[[servers]]
fqdn = "med02.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
drain_seconds = 0.3

[[servers]]
fqdn = "med03.contoso.com"
product = "sfb2015"
roles = ["MediationServer"]
in_perfmon_group = false  # its drain-ready preflight fails
drain_seconds = 0.3

[[servers]]
fqdn = "edge01.contoso.com"
product = "sfb2015"
roles = ["Edge"]
stopped = ["RTCMEDIARELAY"]  # the estate status alerts on it
drain_seconds = 0.3

[[servers]]
fqdn = "ocs01.contoso.com"
product = "ocs2007r2"
roles = ["FrontEnd"]
"""


def start() -> Lab:
    """The examples' estate, served until the ``with`` block ends."""
    return Lab(parse_topology(ESTATE, source="examples estate")).start()


def hosts(lab: Lab) -> list[str]:
    return [s.fqdn for s in lab.topology.servers]


def server(lab: Lab, host: str) -> ocsps.Server:
    """A ``Server`` for one lab host, from the connector that knows every lab server's address."""
    return ocsps.Connector.for_lab(lab, timeout=30).server(host)
