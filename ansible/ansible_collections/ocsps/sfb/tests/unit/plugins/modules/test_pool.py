"""Unit tests of the pool modules: what they decide and send, with a scripted pool (no network)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import pool_member, pool_wait_ready

pytest.importorskip("ocsps")

MEMBERS = ["fe01.contoso.com", "fe02.contoso.com", "fe03.contoso.com"]


class _Pool:
    """A pool of Front End servers: ``down`` are failed over, ``readings`` the readiness answers to give."""

    def __init__(self, down=(), readings=()):
        self.down = set(down)
        self.readings = list(readings)
        self.sent = []
        self.closed = False

    def member(self, host):
        from ocsps.pool import MemberState
        from ocsps.results import ServiceState, ServiceStatus

        status = ServiceState.STOPPED if host in self.down else ServiceState.RUNNING
        return MemberState.from_services(host, [ServiceStatus("RTCSRV", status, status.value)], "RTCSRV")

    def readiness(self, via):
        from ocsps.pool import PoolReadiness

        return PoolReadiness(self.readings.pop(0) if self.readings else "Ready", computer=via)

    def fabric(self, via, pool):
        from ocsps.pool import FabricState

        return FabricState(pool, via, (), (), ())

    def failover(self, host, wait_time, draining_timeout, force):
        self.sent.append(f"failover {host}")
        self.down.add(host)

    def failback(self, host, wait_time):
        self.sent.append(f"failback {host}")
        self.down.discard(host)

    def close(self):
        self.closed = True


def _run(monkeypatch, capsys, module, pool, check_mode=False, **args):
    from ocsps.catalog import load_catalog

    product = load_catalog().product("sfb2015")
    monkeypatch.setattr(module, "open_pool", lambda m: (pool, product, list(m.params["members"])))
    args.update(_ansible_check_mode=check_mode, pool="pool01.contoso.com", members=MEMBERS, product="sfb2015")
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_predicts_the_failover_and_sends_nothing(monkeypatch, capsys):
    pool = _Pool()
    result = _run(monkeypatch, capsys, pool_member, pool, True, member="fe02.contoso.com", state="out")
    assert result["changed"] is True and result["dry_run"] is True and pool.sent == []
    assert [c["action"] for c in result["calls"]] == ["pool-failover"]
    assert pool.closed


@pytest.mark.parametrize(("state", "down", "changed", "sent"), [
    ("out", set(), True, ["failover fe02.contoso.com"]),
    ("out", {"fe02.contoso.com"}, False, []),
    ("in", {"fe02.contoso.com"}, True, ["failback fe02.contoso.com"]),
    ("in", set(), False, []),
])
def test_pool_member_is_idempotent(monkeypatch, capsys, state, down, changed, sent):
    pool = _Pool(down=down)
    result = _run(monkeypatch, capsys, pool_member, pool, member="fe02.contoso.com", state=state, poll="1s")
    assert result["changed"] is changed and pool.sent == sent, result


def test_a_take_out_that_breaks_quorum_fails_with_the_reason(monkeypatch, capsys):
    pool = _Pool(down={"fe01.contoso.com"}, readings=["Ready"])
    result = _run(monkeypatch, capsys, pool_member, pool, member="fe02.contoso.com", state="out")
    assert result["failed"] is True and pool.sent == []
    assert "quorum" in result["msg"] and result["error"] == "PoolRefused" and result["exit_code"] == 1
    assert isinstance(result["problems"], list)


def _no_sleep(monkeypatch):
    """The module waits with the library's real sleep; here the waits are recorded instead."""
    import functools

    import ocsps.pool

    slept = []
    monkeypatch.setattr(ocsps.pool, "wait_ready", functools.partial(ocsps.pool.wait_ready, sleep=slept.append))
    return slept


def test_wait_ready_counts_busy_and_passes_on_ready(monkeypatch, capsys):
    slept = _no_sleep(monkeypatch)
    pool = _Pool(readings=["Busy", "Ready", "Ready"])
    result = _run(monkeypatch, capsys, pool_wait_ready, pool, stable_for="0s", busy_interval="5m")
    assert slept == [300.0]
    assert result["changed"] is False and result["readings"] == ["Busy", "Ready"] and result["busy"] == 1


def test_wait_ready_fails_on_insufficient_front_ends(monkeypatch, capsys):
    _no_sleep(monkeypatch)
    pool = _Pool(readings=["InsufficientActiveFrontEnds"])
    result = _run(monkeypatch, capsys, pool_wait_ready, pool, stable_for="0s")
    assert result["failed"] is True and "InsufficientActiveFrontEnds" in result["msg"]


@pytest.mark.parametrize(("module", "args", "message"), [
    (pool_wait_ready, dict(max_busy=0), "max_busy must be at least 1"),
    (pool_wait_ready, dict(poll="0s"), "poll: duration '0s' is out of range"),
    (pool_wait_ready, dict(busy_interval="soon"), "busy_interval: cannot read duration 'soon'"),
    (pool_member, dict(member="fe02.contoso.com", state="out", timeout="0"), "timeout: duration '0' is out"),
    (pool_member, dict(member="fe02.contoso.com", state="out", wait_time="8d"), "wait_time: cannot read"),
])
def test_timing_options_follow_the_cli_rules_and_name_the_option(monkeypatch, capsys, module, args, message):
    """The library's RollOptions.parse_timings decides, as it does for ``ocsps pool maintain``."""
    pool = _Pool()
    result = _run(monkeypatch, capsys, module, pool, **args)
    assert result["failed"] is True and result["exit_code"] == 2, result
    assert message in result["msg"] and pool.sent == []


@pytest.mark.parametrize("stable_for", ["0", "0s", "0m"])
def test_stable_for_zero_passes_on_the_first_ready(monkeypatch, capsys, stable_for):
    slept = _no_sleep(monkeypatch)
    result = _run(monkeypatch, capsys, pool_wait_ready, _Pool(readings=["Ready"]), stable_for=stable_for)
    assert result["changed"] is False and result["readings"] == ["Ready"] and slept == []
