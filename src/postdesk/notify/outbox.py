"""Planning notifications: `plan(event)` writes, inside the caller's transaction,
one outbox row per staff member who hears of it (or, for a member who takes
digests, a PendingNotification for their next digest).

So a notification commits with its cause or not at all, and the worker's sender
(outbound/sender.py) delivers it with every guarantee of the outbox: retried,
sent once, resent with the same bytes after a crash between "250" and our record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from postdesk.models import Outgoing, PendingNotification
from postdesk.notify import account, compose, preferences, reply_address
from postdesk.notify.events import Event, who_hears
from postdesk.store import blobs

log = logging.getLogger("postdesk.notify")


@dataclass(frozen=True)
class Planned:
    sent: tuple[int, ...] = ()  # staff ids with an outbox row
    digested: tuple[int, ...] = ()  # staff ids with a pending digest entry
    unsendable: tuple[int, ...] = ()  # staff ids not notified: no account can send (notifications page says why)


def plan(event: Event) -> Planned:
    """Call inside the transaction of the event's cause."""
    heard = who_hears(event)
    if not heard:
        return Planned()
    sent, digested, unsendable = [], [], []
    with transaction.atomic():  # joins the caller's transaction
        sending = account.sending_for(event.request.mailbox)
        for staff in heard:
            if preferences.of(staff).digest:
                _pend(event, staff)
                digested.append(staff.pk)
            elif sending is None:
                unsendable.append(staff.pk)
            else:
                _enqueue(event, staff, sending)
                sent.append(staff.pk)
    if unsendable:
        log.warning("notification not sent: no account to send it", extra={"request": event.request.pk})
    return Planned(tuple(sent), tuple(digested), tuple(unsendable))


def event_time(event: Event):
    """When its cause arrived: the message's creation (the delay metric starts there)."""
    if event.message is not None and event.message.created_at is not None:
        return event.message.created_at
    return timezone.now()


def _enqueue(event: Event, staff, sending: account.Sending) -> Outgoing:
    note = compose.compose(
        event.kind, event.request, event.actor, event.message, staff=staff, from_address=sending.from_address,
        from_name=sending.from_name, reply_to=_reply_to(staff, event.request),
    )
    return queue_notification(note, staff, event.request, sending, event_time(event))


def queue_notification(note: compose.Notification, staff, request, sending: account.Sending, event_at) -> Outgoing:
    return Outgoing.objects.create(
        kind=Outgoing.Kind.NOTIFICATION, mailbox=sending.mailbox, raw=blobs.put(note.raw), request=request, staff=staff,
        envelope_from=sending.from_address, recipients=[staff.email.lower()], next_attempt_at=timezone.now(),
        event_at=event_at,
    )


def _pend(event: Event, staff) -> None:
    PendingNotification.objects.create(
        staff=staff, request=event.request, kind=event.kind, event_at=event_time(event),
        summary=compose.digest_line(event.kind, event.request, event.actor, event.message),
    )


def _reply_to(staff, request) -> str:
    """The signed reply address (answering by email, notify.reply_address); none when
    the request has no mailbox address or its local part leaves no room for a token:
    the mailbox's bare address would take the member's answer as customer mail."""
    mailbox = request.mailbox
    base = (mailbox.address or mailbox.from_address) if mailbox is not None else ""
    if not base:
        return ""
    try:
        return reply_address.reply_address(staff, request, base)
    except reply_address.ReplyAddressError:
        return ""
