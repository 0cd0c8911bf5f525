"""The database update after a cumulative update: read, update where needed, read again.

``Test-CsDatabase -ConfiguredDatabases -SqlServerFqdn`` says which databases are behind the version the
installed product expects; ``Install-CsDatabase -ConfiguredDatabases -SqlServerFqdn -Update`` brings them
to it (the Lync Server 2013 update procedure, and KB 2809243 as administrators quote it). The update runs
only when a database is behind, and its result is the second reading, never the cmdlet's own word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from ocsps.patch.model import PatchParseError, _props, _text

__all__ = [
    "DatabaseDriver",
    "DatabaseReport",
    "DatabaseReportDocument",
    "DatabaseVersion",
    "DatabaseVersionDocument",
    "parse_databases",
    "update_databases",
]


@dataclass(frozen=True)
class DatabaseVersion:
    name: str
    instance: str
    expected: str
    installed: str

    @property
    def current(self) -> bool:
        return bool(self.expected) and self.expected == self.installed


class DatabaseVersionDocument(msgspec.Struct):
    """A database's versions with the verdict ``current`` (installed is the expected version)."""

    database: str
    instance: str
    expected: str
    installed: str
    current: bool

    @classmethod
    def of(cls, version: DatabaseVersion) -> DatabaseVersionDocument:
        v = version
        return cls(v.name, v.instance, v.expected, v.installed, v.current)


def parse_databases(
    output: Sequence[object],
) -> tuple[tuple[DatabaseVersion, ...], tuple[DatabaseVersion, ...]]:
    """``patch-database`` output: (the first reading, the reading after the update)."""
    found: dict[str, list[DatabaseVersion]] = {"before": [], "after": []}
    for props in map(_props, output):
        kind = _text(props, "Kind")
        if kind not in found:
            raise PatchParseError(f"unexpected kind {kind!r} in the database answer")
        found[kind].append(
            DatabaseVersion(
                _text(props, "DatabaseName"),
                _text(props, "SqlInstanceName"),
                _text(props, "ExpectedVersion"),
                _text(props, "InstalledVersion"),
            )
        )
    return tuple(found["before"]), tuple(found["after"])


class DatabaseDriver(Protocol):
    def databases(self, host: str, sql_server: str, update: bool) -> Sequence[object]: ...


@dataclass(frozen=True)
class DatabaseReport:
    host: str
    sql_server: str
    update_requested: bool
    before: tuple[DatabaseVersion, ...]
    after: tuple[DatabaseVersion, ...]

    @property
    def behind(self) -> list[str]:
        return [d.name for d in self.before if not d.current]

    @property
    def still_behind(self) -> list[str]:
        return [d.name for d in self.after if not d.current]

    @property
    def status(self) -> str:
        """current, updated, needs-update (not asked to update), not-verified, none-reported."""
        if not self.before:
            return "none-reported"
        if not self.behind:
            return "current"
        if not self.update_requested:
            return "needs-update"
        if not self.after or self.still_behind:
            return "not-verified"
        return "updated"

    @property
    def ok(self) -> bool:
        return self.status in ("current", "updated")

    def statement(self) -> str:
        names = ", ".join(self.behind)
        return {
            "none-reported": f"Test-CsDatabase reported no configured database on {self.sql_server}: check "
            "--sql-server",
            "current": f"every configured database on {self.sql_server} is at the expected version",
            "needs-update": f"behind the expected version on {self.sql_server}: {names}; nothing was changed",
            "not-verified": f"after Install-CsDatabase -Update, still behind on {self.sql_server}: "
            f"{', '.join(self.still_behind) or names}",
            "updated": f"updated on {self.sql_server} and read again at the expected version: {names}",
        }[self.status]


class DatabaseReportDocument(msgspec.Struct):
    """What ``patch database --json`` writes (and a pool patch's ``database``): both readings, the
    verdicts and the statement, read when the document is made."""

    host: str
    sql_server: str
    update_requested: bool
    status: str
    ok: bool
    before: tuple[DatabaseVersionDocument, ...]
    after: tuple[DatabaseVersionDocument, ...]
    statement: str

    @classmethod
    def of(cls, report: DatabaseReport) -> DatabaseReportDocument:
        r = report
        return cls(
            r.host,
            r.sql_server,
            r.update_requested,
            r.status,
            r.ok,
            tuple(DatabaseVersionDocument.of(d) for d in r.before),
            tuple(DatabaseVersionDocument.of(d) for d in r.after),
            r.statement(),
        )


def update_databases(driver: DatabaseDriver, host: str, sql_server: str, *, update: bool) -> DatabaseReport:
    """One round trip from ``host`` (a server of the pool, where the cmdlets run): read, and with ``update``
    update what is behind, then read again."""
    before, after = parse_databases(driver.databases(host, sql_server, update))
    return DatabaseReport(host, sql_server, update, before, after)
