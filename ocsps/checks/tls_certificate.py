"""tls-certificate (seed 004, KB 836410): the certificate a TLS listener or connection is set to use.

The trap: a certificate renewed while the server runs (an auto-enrolment Group Policy does it unasked)
loses the ACL entries set when the TLS listening port was configured; nothing happens until the next
restart, when the port does not start and events 14347, 14336 and 14352 appear. So the check compares
what the product is configured to use (OCS: WMI ``MSFT_SIPRoutingSetting`` TLSCertSN / TLSCertIssuer;
Lync and Skype for Business: ``Get-CsCertificate``) with the computer's Personal store, archived
certificates included, because renewal archives the old one.

Two things are not documented and are handled as data: the byte order of the OCS serial number in WMI
(both orders are accepted), and which principals stand for "the service account" on the key's ACL
(``key_readers_*`` in checks.toml, overridable with ``--key-reader``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ocsps.checks.common import objects
from ocsps.checks.model import ActionOutput, Check, CheckContext, Finding, Request
from ocsps.results import EventRecord, ParseError, parse_event_record
from ocsps.results.base import PropertyReader

__all__ = [
    "CHECK",
    "CertReference",
    "StoreCertificate",
    "TlsCertificateCheck",
    "TlsFacts",
    "parse_certificate_objects",
]

KIND = "CertificateInventory"


@dataclass(frozen=True)
class CertReference:
    """A certificate the product is configured to use, as the configuration names it."""

    source: str
    label: str
    serial: str = ""
    issuer: str = ""
    thumbprint: str = ""


@dataclass(frozen=True)
class StoreCertificate:
    """One certificate of the computer's Personal store, with what could be learnt about its key ACL."""

    thumbprint: str
    serial: str
    subject: str
    issuer: str
    not_before: datetime | None
    not_after: datetime | None
    has_private_key: bool
    archived: bool = False
    key_acl_read: bool = False
    key_readers: tuple[str, ...] = ()
    key_detail: str = ""

    @property
    def label(self) -> str:
        return self.thumbprint or f"serial {self.serial}"


@dataclass(frozen=True)
class TlsFacts:
    server_time: datetime | None
    references: tuple[CertReference, ...]
    reference_errors: tuple[str, ...]
    certificates: tuple[StoreCertificate, ...]
    events: Mapping[str, tuple[EventRecord, ...]]  # log name -> events found
    event_errors: Mapping[str, str]  # log name -> why it could not be read
    event_logs_read: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_logs_read", tuple(self.events))


def _hex(text: str) -> str:
    return re.sub(r"[^0-9A-Fa-f]", "", text).upper()


def same_serial(configured: str, store: str) -> bool:
    """Serials match as written or byte-reversed: the order WMI keeps TLSCertSN in is not documented."""
    a, b = _hex(configured), _hex(store)
    if not a or not b:
        return False
    if a == b:
        return True
    if len(a) % 2:
        return False
    reversed_a = "".join(a[i : i + 2] for i in range(len(a) - 2, -2, -2))
    return reversed_a == b


def _rdns(name: str) -> list[str]:
    return [" ".join(part.split()).casefold() for part in name.split(",") if part.strip()]


def same_name(a: str, b: str) -> bool:
    """Distinguished names compare without spacing or case, in either RDN order (tools differ)."""
    left, right = _rdns(a), _rdns(b)
    return bool(left) and (left == right or left == right[::-1])


def _principal(text: str) -> str:
    return text.rsplit("\\", 1)[-1].strip().casefold()


def readers_granted(granted: Sequence[str], expected: Sequence[str]) -> list[str]:
    """Principals of the ACL that stand for an expected reader; a name without a domain matches any domain."""
    matches = []
    for entry in granted:
        for wanted in expected:
            if "\\" in wanted:
                hit = entry.strip().casefold() == wanted.strip().casefold()
            else:
                hit = _principal(entry) == wanted.strip().casefold()
            if hit:
                matches.append(entry)
                break
    return matches


def parse_certificate_objects(
    items: Sequence[object],
) -> tuple[datetime | None, list[CertReference], list[str], list[StoreCertificate]]:
    """The template's objects, told apart by their Kind: Now, Reference, ReferenceError, Certificate."""
    server_time: datetime | None = None
    references: list[CertReference] = []
    errors: list[str] = []
    certificates: list[StoreCertificate] = []
    for item in items:
        reader = PropertyReader(item, KIND)
        kind = reader.required_text("Kind")
        if kind == "Now":
            moment = reader.moment("ServerTime", required=True)
            server_time = None if moment is None else moment[0]
        elif kind == "Reference":
            references.append(
                CertReference(
                    source=reader.required_text("Source"),
                    label=reader.text("Label") or "",
                    serial=reader.text("SerialNumber") or "",
                    issuer=reader.text("Issuer") or "",
                    thumbprint=reader.text("Thumbprint") or "",
                )
            )
        elif kind == "ReferenceError":
            errors.append(f"{reader.text('Source') or '?'}: {reader.text('Message') or 'no message'}")
        elif kind == "Certificate":
            certificates.append(_certificate(reader))
        else:
            raise ParseError(KIND, "Kind", f"has value {kind!r}, expected Now, Reference or Certificate")
    return server_time, references, errors, certificates


