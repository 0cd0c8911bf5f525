"""synthetic: can users sign in to a pool and exchange an instant message? (Test-CsRegistration, Test-CsIM)

Services that run are not a pool that serves: after a patch, a start or a recovery, a synthetic transaction
is the check that signs a user in and sends a message through the pool. Without user names both cmdlets
use the pool's health-monitoring test users (``New-CsHealthMonitoringConfiguration``), which need no
password; with SIP addresses they run in the server parameter set, which takes no credential either, so
no password is ever asked for, stored or sent. Each transaction's ``Result`` decides its finding; a
failure carries the server's ``Error`` and ``Diagnosis``.

:func:`run_synthetic` is the entry point for code that has a ``Server`` in hand (a pool roll after its
last server); ``ocsps check synthetic --pool FQDN`` runs the same check from the command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import msgspec

from ocsps.checks.common import objects
from ocsps.checks.model import (
    ActionOutput,
    Check,
    CheckContext,
    CheckNotRun,
    CheckOptions,
    CheckResult,
    Finding,
    Request,
)
from ocsps.checks.spec import Status
from ocsps.errors import UsageError
from ocsps.results.base import JsonValue, PropertyReader

if TYPE_CHECKING:
    from ocsps.remote.server import Server

__all__ = [
    "CHECK",
    "SyntheticCheck",
    "SyntheticDocument",
    "SyntheticFacts",
    "SyntheticOptions",
    "SyntheticResult",
    "Transaction",
    "check_sip_address",
    "parse_latency",
    "parse_transaction",
    "run_synthetic",
]

KIND = "SyntheticTransaction"
NAME = "synthetic"
_SIP = re.compile(r"^(?:sip:)?([^@\s:;]+@[^@\s:;]+)$", re.IGNORECASE)
_LATENCY = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def check_sip_address(value: str, what: str) -> str:
    """``sip:user@domain`` (the ``sip:`` prefix added when missing), or a one-line usage error."""
    match = _SIP.match(value.strip())
    if match is None:
        raise UsageError(f"{what} {value!r} is not a SIP address such as sip:watcher1@contoso.com")
    return f"sip:{match.group(1)}"


def check_test_users(users: Sequence[str], *, post_checks: bool, label: str, enable: str) -> list[str]:
    """The users a pool patch's post-checks sign in as, checked before any connection: only with the
    post-checks (``enable`` says how to turn them on), at most two (sender, then receiver), each a SIP
    address."""
    given = [user for user in users if user and user.strip()]
    if given and not post_checks:
        raise UsageError(f"{label} names who the post-checks sign in as: {enable}")
    if len(given) > 2:
        raise UsageError(f"{label} takes at most two addresses: sender, then receiver")
    return [check_sip_address(user, label) for user in given]


def parse_latency(text: str | None) -> float | None:
    """A TimeSpan as text (``00:00:01.2345678``, ``1.02:03:04``) in seconds; None when empty or unknown."""
    if not text:
        return None
    match = _LATENCY.match(text.strip())
    if match is None:
        return None
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class SyntheticOptions(CheckOptions):
    """``CheckOptions`` plus what the synthetic check needs: the pool and, optionally, its users.

    ``user`` signs in for Test-CsRegistration and sends for Test-CsIM; ``receiver`` receives. Without
    them the pool's health-monitoring test users are used.
    """

    pool: str | None = None
    user: str | None = None
    receiver: str | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SyntheticOptions:
        """Options as test cases write them: those of every check, plus pool, user and receiver."""
        base = super().from_json(doc)
        return replace(
            cls(**{f.name: getattr(base, f.name) for f in fields(CheckOptions)}),
            pool=doc.get("pool"),
            user=doc.get("user"),
            receiver=doc.get("receiver"),
        )


def _options(ctx: CheckContext) -> SyntheticOptions:
    return ctx.options if isinstance(ctx.options, SyntheticOptions) else SyntheticOptions()


_TRANSACTION_KEYS = {"name": "transaction", "latency": "latency_seconds", "latency_text": "latency"}


class Transaction(msgspec.Struct, frozen=True, rename=_TRANSACTION_KEYS):
    """One synthetic transaction's result, as the server reported it.

    In JSON ``name`` is ``transaction``, and ``latency`` (seconds) is ``latency_seconds`` beside the
    ``latency`` text the cmdlet printed.
    """

    name: str  # "Registration" | "IM"
    target: str
    result: str  # "Success" | "Failure" (anything else is kept as reported)
    latency: float | None = None
    latency_text: str = ""
    error: str = ""
    diagnosis: str = ""
    threw: bool = False
    computer: str = ""

    @property
    def succeeded(self) -> bool:
        return self.result.casefold() == "success"


def parse_transaction(obj: object) -> Transaction:
    """One object of the check-synthetic template."""
    reader = PropertyReader(obj, KIND)
    latency = reader.text("Latency") or ""
    return Transaction(
        name=reader.required_text("Transaction"),
        target=reader.text("TargetFqdn") or "",
        result=reader.required_text("Result"),
        latency=parse_latency(latency),
        latency_text=latency,
        error=reader.multiline("Error", "ErrorMessage") or "",
        diagnosis=reader.multiline("Diagnosis") or "",
        threw=bool(reader.boolean("Threw")),
        computer=reader.text("ComputerName") or "",
    )


@dataclass(frozen=True)
class SyntheticFacts:
    pool: str | None
    asked: tuple[str, ...]
    transactions: tuple[Transaction, ...]


# Rule id per transaction name (checks.toml), and the cmdlet that runs it.
_RULES = {"Registration": ("registration", "Test-CsRegistration"), "IM": ("im", "Test-CsIM")}


class SyntheticCheck(Check[SyntheticFacts]):
    name = NAME

    def _transactions(self, ctx: CheckContext) -> tuple[str, ...]:
        wanted = ctx.spec.setting("transactions")
        return tuple(str(t) for t in wanted)

    def validate(self, ctx: CheckContext) -> None:
        opts = _options(ctx)
        if opts.pool is not None and not opts.pool.strip():
            raise UsageError("--pool is empty")
        if opts.receiver and not opts.user:
            raise UsageError("--receiver needs --user (the sender); or give neither to use the test users")
        for what, value in (("--user", opts.user), ("--receiver", opts.receiver)):
            if value:
                check_sip_address(value, what)
        unknown = [t for t in self._transactions(ctx) if t not in _RULES]
        if unknown:
            raise UsageError(f"checks.toml synthetic.transactions: unknown {unknown[0]!r}")

    def requests(self, ctx: CheckContext) -> Sequence[Request]:
        opts = _options(ctx)
        if not opts.pool:
            return []
        values: dict[str, object] = {"PoolFqdn": opts.pool.strip(), "Transaction": self._transactions(ctx)}
        if opts.user:
            values["UserSipAddress"] = check_sip_address(opts.user, "--user")
            if opts.receiver:
                values["SenderSipAddress"] = values["UserSipAddress"]
                values["ReceiverSipAddress"] = check_sip_address(opts.receiver, "--receiver")
        return [Request("synthetic", "check-synthetic", values)]

    def facts(self, outputs: Mapping[str, ActionOutput], ctx: CheckContext) -> SyntheticFacts:
        opts = _options(ctx)
        asked = self._transactions(ctx)
        if not opts.pool:
            return SyntheticFacts(None, asked, ())
        found = objects(outputs, "synthetic", "check-synthetic")
        if not found:
            raise CheckNotRun("unreadable", error="the synthetic transactions returned nothing")
        return SyntheticFacts(opts.pool.strip(), asked, tuple(parse_transaction(o) for o in found))

    def evaluate(self, facts: SyntheticFacts, ctx: CheckContext) -> list[Finding]:
        if facts.pool is None:
            return [ctx.finding("pool-named", "not-named")]
        opts = _options(ctx)
        found: list[Finding] = []
        for name in facts.asked:
            rule, cmdlet = _RULES[name]
            users = self._users(name, opts)
            results = [t for t in facts.transactions if t.name.casefold() == name.casefold()]
            if not results:
                found.append(ctx.finding(rule, "missing", pool=facts.pool, cmdlet=cmdlet, users=users))
                continue
            for t in results:
                values = {
                    "pool": facts.pool,
                    "cmdlet": cmdlet,
                    "users": users,
                    "latency": t.latency_text or "unknown",
                    "error": t.error or "no error text",
                    "diagnosis": t.diagnosis or "none given",
                    "result": t.result,
                }
                outcome = "ok" if t.succeeded else "threw" if t.threw else "failed"
                found.append(ctx.finding(rule, outcome, **values))
        return found

    @staticmethod
    def _users(name: str, opts: SyntheticOptions) -> str:
        user = check_sip_address(opts.user, "--user") if opts.user else None
        receiver = check_sip_address(opts.receiver, "--receiver") if opts.receiver else None
        if name == "Registration" and user:
            return user
        if name == "IM" and user and receiver:
            return f"{user} and {receiver}"
        return "the pool's health-monitoring test users"


CHECK = SyntheticCheck()


@dataclass(frozen=True)
class SyntheticResult:
    """The synthetic check on one server: every transaction, and the findings they produced."""

    pool: str
    host: str
    check: CheckResult

    @property
    def transactions(self) -> tuple[Transaction, ...]:
        facts = self.check.facts
        if not isinstance(facts, dict):
            return ()
        items = facts.get("transactions")
        return tuple(parse_transaction(t) for t in items) if isinstance(items, list) else ()

    @property
    def ok(self) -> bool:
        """Every transaction asked for ran and succeeded."""
        return self.check.status is Status.PASS


class SyntheticDocument(msgspec.Struct):
    """A :class:`SyntheticResult` as JSON: the pool and the verdict, then the check result's own keys."""

    pool: str
    host: str
    ok: bool
    check: str
    product: str
    status: Status
    source: str
    findings: tuple[Finding, ...]
    facts: JsonValue

    @classmethod
    def of(cls, result: SyntheticResult) -> SyntheticDocument:
        check = result.check
        return cls(
            result.pool,
            check.host,
            result.ok,
            check.check,
            check.product,
            check.status,
            check.source,
            check.findings,
            check.facts,
        )


def run_synthetic(
    server: Server,
    pool: str,
    users: Sequence[str] = (),
    *,
    timeout: float | None = None,
) -> SyntheticResult:
    """Run the synthetic transactions against ``pool`` from ``server`` (a pool member, or any server
    with the product's management shell).

    ``users``: none (the pool's health-monitoring test users), one SIP address (signs in; the message test
    still uses the test users), or two (sender then receiver). Never a password. Raises ``UsageError``
    for a bad address before anything is sent; connection faults propagate as for every check.
    """
    from ocsps.checks.runner import run_checks, validate_checks

    if len(users) > 2:
        raise UsageError("synthetic transactions take at most two users: sender, then receiver")
    options = SyntheticOptions(
        pool=pool,
        user=users[0] if users else None,
        receiver=users[1] if len(users) > 1 else None,
    )
    validate_checks([NAME], server.product, options)
    (result,) = run_checks(server, [NAME], options, timeout=timeout)
    return SyntheticResult(pool, server.host, result)
