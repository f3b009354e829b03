"""The sign-in log admins read (/staff/signins/): one SignInEvent row per sign-in,
failure, lockout, refused code or single sign-on, and sign-out."""

from __future__ import annotations

from postdesk.models import SignInEvent
from postdesk.signin.throttle import client_address


def record(kind: str, request=None, *, user=None, username: str = "", method: str = "", detail: str = "") -> SignInEvent:
    """Write one audit row; who, from where (by the throttle's address rule) and with what browser."""
    meta = getattr(request, "META", {}) if request is not None else {}
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return SignInEvent.objects.create(
        kind=kind,
        user=user,
        username=(username or (user.get_username() if user else ""))[:150],
        method=method[:20],
        address=(client_address(request) if request is not None else "")[:45],
        user_agent=meta.get("HTTP_USER_AGENT", "")[:300],
        detail=detail[:300],
    )
