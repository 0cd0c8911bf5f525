"""Rolling maintenance of Front End pools: upgrade domains, failover and failback, quorum kept.

``plan_roll`` decides the units and their order (pure), ``RollEngine`` walks them through a
``PoolDriver`` and saves a ``RollState`` after every transition so that a roll can be resumed, and
``survey_pool`` reads what ``ocsps pool status`` shows; ``take_out``, ``bring_back`` and ``wait_ready``
apply the same rules to one member per call. The facts (quorum table, readiness states,
defaults) come from ``pools.toml`` through ``load_pool_facts``.
"""

from __future__ import annotations

from ocsps.pool.driver import PoolDriver, RemoteDriver
from ocsps.pool.engine import Maintenance, MaintenanceStop, Operator, RollEngine, RollEvent, StepResume
from ocsps.pool.facts import (
    Method,
    PoolFacts,
    QuorumRule,
    Readiness,
    ServiceDrain,
    Unit,
    Verdict,
    load_pool_facts,
)
from ocsps.pool.member import (
    MemberCall,
    MemberResult,
    PoolRefused,
    ReadyResult,
    bring_back,
    take_out,
    wait_ready,
)
from ocsps.pool.model import (
    Condition,
    FabricState,
    MemberState,
    PoolReadiness,
    StepOutcome,
    UpgradeDomain,
    parse_fabric,
    parse_readiness,
)
from ocsps.pool.plan import (
    Gate,
    GateDecision,
    GateVerdict,
    RollOptions,
    RollPlan,
    RollStep,
    RollUnit,
    StepSpec,
    gate_decision,
    plan_roll,
    roll_steps,
)
from ocsps.pool.quorum import QuorumVerdict, may_take_down, spare
from ocsps.pool.state import (
    RollState,
    RollStatus,
    ServerPhase,
    load_state,
    open_saved_roll,
    save_state,
    state_path,
)
from ocsps.pool.survey import PoolSurvey, read_domains, survey_pool

__all__ = [
    "Condition",
    "FabricState",
    "Gate",
    "GateDecision",
    "GateVerdict",
    "Maintenance",
    "MaintenanceStop",
    "MemberCall",
    "MemberResult",
    "MemberState",
    "Method",
    "Operator",
    "PoolDriver",
    "PoolFacts",
    "PoolReadiness",
    "PoolRefused",
    "PoolSurvey",
    "QuorumRule",
    "QuorumVerdict",
    "Readiness",
    "ReadyResult",
    "RemoteDriver",
    "RollEngine",
    "RollEvent",
    "RollOptions",
    "RollPlan",
    "RollState",
    "RollStatus",
    "RollStep",
    "RollUnit",
    "ServerPhase",
    "ServiceDrain",
    "StepOutcome",
    "StepResume",
    "StepSpec",
    "Unit",
    "UpgradeDomain",
    "Verdict",
    "bring_back",
    "gate_decision",
    "load_pool_facts",
    "load_state",
    "may_take_down",
    "open_saved_roll",
    "parse_fabric",
    "parse_readiness",
    "plan_roll",
    "read_domains",
    "roll_steps",
    "save_state",
    "spare",
    "state_path",
    "survey_pool",
    "take_out",
    "wait_ready",
]
