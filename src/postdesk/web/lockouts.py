"""Admin page: accounts and addresses locked out by failed sign-ins, and unlocking them.

The same code as `postdesk staff unlock` (postdesk.signin.throttle.unlock), which writes the audit row.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages as flash
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from postdesk.signin import throttle
from postdesk.web.access import admin_required
from postdesk.web.views import _nav

CURRENT = "admin:lockouts"
KINDS = ("account", "address")


@require_GET
@admin_required
def lockout_list(request):
    context = {"current": CURRENT, "title": "Sign-in lockouts", "lockouts": throttle.current_lockouts(),
               "max_wait_minutes": throttle.max_wait() // timedelta(minutes=1), **_nav(request)}
    return render(request, "postdesk/lockouts.html", context)


@require_POST
@admin_required
def lockout_unlock(request):
    kind, name = request.POST.get("kind", ""), request.POST.get("name", "")
    if kind not in KINDS or not name:
        return HttpResponseBadRequest("kind (account or address) and name are needed")
    done = throttle.unlock(kind, name, actor=request.user)
    flash.success(request, f"Unlocked {done.kind} {done.name}.")
    return redirect("postdesk_web:lockouts")
