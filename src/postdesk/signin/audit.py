"""The sign-in log admins read (/staff/signins/): one SignInEvent row per sign-in,
failure, lockout, refused code or single sign-on, sign-out and ended session.

`record()` is the only writer of those rows.  Who writes what:

- signed in, signed out:  the receivers in postdesk.signin.sessions (Django's
                          user_logged_in / user_logged_out signals)
- failed, locked:         postdesk.signin.throttle (beside its log lines)
- code failed:            postdesk.signin.two_factor
- sso failed:             postdesk.signin.sso
- session ended:          postdesk.signin.sessions.end (the member's or an admin's "End")

Rows older than POSTDESK_SIGNIN_LOG_DAYS are deleted on a write, at most once an
hour per process: the log needs no job of its own, and a busy sign-in page does
not pay for a DELETE on every row it writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Max
from django.utils import timezone

from postdesk.models import SignInEvent, TotpDevice
from postdesk.signin.client import client_address

SIGNED_IN = SignInEvent.SIGNED_IN
FAILED = SignInEvent.FAILED
LOCKED = SignInEvent.LOCKED
CODE_FAILED = SignInEvent.CODE_FAILED
SSO_FAILED = SignInEvent.SSO_FAILED
SIGNED_OUT = SignInEvent.SIGNED_OUT
SESSION_ENDED = SignInEvent.SESSION_ENDED

PRUNE_EVERY_SECONDS = 3600
_last_prune = {"at": float("-inf")}  # time.monotonic() of this process's last prune


def record(kind: str, request=None, *, user=None, username: str = "", method: str = "", detail: str = "") -> SignInEvent:
    """Write one audit row; who, from where (by the throttle's address rule) and with what browser."""
    meta = getattr(request, "META", {}) if request is not None else {}
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    event = SignInEvent.objects.create(
        kind=kind,
        user=user,
        username=(username or (user.get_username() if user else ""))[:150],
        method=method[:20],
        address=(client_address(request) if request is not None else "")[:45],
        user_agent=meta.get("HTTP_USER_AGENT", "")[:300],
        detail=detail[:300],
    )
    _prune_now_and_then()
    return event


def failure(kind: str, request, username: str, *, detail: str = "") -> SignInEvent:
    """A refused sign-in under the name typed; linked to the account when there is one."""
    model = get_user_model()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first() if username else None
    return record(kind, request, user=user, username=username, detail=detail)


@dataclass(frozen=True)
class Pruned:
    before: datetime  # rows older than this were deleted
    deleted: int


def prune(now=None) -> Pruned:
    """Delete the rows older than POSTDESK_SIGNIN_LOG_DAYS."""
    before = (now or timezone.now()) - timedelta(days=settings.POSTDESK_SIGNIN_LOG_DAYS)
    deleted, _ = SignInEvent.objects.filter(at__lt=before).delete()
    return Pruned(before, deleted)


def _prune_now_and_then() -> None:
    now = time.monotonic()
    if now - _last_prune["at"] < PRUNE_EVERY_SECONDS:
        return
    _last_prune["at"] = now
    prune()


# --- each member, as IT asks about them (/staff/signins/, `postdesk staff list`) -------------


@dataclass(frozen=True)
class MemberSignIn:
    """One staff member, as IT asks about them: admin, two factors, single sign-on, last sign-in."""

    username: str
    admin: bool
    two_factor: bool
    sso: bool
    last_signed_in: datetime | None


def members() -> list[MemberSignIn]:
    """Every active member, in three queries however many there are."""
    two_factor_on = set(TotpDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
    signed_in = SignInEvent.objects.filter(kind=SignInEvent.SIGNED_IN, user__isnull=False)
    last = dict(signed_in.values("user").annotate(last=Max("at")).values_list("user", "last"))
    rows = get_user_model().objects.filter(is_active=True).order_by("username").annotate(links=Count("sso_identities"))
    return [MemberSignIn(u.username, u.is_superuser, u.pk in two_factor_on, u.links > 0, last.get(u.pk)) for u in rows]
