"""Roll a Front End pool: one upgrade domain at a time, quorum kept, a patch step on each drained server."""

import sys
from pathlib import Path

import _lab

from ocsps import pool

POOL, STATE = "pool01.contoso.com", Path(sys.argv[1])  # STATE: the saved roll, to resume after a stop
MEMBERS = ["fe01.contoso.com", "fe02.contoso.com", "fe03.contoso.com"]
PATCH = pool.StepSpec("script", "patch.ps1", ("Write-Output 'patched'",))

with _lab.start() as lab:
    driver = pool.RemoteDriver(lambda host: _lab.server(lab, host), call_timeout=120)
    try:
        survey = pool.survey_pool(driver, POOL, "sfb2015", MEMBERS)
        domains = survey.readiness.domains if survey.readiness else ()
        plan = pool.plan_roll(POOL, driver.server(MEMBERS[0]).product, MEMBERS, domains)
        options = pool.RollOptions.defaults(step=PATCH, stable_for=1, ready_poll=0.2)
        state = pool.RollState(plan, options)
        pool.save_state(STATE, state)
        engine = pool.RollEngine(driver, state, save=lambda s: pool.save_state(STATE, s))
        engine.on_event = lambda event: print(event.message)
        engine.run()
    finally:
        driver.close()
print(state.status.value, state.reason or state.position())
sys.exit(state.status.exit_code)
