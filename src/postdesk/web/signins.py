"""Admin page: the sign-in log (/staff/signins/), the current lockouts, every
member's open sessions with an "End", and how each member signs in (two factors,
single sign-on, last sign-in) with "Reset two-factor" for a lost phone.

The filters are GET parameters (kind, user, address), so a filtered view is a
link an admin can share.  The rules are in postdesk.signin (audit, sessions, throttle).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from postdesk.models import SignInEvent
from postdesk.signin import audit, browsers, sessions, throttle
from postdesk.web.access import admin_required
from postdesk.web.views import _nav

CURRENT = "admin:signins"
PAGE_SIZE = 50
KINDS = dict(SignInEvent.KINDS)


@dataclass(frozen=True)
class Filters:
    """What the admin asked to see; empty fields filter nothing."""

    kind: str
    user: str
    address: str

    @classmethod
    def from_query(cls, query) -> Filters:
        kind = query.get("kind", "")
        return cls(kind if kind in KINDS else "", query.get("user", "").strip(), query.get("address", "").strip())

    def apply(self, events: QuerySet) -> QuerySet:
        if self.kind:
            events = events.filter(kind=self.kind)
        if self.user:
            events = events.filter(username__icontains=self.user)
        if self.address:
            events = events.filter(address__startswith=self.address)  # "203.0.113." is a whole network
        return events

    def as_query(self) -> str:
        """The filters for the page links (without `page`)."""
        return urlencode({k: v for k, v in vars(self).items() if v})


@dataclass(frozen=True)
class ShownEvent:
    event: SignInEvent
    browser: str


@require_GET
@admin_required
def signin_log(request):
    filters = Filters.from_query(request.GET)
    page = Paginator(filters.apply(SignInEvent.objects.all()), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "current": CURRENT,
        "title": "Sign-ins",
        "page": page,
        "events": [ShownEvent(e, browsers.describe(e.user_agent).words if e.user_agent else "") for e in page],
        "filters": filters,
        "page_query": filters.as_query(),
        "kinds": SignInEvent.KINDS,
        "lockouts": throttle.current_lockouts(),
        "sessions": sessions.open_sessions(current_key=request.session.session_key),
        "members": audit.members(),
        **_nav(request),
    }
    return render(request, "postdesk/signins.html", context)


@require_POST
@admin_required
def end_session(request, pk: int):
    ended = sessions.end(request, pk, by_admin=True)
    if ended is None:
        flash.error(request, "That session had already ended.")
    elif not request.user.is_authenticated:  # the admin ended their own
        return redirect("postdesk_web:login")
    else:
        flash.success(request, f"Ended the session of {ended.username} ({ended.browser}).")
    return redirect("postdesk_web:signins")
