"""The member's own account page (/account/): how they sign in (two factors, single
sign-on), their open sessions, ending one, and signing out everywhere else.  The rules
are in postdesk.signin (sessions, two_factor, sso); two factors have their own page
(/account/two-factor/, web/two_factor.py), linked from here.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from postdesk.signin import sessions, two_factor
from postdesk.web.sso import button_label
from postdesk.web.views import _nav

CURRENT = "account"


@require_GET
@login_required
def account(request):
    context = {
        "current": CURRENT,
        "title": "Your account",
        "sessions": sessions.open_sessions(request.user, current_key=request.session.session_key),
        "two_factor": two_factor.status(request.user),
        "sso_emails": [i.email for i in request.user.sso_identities.all()],
        "sso_label": button_label(),  # "" when single sign-on is off
        **_nav(request),
    }
    return render(request, "postdesk/account.html", context)


@require_POST
@login_required
def end_session(request, pk: int):
    ended = sessions.end(request, pk, owner=request.user)
    if ended is None:
        flash.error(request, "That session had already ended.")
    elif not request.user.is_authenticated:  # it was this browser's own
        return redirect("postdesk_web:login")
    else:
        flash.success(request, f"Ended the session of {ended.browser}. It is signed out at its next request.")
    return redirect("postdesk_web:account")


@require_POST
@login_required
def end_other_sessions(request):
    ended = sessions.end_others(request)
    flash.success(request, f"Signed out everywhere else: {len(ended)} session{'s' if len(ended) != 1 else ''} ended.")
    return redirect("postdesk_web:account")
