"""Whether a new request is acknowledged.  Every rule here exists because a
peer's users once got mail they should not have (or two machines answered each
other forever)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from postdesk.mail import ParsedMessage
from postdesk.models import Intake, Mailbox, Outgoing
from postdesk.outbound.ours import Ours


@dataclass(frozen=True)
class AckDecision:
    send: bool
    reason: str  # why not (recorded in the request's history), or "acknowledged"


def decide(mailbox: Mailbox, intake: Intake, parsed: ParsedMessage, recipient: str, ours: Ours,
           sent_today: dict[str, int]) -> AckDecision:
    """`ours`: our addresses as this message sees them (outbound.ours).  `sent_today`
    counts acknowledgements per recipient in the last 24 hours, including those
    planned earlier in the same batch (the caller keeps it)."""
    if not mailbox.ack_enabled:
        return AckDecision(False, "acknowledgements are off for this mailbox")
    if parsed.auto_submitted is not None:
        return AckDecision(False, f"not acknowledged: sent automatically ({parsed.auto_submitted.kind})")
    if not recipient or "@" not in recipient:
        return AckDecision(False, "not acknowledged: no address to answer")
    if recipient in ours:
        return AckDecision(False, "not acknowledged: the sender is one of our own addresses")
    if intake.backlog and not mailbox.ack_backlog:
        return AckDecision(False, "not acknowledged: it was in the mailbox before Postdesk connected")
    if sent_today.get(recipient, 0) >= mailbox.ack_daily_limit:
        return AckDecision(False, f"not acknowledged: {mailbox.ack_daily_limit} acknowledgements to this sender today already")
    return AckDecision(True, "acknowledged")


def acks_in_last_day(recipients: list[str]) -> dict[str, int]:
    since = timezone.now() - timedelta(days=1)
    wanted = set(recipients)
    counts: dict[str, int] = {}
    # A day's acknowledgements are few (each sender is capped): reading their
    # recipient lists is cheaper than a JSON query that differs per database.
    for recipients_json in Outgoing.objects.filter(message__kind="ack", created_at__gte=since).values_list("recipients", flat=True):
        for address in recipients_json:
            if address in wanted:
                counts[address] = counts.get(address, 0) + 1
    return counts