def _certificate(reader: PropertyReader) -> StoreCertificate:
    not_before = reader.moment("NotBefore")
    not_after = reader.moment("NotAfter")
    readers_text = reader.text("KeyReaders") or ""
    return StoreCertificate(
        thumbprint=_hex(reader.text("Thumbprint") or ""),
        serial=_hex(reader.text("SerialNumber") or ""),
        subject=reader.text("Subject") or "",
        issuer=reader.text("Issuer") or "",
        not_before=None if not_before is None else not_before[0],
        not_after=None if not_after is None else not_after[0],
        has_private_key=bool(reader.boolean("HasPrivateKey", required=True)),
        archived=bool(reader.boolean("Archived")),
        key_acl_read=bool(reader.boolean("KeyAclRead")),
        key_readers=tuple(p.strip() for p in readers_text.split(";") if p.strip()),
        key_detail=reader.text("KeyDetail") or "",
    )


def event_logs(ctx: CheckContext) -> dict[str, list[int]]:
    """Each log searched (the product's own, then Application: checks.toml) with the event ids sought.

    OCS, Lync and Skype for Business write to their own logs; seed 004 shows LCS 2003 writing these ids
    to the Application log. Reading only one of them let a server with the events logged in the other pass.
    """
    ids = [int(i) for i in ctx.spec.setting("event_ids")]
    logs: dict[str, list[int]] = {}
    for name in ctx.spec.setting("event_logs"):
        logs.setdefault(ctx.product.event_log if name == "product" else str(name), list(ids))
    return logs


def log_is_missing(error: str, ctx: CheckContext) -> bool:
    """The error says the log does not exist on the server (texts and ids in checks.toml)."""
    folded = error.casefold()
    return any(str(m).casefold() in folded for m in ctx.spec.setting("missing_log_errors"))


def how_to_reassign(ctx: CheckContext) -> str:
    """This product's way of pointing it at a certificate again (checks.toml, per family)."""
    return str(ctx.spec.setting(f"reassign_{ctx.product.service_control}"))


def event_window(ctx: CheckContext) -> timedelta:
    return ctx.options.event_window or timedelta(hours=float(ctx.spec.setting("event_window_hours")))


