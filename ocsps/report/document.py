"""The report as ``report --json`` writes it (``docs/schemas/report.schema.json``).

The model's rows (events, commands, versions, milestones) are their own documents; a server, a pool and
the whole report are projections: they add the verdicts the model works out (``outcome``, ``rehearsal``,
``verified``, the milestones), the format stamp, and show a roll's servers as a mapping. A module of its
own so that ``report`` writing Markdown or HTML never loads msgspec.
"""

from __future__ import annotations

import msgspec

from ocsps.report.model import (
    FORMAT,
    CommandRun,
    Event,
    Milestone,
    PoolReport,
    Report,
    ServerReport,
    VersionRow,
)

__all__ = ["PoolReportDocument", "ReportDocument", "ServerReportDocument"]


class ServerReportDocument(msgspec.Struct):
    host: str
    product: str
    outcome: str
    rehearsal: bool
    expected_version: str
    verified: bool | None
    versions: tuple[VersionRow, ...]
    statement: str
    milestones: tuple[Milestone, ...]
    events: tuple[Event, ...]

    @classmethod
    def of(cls, server: ServerReport) -> ServerReportDocument:
        return cls(
            host=server.host,
            product=server.product,
            outcome=server.outcome,
            rehearsal=server.rehearsal,
            expected_version=server.expected_version,
            verified=server.verified,
            versions=server.versions,
            statement=server.statement,
            milestones=server.milestones,
            events=server.events,
        )


class PoolReportDocument(msgspec.Struct):
    """A roll; ``servers`` maps each member to its state in the roll."""

    pool: str
    status: str
    reason: str
    position: str
    rehearsal: bool
    servers: dict[str, str]
    events: tuple[Event, ...]
    details: dict[str, str]
    """What the roll was asked and did as a whole (``PoolReport.details``), label to value."""

    @classmethod
    def of(cls, pool: PoolReport) -> PoolReportDocument:
        return cls(
            pool=pool.pool,
            status=pool.status,
            reason=pool.reason,
            position=pool.position,
            rehearsal=pool.rehearsal,
            servers=dict(pool.servers),
            events=pool.events,
            details=dict(pool.details),
        )


class ReportDocument(msgspec.Struct):
    format: str
    generated: str
    generated_by: str
    selection: str
    change_id: str
    outcome: str
    rehearsal: str
    started: str
    finished: str
    operators: tuple[str, ...]
    commands: tuple[CommandRun, ...]
    servers: tuple[ServerReportDocument, ...]
    pools: tuple[PoolReportDocument, ...]
    notes: tuple[str, ...]

    @classmethod
    def of(cls, report: Report) -> ReportDocument:
        return cls(
            format=FORMAT,
            generated=report.generated,
            generated_by=report.generated_by,
            selection=report.selection,
            change_id=report.change_id,
            outcome=report.outcome,
            rehearsal=report.rehearsal,
            started=report.started,
            finished=report.finished,
            operators=report.operators,
            commands=report.commands,
            servers=tuple(ServerReportDocument.of(s) for s in report.servers),
            pools=tuple(PoolReportDocument.of(p) for p in report.pools),
            notes=report.notes,
        )
