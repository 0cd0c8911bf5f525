"""Plan a restart, write it and its change-board script; once approved, run exactly the saved plan.

Usage: restart_plan.py DIR (writes DIR/plan.json and DIR/plan.ps1), then restart_plan.py DIR --approved.
"""

import sys
from pathlib import Path

import _lab

from ocsps.catalog import load_catalog
from ocsps.plans.restart import plan_restart, plan_steps
from ocsps.plans.restart_document import plan_document
from ocsps.plans.restart_script import render_restart_board
from ocsps.plans.sealed import load_plan, save_plan
from ocsps.powershell.changeboard import ChangeInfo

HOST, folder = "ocs01.contoso.com", Path(sys.argv[1])
if "--approved" not in sys.argv:
    plan = plan_document(plan_restart(["MSFT_SIPRoutingSetting.DefaultPort"], product="ocs2007r2"))
    save_plan(folder / "plan.json", "restart", plan)
    product, steps = plan_steps(plan, load_catalog())
    info = ChangeInfo(HOST, "CHG-1042", "SIP listening port change")
    (folder / "plan.ps1").write_text(render_restart_board("SIP port", product, steps, info), encoding="utf-8")
    print(f"for the change board: {folder / 'plan.ps1'}; once approved, run again with --approved")
    sys.exit(0)
approved = load_plan(folder / "plan.json", "restart")  # refused if a byte changed since approval
with _lab.start() as lab, _lab.server(lab, HOST) as server:  # deadline: seconds for the whole run
    report = server.run_restart_plan(approved, deadline=900, on_step=lambda r: print(r.label, r.outcome))
print(report.phase.value, "down:", [s.display_name for s in report.down])
sys.exit(0 if report.ok else 1)
