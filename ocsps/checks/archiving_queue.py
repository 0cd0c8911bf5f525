"""archiving-queue (seed 002): Message Queuing and the Archiving Server's destination queue.

The seed's traps are quiet ones: a destination queue set to privacy None, or to Body on a computer that
also runs the Front End Server, does not fail at once; messages simply stop being archived, and a server
with archiving as a critical service stops. What a computer is (Archiving Server, Front End with an
archiving agent, both) is read from the services it runs, so the rules that only concern the Archiving
Server are not applied to an agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ocsps.checks.common import objects, parse_each, present_services
from ocsps.checks.model import ActionOutput, Check, CheckContext, CheckNotRun, Finding, Request
from ocsps.results import PrivacyLevel, QueuePrivacy, parse_queue_privacy, parse_service_status

__all__ = ["CHECK", "ArchivingFacts", "ArchivingQueueCheck"]


@dataclass(frozen=True)
class ArchivingFacts:
    services: tuple[str, ...]  # catalog keys of the product services found on the computer
    queue: QueuePrivacy


def queue_path(ctx: CheckContext) -> str:
    """The destination queue path: the option when given, else the catalog default."""
    return ctx.options.queue_path or str(ctx.spec.setting("queue_path"))


class ArchivingQueueCheck(Check[ArchivingFacts]):
    name = "archiving-queue"

    def requests(self, ctx: CheckContext) -> Sequence[Request]:
        return [
            Request("services", "status"),
            Request("queue", "msmq-privacy", {"QueuePath": queue_path(ctx)}),
        ]

    def facts(self, outputs: Mapping[str, ActionOutput], ctx: CheckContext) -> ArchivingFacts:
        statuses = parse_each(objects(outputs, "services", "status"), parse_service_status)
        found = objects(outputs, "queue", "msmq-privacy")
        if not found:
            raise CheckNotRun("unreadable", error="the Message Queuing read returned nothing")
        present = present_services(ctx.catalog, ctx.product, statuses)
        return ArchivingFacts(tuple(present), parse_queue_privacy(found[0]))

    def evaluate(self, facts: ArchivingFacts, ctx: CheckContext) -> list[Finding]:
        archiving = [str(k) for k in ctx.spec.setting("archiving_services")]
        front_end = [str(k) for k in ctx.spec.setting("front_end_services")]
        is_archiving = any(k in facts.services for k in archiving)
        has_front_end = any(k in facts.services for k in front_end)
        path = queue_path(ctx)
        if is_archiving:
            part = "archiving-server-collocated" if has_front_end else "archiving-server"
        elif has_front_end:
            part = "agent"
        else:
            return [ctx.finding("participant", "none", looked_for=archiving + front_end)]
        queue = facts.queue
        found = [ctx.finding("participant", part)]
        if queue.msmq_installed:
            found.append(ctx.finding("msmq-installed", "ok"))
        else:
            found.append(ctx.finding("msmq-installed", "missing" if is_archiving else "missing-agent"))
        if not queue.msmq_installed:
            ad = "not-installed"
        elif queue.ad_integrated is None:
            ad = "unknown"
        else:
            ad = "ok" if queue.ad_integrated else "missing"
        found.append(ctx.finding("msmq-ad-integration", ad))
        if is_archiving:
            found += self._destination_queue(queue, has_front_end, path, ctx)
        return found

    def _destination_queue(
        self, queue: QueuePrivacy, has_front_end: bool, path: str, ctx: CheckContext
    ) -> list[Finding]:
        """The two privacy rules of seed 002, which concern the Archiving Server's own queue only."""
        exists = "ok" if queue.exists else "missing"
        if not queue.msmq_installed:
            exists = "no-msmq"
        found = [ctx.finding("queue-exists", exists, queue=path)]
        level = queue.privacy_level
        if level is None:
            found.append(ctx.finding("privacy-not-none", "unknown", queue=path))
            found.append(ctx.finding("privacy-not-body-collocated", "unknown", queue=path))
            return found
        none_outcome = "none" if level is PrivacyLevel.NONE else "ok"
        found.append(ctx.finding("privacy-not-none", none_outcome, queue=path, level=level.value))
        if not has_front_end:
            body_outcome = "not-collocated"
        else:
            body_outcome = "body" if level is PrivacyLevel.BODY else "ok"
        found.append(ctx.finding("privacy-not-body-collocated", body_outcome, queue=path, level=level.value))
        return found


CHECK = ArchivingQueueCheck()
