"""Unit tests of preflight: the checks run as ``ocsps check`` runs them, config file included."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.ocsps.sfb.plugins.modules import preflight

pytest.importorskip("ocsps")

HOST = "med-lcscmd-elsewhere.contoso.com"
TOPOLOGY = f"""
[[servers]]
fqdn = "{HOST}"
product = "ocs2007r2"
roles = ["Mediation"]
lcscmd_path = 'D:\\Tools\\LCSCmd.exe'
"""


def _run(monkeypatch, capsys, **args):
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        preflight.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("configured", [False, True], ids=["default-locations", "config-path"])
def test_deactivation_ready_looks_where_the_config_file_says(monkeypatch, capsys, tmp_path, configured):
    """LCSCmd.exe is installed only where the config file's [lcscmd] path says: found only with it."""
    from ocsps.lab.runtime import Lab

    topology = tmp_path / "topology.toml"
    topology.write_text(TOPOLOGY, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text("[lcscmd]\npath = 'D:\\Tools\\LCSCmd.exe'\n" if configured else "", encoding="utf-8")
    for key in [k for k in os.environ if k.startswith("OCSPS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OCSPS_CONFIG", str(config))
    monkeypatch.setenv("OCSPS_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    with Lab(topology_file=topology) as lab:
        conn = lab.connection(HOST)
        for key in ("connect_address", "port", "path", "auth", "username", "password"):
            monkeypatch.setenv(f"OCSPS_{key.upper()}", str(conn[key]))
        monkeypatch.setenv("OCSPS_SSL", "false")
        result = _run(
            monkeypatch, capsys, host=HOST, product="ocs2007r2", checks=["deactivation-ready"], fail_on="never"
        )
    (check,) = result["checks"]
    statuses = {f["rule"]: f["status"] for f in check["findings"]}
    assert statuses["lcscmd"] == ("pass" if configured else "fail"), result
