"""The notification pages: every member's preferences (/account/notifications/)
and, for admins, the system account notifications are sent through
(/staff/notification-account/).  The rules live in postdesk.notify."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from postdesk import secrets
from postdesk.models import NotifyAccount
from postdesk.notify import account, preferences
from postdesk.notify.events import LABELS
from postdesk.sources.smtp import SmtpConfigError
from postdesk.web.access import admin_required
from postdesk.web.views import _nav


@require_http_methods(["GET", "POST"])
@login_required
def notification_preferences(request):
    if request.method == "POST":
        try:
            preferences.save(
                request.user, request.POST.getlist("events"), request.POST.get("watch_general") == "on",
                _minutes(request.POST.get("mode"), request.POST.get("digest_minutes")),
            )
        except ValueError as exc:
            flash.error(request, str(exc))
        else:
            flash.success(request, "Notification settings saved.")
        return redirect("postdesk_web:notifications")
    prefs = preferences.of(request.user)
    context = {
        "current": "account", "title": "Notifications", "prefs": prefs, "status": account.status(),
        "events": [(kind.value, label, kind.value in prefs.events) for kind, label in LABELS.items()],
        "has_email": bool(request.user.email), **_nav(request),
    }
    return render(request, "postdesk/notifications.html", context)


def _minutes(mode: str | None, value: str | None) -> int:
    if mode != "digest":
        return 0
    try:
        return int(value or "")
    except ValueError:
        raise ValueError("the digest interval is a number of minutes") from None


@require_http_methods(["GET", "POST"])
@admin_required
def notification_account(request):
    row = NotifyAccount.objects.first() or NotifyAccount()
    if request.method == "POST":
        url = request.POST.get("smtp_url", "").strip()
        try:
            if url:
                account.parse_url(url)
        except SmtpConfigError as exc:
            flash.error(request, str(exc))
            return redirect("postdesk_web:notification_account")
        row.smtp_url, row.from_address = url, request.POST.get("from_address", "").strip()
        password = request.POST.get("password", "")
        if password or not url:
            row.secret = secrets.encrypt(password) if password else ""  # blank keeps the saved one
        row.save()
        flash.success(request, "Notification account saved.")
        return redirect("postdesk_web:notification_account")
    context = {
        "current": "notification_account", "title": "Notification account", "row": row,
        "has_password": bool(row.secret), "from_environment": bool(settings.POSTDESK_SMTP_URL),
        "status": account.status(), **_nav(request),
    }
    return render(request, "postdesk/notification_account.html", context)