def _window_text(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        return f"{int(hours // 24)} day(s)"
    return f"{hours:g} hour(s)"


class TlsCertificateCheck(Check[TlsFacts]):
    name = "tls-certificate"

    def requests(self, ctx: CheckContext) -> Sequence[Request]:
        values: dict[str, object] = {}
        if ctx.product.service_control == "windows":
            values = {
                "Class": tuple(str(c) for c in ctx.spec.setting("wmi_classes")),
                "SerialProperty": str(ctx.spec.setting("wmi_serial_property")),
                "IssuerProperty": str(ctx.spec.setting("wmi_issuer_property")),
            }
        since = (ctx.now - event_window(ctx)).isoformat().replace("+00:00", "Z")
        found = [Request("store", "check-tls-certificate", values)]
        for log, ids in event_logs(ctx).items():
            found.append(
                Request(
                    f"events:{log}",
                    "events",
                    {"LogName": log, "Id": tuple(str(i) for i in ids), "Since": since},
                )
            )
        return found

    def facts(self, outputs: Mapping[str, ActionOutput], ctx: CheckContext) -> TlsFacts:
        now, refs, errors, certs = parse_certificate_objects(
            objects(outputs, "store", "check-tls-certificate")
        )
        events: dict[str, tuple[EventRecord, ...]] = {}
        event_errors: dict[str, str] = {}
        for log in event_logs(ctx):
            out = outputs.get(f"events:{log}")
            if out is None or out.error:
                event_errors[log] = "no answer" if out is None else str(out.error)
                continue
            events[log] = tuple(sorted((parse_event_record(o) for o in out.objects), key=lambda e: e.time))
        return TlsFacts(now, tuple(refs), tuple(errors), tuple(certs), events, event_errors)

    def evaluate(self, facts: TlsFacts, ctx: CheckContext) -> list[Finding]:
        found = [self._assignment(facts, ctx)]
        for ref in facts.references:
            found += self._reference(ref, facts, ctx)
        found += self._events(facts, ctx)
        return found

    # ------------------------------------------------------------------ rules
    def _source_name(self, ctx: CheckContext) -> str:
        if ctx.product.service_control == "windows":
            classes = ", ".join(str(c) for c in ctx.spec.setting("wmi_classes"))
            return f"WMI {classes} ({ctx.spec.setting('wmi_serial_property')})"
        return "Get-CsCertificate"

    def _assignment(self, facts: TlsFacts, ctx: CheckContext) -> Finding:
        source_name = self._source_name(ctx)
        if facts.references:
            labels = [
                f"{r.label or r.source} -> {r.thumbprint or 'serial ' + r.serial}" for r in facts.references
            ]
            return ctx.finding("assignment", "found", count=len(labels), list=labels, source_name=source_name)
        if facts.reference_errors:
            return ctx.finding(
                "assignment", "error", error="; ".join(facts.reference_errors), source_name=source_name
            )
        return ctx.finding("assignment", "none", source_name=source_name)

    def _match(self, ref: CertReference, certs: Sequence[StoreCertificate]) -> StoreCertificate | None:
        if ref.thumbprint:
            hits = [c for c in certs if c.thumbprint == _hex(ref.thumbprint)]
        else:
            hits = [
                c
                for c in certs
                if same_serial(ref.serial, c.serial) and (not ref.issuer or same_name(ref.issuer, c.issuer))
            ]
        hits.sort(key=lambda c: c.archived)  # a live copy first
        return hits[0] if hits else None

    def _reference(self, ref: CertReference, facts: TlsFacts, ctx: CheckContext) -> list[Finding]:
        label = ref.label or ref.source
        configured = ref.thumbprint or f"serial {ref.serial}"
        cert = self._match(ref, facts.certificates)
        if cert is None:
            return [ctx.finding("in-store", "missing", ref=label, cert=configured, how=how_to_reassign(ctx))]
        found = [
            ctx.finding(
                "in-store",
                "archived" if cert.archived else "ok",
                ref=label,
                cert=cert.label,
                how=how_to_reassign(ctx),
            )
        ]
        found.append(self._current(label, cert, facts, ctx))
        found.append(self._validity(label, cert, facts, ctx))
        found.append(
            ctx.finding(
                "private-key", "ok" if cert.has_private_key else "missing", ref=label, cert=cert.label
            )
        )
        if cert.has_private_key:
            found.append(self._key_access(label, cert, ctx))
        return found

    def _current(self, label: str, cert: StoreCertificate, facts: TlsFacts, ctx: CheckContext) -> Finding:
        newer = [
            c
            for c in facts.certificates
            if not c.archived
            and c.thumbprint != cert.thumbprint
            and same_name(c.subject, cert.subject)
            and same_name(c.issuer, cert.issuer)
            and c.not_before is not None
            and (cert.not_before is None or c.not_before > cert.not_before)
        ]
        if not newer:
            return ctx.finding(
                "current", "ok", ref=label, cert=cert.label, new_cert="", how=how_to_reassign(ctx)
            )
        latest = max(newer, key=lambda c: c.not_before or datetime.min)
        return ctx.finding(
            "current",
            "renewed",
            ref=label,
            cert=cert.label,
            new_cert=latest.label,
            subject=cert.subject,
            new_from=latest.not_before or "?",
            how=how_to_reassign(ctx),
        )

    def _validity(self, label: str, cert: StoreCertificate, facts: TlsFacts, ctx: CheckContext) -> Finding:
        now = facts.server_time or ctx.now
        values: dict[str, object] = {
            "ref": label,
            "not_before": cert.not_before or "?",
            "not_after": cert.not_after or "?",
        }
        if cert.not_before is None or cert.not_after is None:
            return ctx.finding("validity", "unknown", **values)
        if now < cert.not_before:
            return ctx.finding("validity", "not-yet-valid", **values)
        if now > cert.not_after:
            return ctx.finding("validity", "expired", **values)
        left = cert.not_after - now
        if left < timedelta(days=float(ctx.spec.setting("expiry_warning_days"))):
            return ctx.finding("validity", "expiring", days=left.days, **values)
        return ctx.finding("validity", "ok", **values)

    def _key_access(self, label: str, cert: StoreCertificate, ctx: CheckContext) -> Finding:
        how = how_to_reassign(ctx)
        if not cert.key_acl_read:
            detail = cert.key_detail or "the key's ACL could not be read"
            return ctx.finding("key-access", "unknown", ref=label, detail=detail, how=how)
        family = ctx.product.service_control
        expected = list(ctx.options.key_readers) or [
            str(p) for p in ctx.spec.setting(f"key_readers_{family}")
        ]
        who = readers_granted(cert.key_readers, expected)
        if who:
            return ctx.finding("key-access", "ok", ref=label, who=who, how=how)
        return ctx.finding(
            "key-access", "denied", ref=label, expected=expected, granted=list(cert.key_readers), how=how
        )

    def _events(self, facts: TlsFacts, ctx: CheckContext) -> list[Finding]:
        window = _window_text(event_window(ctx))
        how = how_to_reassign(ctx)
        found = []
        for log, ids in event_logs(ctx).items():
            if log in facts.event_errors:
                error = facts.event_errors[log]
                outcome = "missing" if log_is_missing(error, ctx) else "error"
                found.append(ctx.finding("events", outcome, log=log, ids=ids, error=error, how=how))
                continue
            seen = facts.events.get(log, ())
            if not seen:
                found.append(ctx.finding("events", "none", log=log, ids=ids, window=window, how=how))
                continue
            listed = [f"{e.id} at {e.time.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" for e in seen]
            found.append(
                ctx.finding("events", "found", log=log, count=len(seen), list=listed, window=window, how=how)
            )
        return found


CHECK = TlsCertificateCheck()
