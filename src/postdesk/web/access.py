"""Who may open which page: every page needs a sign-in; the admin pages need an admin."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def admin_required(view):
    """Logged in (else the login page) and an admin (else 403, whatever the method)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise PermissionDenied("only admins manage mailboxes and the quarantine")
        return view(request, *args, **kwargs)

    return wrapped
