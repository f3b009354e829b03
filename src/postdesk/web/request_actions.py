"""The side column's own actions on a request: waiting on the customer (with a snooze),
priority, and tags.  Take, Assign, Unassign, Close and Reopen stay in views.py.

Each is a POST with CSRF and the page's version (staleness.Seen), run under the request's
row lock by the desk's functions (desk.status, desk.priority, desk.tagging), which hold the
rules; doing it twice changes nothing more ("Nothing to change.")."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from postdesk.desk import priority, snooze, tagging
from postdesk.desk import status as request_status
from postdesk.models import Request
from postdesk.web import staleness

@dataclass(frozen=True)
class Outcome:
    """What an action did, in the words of the flash message."""

    changed: bool
    words: str = ""


def _on_locked_request(request, number: int, action: str, change):
    """Run `change(req) -> Outcome` on the locked request unless the page is stale for
    `action` (then the page again, 409, saying what changed)."""
    from postdesk.web.views import _ask_again  # views imports this module for the page's context

    seen = staleness.read_seen(request.POST)
    with transaction.atomic():
        req = get_object_or_404(Request.objects.select_for_update(of=("self",)).select_related("assignee"), pk=number)
        stale = staleness.changes_since(seen, req, request.user).blocking(action)
        outcome = None if stale else change(req)
    if stale:
        return _ask_again(request, number, stale=stale)
    if outcome.changed:
        flash.success(request, outcome.words)
    else:
        flash.info(request, "Nothing to change.")
    return redirect("postdesk_web:request", number=number)


def _refused(request, number: int, error: Exception):
    flash.error(request, str(error))
    return redirect("postdesk_web:request", number=number)


def _status_move(req: Request, move: request_status.Move | None, actor) -> Outcome:
    if move is None:
        return Outcome(False)
    req.save(update_fields=["status", "snooze_until", "updated_at"])
    request_status.record(req, move, actor)
    return Outcome(True, move.detail)


@require_POST
@login_required
def wait(request, number: int):
    """Waiting on the customer; with a quick choice or a picked time, snoozed until then."""
    try:
        choice = snooze.read(request.POST, request.user)
    except snooze.SnoozeError as error:
        return _refused(request, number, error)
    zone = snooze.zone_of(request.user)
    return _on_locked_request(request, number, "wait", lambda req: _status_move(
        req, request_status.wait(req, choice.until, zone=zone), request.user))


@require_POST
@login_required
def set_priority(request, number: int):
    try:
        value = priority.parse(request.POST.get("priority", ""))
    except priority.PriorityError as error:
        return _refused(request, number, error)

    def change(req):
        done = priority.set_priority(req, value, actor=request.user)
        return Outcome(done.changed, f"priority {Request.Priority(done.priority).label}")

    return _on_locked_request(request, number, "priority", change)


def _change_tag(request, number: int, apply, verb: str):
    """Add or remove one tag (`apply`: tagging.add_tag or remove_tag); the name is checked first."""
    try:
        name = tagging.clean_name(request.POST.get("tag", ""))
    except tagging.TagError as error:
        return _refused(request, number, error)

    def change(req):
        done = apply(req, name, actor=request.user)
        return Outcome(done.changed, f"tag {done.tag} {verb}")

    return _on_locked_request(request, number, "tag", change)


@require_POST
@login_required
def add_tag(request, number: int):
    return _change_tag(request, number, tagging.add_tag, "added")


@require_POST
@login_required
def remove_tag(request, number: int):
    return _change_tag(request, number, tagging.remove_tag, "removed")
