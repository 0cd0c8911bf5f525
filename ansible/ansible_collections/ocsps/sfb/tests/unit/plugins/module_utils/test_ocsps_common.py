"""Per-member connection overrides: checked before anything connects."""

from __future__ import annotations

import pytest

from ansible_collections.ocsps.sfb.plugins.module_utils.ocsps_common import member_overrides

pytest.importorskip("ocsps")

MEMBERS = ["fe01.contoso.com", "FE02.contoso.com"]


def test_overrides_are_keyed_by_member_without_regard_to_case():
    found = member_overrides(MEMBERS, {"fe02.CONTOSO.com": {"path": "wsman/fe02", "port": "5985"}})
    assert found == {"fe02.contoso.com": {"path": "wsman/fe02", "port": "5985"}}


@pytest.mark.parametrize(("raw", "message"), [
    ({"fe09.contoso.com": {"path": "x"}}, "not in members"),
    ({"fe01.contoso.com": {"password": "x"}}, "not allowed here"),
    ({"fe01.contoso.com": {"host": "other"}}, "not allowed here"),
    ({"fe01.contoso.com": {"prot": 5985}}, "unknown connection option"),
    ({"fe01.contoso.com": "wsman/fe01"}, "expected a table"),
])
def test_bad_overrides_are_refused_with_the_key(raw, message):
    from ocsps.errors import UsageError

    with pytest.raises(UsageError, match=message):
        member_overrides(MEMBERS, raw)
