"""What happened, and who hears of it.

`Event` is one thing staff may be told about; `who_hears(event)` applies the
rules, in this order:
  - automatic mail (an auto-reply, a bounce, list mail: Message.auto_submitted,
    or a request a machine opened) is never announced;
  - the people: the assignee (assigned, customer_wrote, woke), the members named with
    @name (mentioned), the watchers of the general queue (new_unassigned);
  - never the actor, never an inactive member or one without an address, and
    only members whose preferences take this kind of event.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from postdesk.models import Message, Request
from postdesk.notify import preferences


class Kind(enum.StrEnum):
    ASSIGNED = "assigned"
    CUSTOMER_WROTE = "customer_wrote"
    MENTIONED = "mentioned"
    NEW_UNASSIGNED = "new_unassigned"
    WOKE = "woke"


LABELS = {
    Kind.ASSIGNED: "a request is assigned to me",
    Kind.CUSTOMER_WROTE: "the customer writes again on my request",
    Kind.MENTIONED: "someone names me with @name in a note",
    Kind.NEW_UNASSIGNED: "a new unassigned request arrives (when I watch the general queue)",
    Kind.WOKE: "a request of mine that waited on the customer is back (its snooze ended)",
}


@dataclass(frozen=True)
class Event:
    kind: Kind
    request: Request
    actor: object | None = None  # the staff member who caused it; None: the customer or the routing
    message: Message | None = None  # the new text (a customer's message, a note)
    named: tuple = field(default=())  # MENTIONED: the members named


def who_hears(event: Event) -> list:
    """The staff members to notify of `event`, each once."""
    if automatic(event):
        return []
    heard, seen = [], set()
    for staff in _candidates(event):
        if staff is None or staff.pk in seen or not _may_hear(staff, event):
            continue
        seen.add(staff.pk)
        heard.append(staff)
    return heard


def automatic(event: Event) -> bool:
    """Mail a machine sent is never announced: it would page people for out-of-office
    replies and bounces, and two desks could page each other in a loop."""
    if event.message is not None and event.message.auto_submitted:
        return True
    return bool(event.request.auto_submitted) and event.actor is None


def _candidates(event: Event) -> list:
    if event.kind in (Kind.ASSIGNED, Kind.CUSTOMER_WROTE, Kind.WOKE):
        return [event.request.assignee]
    if event.kind == Kind.MENTIONED:
        return list(event.named)
    return preferences.watchers()


def _may_hear(staff, event: Event) -> bool:
    if not staff.is_active or not staff.email:
        return False
    if event.actor is not None and staff.pk == event.actor.pk:
        return False  # nobody is told about their own action
    return event.kind in preferences.of(staff).events


_MENTION = re.compile(r"(?<![\w@])@([\w][\w.+-]*)")


def mentioned_in(text: str) -> tuple:
    """The active members a note names with @username (case-insensitive; a trailing
    full stop is punctuation, not part of the name)."""
    names = {m.group(1).rstrip(".").lower() for m in _MENTION.finditer(text or "")}
    if not names:
        return ()
    users = get_user_model().objects.filter(is_active=True)
    return tuple(u for u in users if u.get_username().lower() in names)
