"""Live pages by short polling: the queue (rows and the top bar's counts) and the
request page (what changed since it was rendered, status, assignee, who else is there).

Why polling and not server-sent events: waitress serves from a fixed pool of threads
(`postdesk serve --threads`), and an event stream holds one thread per open page for
as long as it is open; 200 open pages would take every thread and starve everything
else.  A poll is a short request (a few small queries) that gives its thread back at
once, so open pages cost requests per second, never threads: 200 visible pages at one
poll per 1.5 s are about 130 short requests a second, and a hidden tab does not poll
(live.js stops on `visibilitychange`).  The answers are small JSON; the queue's rows
come as HTML only when they changed (`stamp`).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from postdesk.models import Request
from postdesk.web import presence, staleness
from postdesk.web.queues import nav_counts


def mark_poll(request) -> None:
    """This request is a page's poll, not the staff member's doing (see PollSessionMiddleware)."""
    request.postdesk_poll = True


class PollSessionMiddleware(SessionMiddleware):
    """Django's session middleware, except that a session's end moves forward at most once
    a minute, and never on a poll.

    SESSION_SAVE_EVERY_REQUEST keeps a session alive for POSTDESK_SESSION_HOURS after the
    member's last page; saved on every page it would cost each page a write (on SQLite, the
    database's one write lock, shared with the worker's intake). Once a minute ends the
    session at most a minute early. A poll does not move it at all: a page left open must not
    keep a session alive. A request that changed the session is saved as usual."""

    REFRESH_KEY = "_postdesk_refreshed"
    REFRESH_EVERY = 60  # seconds

    def process_response(self, request, response):
        session = getattr(request, "session", None)
        if session is not None and settings.SESSION_SAVE_EVERY_REQUEST and not session.modified:
            if getattr(request, "postdesk_poll", False) or not self._refresh_due(session):
                return response
        return super().process_response(request, response)

    def _refresh_due(self, session) -> bool:
        """True (and the time noted, so the session is saved) when its end should move."""
        if session.is_empty():
            return True  # nothing to keep alive: Django's own handling (a deleted session's cookie)
        now = int(time.time())
        try:
            due = now - int(session.get(self.REFRESH_KEY, 0)) >= self.REFRESH_EVERY
        except (TypeError, ValueError):
            due = True
        if due:
            session[self.REFRESH_KEY] = now
        return due


def stamp(page) -> str:
    """A short digest of what a queue page shows; it changes when any row would render differently."""
    parts = [str(page.paginator.count)]
    for r in page.object_list:
        parts.append(f"{r.pk}:{r.updated_at.isoformat()}:{r.unread}:{r.customer_replied}:{r.assignee_id}:{r.status}:{r.priority}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def poll_url(request) -> str:
    """The URL live.js polls for this queue page: the same page and search, as JSON."""
    path = request.get_full_path()
    return path + ("&" if "?" in path else "?") + "live=1"


def _json(data: dict) -> JsonResponse:
    response = JsonResponse(data)
    response["Cache-Control"] = "private, no-store"
    return response


def queue_answer(request, context: dict, counts: dict[str, int]) -> JsonResponse:
    """The queue's poll: counts always, the rows' HTML only when they differ from the page's (`since`)."""
    mark_poll(request)
    data = {"counts": counts, "count": context["page"].paginator.count, "stamp": context["stamp"]}
    if request.GET.get("since") != context["stamp"]:
        data["html"] = render_to_string("postdesk/_queue_list.html", context, request=request)
    return _json(data)


@require_POST
@login_required
def request_live(request, number: int):
    """The request page's poll (POST: it carries a heartbeat): what changed since the page's
    version (staleness), the status and assignee now, and who else is there (presence)."""

    mark_poll(request)
    req = get_object_or_404(Request.objects.select_related("assignee"), pk=number)
    if request.POST.get("leave") == "1":
        presence.leave(request.user, req)
        return _json({})
    if request.POST.get("beat") == "1":
        presence.beat(request.user, req, replying=request.POST.get("replying") == "1")
    seen = staleness.read_seen(request.POST)
    changes = staleness.changes_since(seen, req, request.user) if not seen.missing() else staleness.Changes()
    return _json({
        "counts": nav_counts(request.user),
        "changes": changes.words,
        "customer": staleness.Kind.CUSTOMER_MESSAGE in changes.kinds,
        "status": req.status, "status_label": req.get_status_display(),
        "assignee": req.assignee.get_username() if req.assignee else "",
        "presence": [p.as_dict() for p in presence.others(req, request.user)],
    })
