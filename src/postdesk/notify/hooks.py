"""The one call each place that causes a notification makes, inside its own
transaction: the processing of new mail (process/apply.py), Take and Assign
(web/views.py), internal notes (outbound/reply.add_note), and a snooze's end
(desk/status.wake_due)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from postdesk.notify.events import Event, Kind, mentioned_in
from postdesk.notify.outbox import plan


def arrivals(staged) -> None:
    """A batch's messages (intake, parsed, message, outcome "created" or "threaded"):
    a new request to its assignee (the mailbox's routing) or to the watchers, a
    customer's message joining a request to its assignee."""
    for _intake, _parsed, message, outcome in staged:
        if message.direction != "in":
            continue
        request = message.request
        if outcome == "created":
            plan(Event(Kind.ASSIGNED if request.assignee_id else Kind.NEW_UNASSIGNED, request, message=message))
        else:
            plan(Event(Kind.CUSTOMER_WROTE, request, actor=staff_with_address(message.sender_address), message=message))


def staff_with_address(address: str):
    """The member who wrote this mail from their own address (their own words are
    not news to them), or None for a customer."""
    if not address:
        return None
    return get_user_model().objects.filter(email__iexact=address, is_active=True).order_by("pk").first()


def assigned(request, actor) -> None:
    """Assigned by a colleague: the new assignee hears (not when they took it themselves)."""
    plan(Event(Kind.ASSIGNED, request, actor=actor))


def woke(request) -> None:
    """A snoozed request came back by itself (desk.status.wake_due): its assignee hears."""
    if request.assignee_id:
        plan(Event(Kind.WOKE, request))


def noted(message, author) -> None:
    """An internal note: each member it names with @name hears."""
    named = mentioned_in(message.text)
    if named:
        plan(Event(Kind.MENTIONED, message.request, actor=author, message=message, named=named))
