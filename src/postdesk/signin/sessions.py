"""How long a sign-in lasts, and what ends it early.

- Lifetime: POSTDESK_SESSION_HOURS of inactivity (default 12; settings.py sets
  SESSION_COOKIE_AGE and saves the session on every request, so each page
  view moves the end forward).
- Browser exit: the session cookie lives only as long as the browser unless
  "keep me signed in" was ticked on the sign-in page (`remember`; applied by
  flow.complete).
- A changed password ends every other session of the member: Django keeps a
  hash of the password in each session and drops a session whose hash no
  longer matches (update_session_auth_hash keeps the one that changed it).
- Lost admin rights end every session of the member (`AdminRightsMiddleware`):
  each session remembers whether it was an admin's, and is signed out on its
  next request once the member no longer is one, however the right was taken
  (Django admin, a command, the database).

The register of open sessions (StaffSession rows: "your sessions" at /account/,
every member's at /staff/signins/):

- a row when a member signs in (`on_sign_in`, on Django's user_logged_in: the
  session key is the one login() has just made), with how (flow's method), from
  where (client.client_address) and with what browser (User-Agent);
- its last activity, written at most once a minute (`LastSeenMiddleware`: the
  session, saved on every request anyway, remembers when it was last written),
  and its key followed when Django changes it (a password changed in this session);
- gone on sign-out (`on_sign_out`: Django deletes the session itself) and when a
  session is ended from a page (`end`, `end_others`: the Django session is
  deleted, so that browser is anonymous at its next request);
- rows whose Django session is gone or expired (the inactivity limit, a closed
  browser's session running out), or would no longer sign its member in (a new
  password, lost admin rights, a deactivated account), are never shown and are
  deleted whenever the register is read (`open_sessions`).

Sign-in, sign-out and ended sessions are written to the sign-in log (postdesk.signin.audit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, logout
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.models import Session
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from postdesk.models import AuditEvent, StaffSession
from postdesk.signin import audit, browsers
from postdesk.signin.client import client_address

REMEMBER_FIELD = "remember"
METHOD_KEY = "postdesk_signin_method"  # how the session was signed in ("password+totp", "sso", ...), set by flow.complete
_ADMIN_KEY = "postdesk_admin"
_SEEN_KEY = "postdesk_seen"  # time.time() when this session's last_seen_at was last written
_REGISTERED_KEY = "postdesk_registered"  # the session key its register row is under
SEEN_EVERY_SECONDS = 60
LOST_RIGHTS = "admin rights taken away"
ENDED_HERE = "ended from a sessions page"


@receiver(user_logged_in, dispatch_uid="postdesk.signin.sessions.on_sign_in")
def on_sign_in(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    request.session[_ADMIN_KEY] = user.is_superuser
    method = getattr(request, "postdesk_signin_method", "")  # set by flow.complete
    _register(request, user, method)
    audit.record(audit.SIGNED_IN, request, user=user, method=method)


@receiver(user_logged_out, dispatch_uid="postdesk.signin.sessions.on_sign_out")
def on_sign_out(sender, request, user, **kwargs) -> None:
    """Before Django flushes (deletes) the session: its register row goes too."""
    if request is None or not hasattr(request, "session"):
        return
    if request.session.session_key:
        StaffSession.objects.filter(session_key=request.session.session_key).delete()
    if user is not None:
        reason = getattr(request, "postdesk_signout_reason", "")
        audit.record(audit.SIGNED_OUT, request, user=user, method=request.session.get(METHOD_KEY, ""), detail=reason)


def _register(request, user, method: str) -> None:
    key = request.session.session_key
    if not key:  # only a session engine without keys; Django's database sessions always have one
        return
    request.session[_SEEN_KEY] = time.time()
    request.session[_REGISTERED_KEY] = key
    StaffSession.objects.update_or_create(
        session_key=key,
        defaults={"user": user, "method": method[:20], "address": client_address(request)[:45],
                  "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300]},
    )


class AdminRightsMiddleware:
    """Signs out a session opened by an admin whose admin rights were taken away."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            was_admin = request.session.get(_ADMIN_KEY)
            if was_admin and not user.is_superuser:
                request.postdesk_signout_reason = LOST_RIGHTS
                logout(request)
            elif was_admin is None or user.is_superuser != was_admin:
                request.session[_ADMIN_KEY] = user.is_superuser
        return self.get_response(request)


class LastSeenMiddleware:
    """Keeps this session's register row right: under the session's current key, and
    with its "last active" moved forward at most once a minute (no database write of
    ours on every request)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # After the view: an open page's poll (web.live.mark_poll sets postdesk_poll) is
        # not the member being active, so it moves neither "last active" nor the session.
        if request.user.is_authenticated and not getattr(request, "postdesk_poll", False):
            follow_key(request)
            note_seen(request)
        return response


def follow_key(request) -> bool:
    """Move the row to the session's new key if Django changed it since sign-in (a
    password changed in this session keeps it signed in under a new key); True if moved.
    A session without a row (signed in before the register existed) joins here."""
    registered, key = request.session.get(_REGISTERED_KEY), request.session.session_key
    if registered == key:
        return False
    request.session[_REGISTERED_KEY] = key
    moved = StaffSession.objects.filter(session_key=registered, user=request.user).update(session_key=key)
    if not moved:
        _register(request, request.user, request.session.get(METHOD_KEY, ""))
    return True


def note_seen(request) -> bool:
    """Write this session's last activity if a minute has passed; True if written."""
    now = time.time()
    if now - request.session.get(_SEEN_KEY, 0) < SEEN_EVERY_SECONDS:
        return False
    request.session[_SEEN_KEY] = now
    written = StaffSession.objects.filter(session_key=request.session.session_key, user=request.user)
    if not written.update(last_seen_at=timezone.now()):
        # Its row was pruned while it still signs in (it cannot be told apart from
        # an ended one by its data alone, e.g. checked with an old SECRET_KEY): back in.
        _register(request, request.user, request.session.get(METHOD_KEY, ""))
    return True


# --- reading the register, and ending a session -----------------------------------------------


@dataclass(frozen=True)
class OpenSession:
    """One open session as the pages show it."""

    id: int
    username: str
    method: str
    address: str
    browser: str  # in words (postdesk.signin.browsers)
    started: datetime
    last_seen: datetime
    current: bool  # the browser looking at the page


def open_sessions(user=None, *, current_key: str | None = None) -> list[OpenSession]:
    """The open sessions of `user` (of everyone when None), most recently active first."""
    rows = StaffSession.objects.select_related("user")
    if user is not None:
        rows = rows.filter(user=user)
    rows = list(rows)
    ended = prune(rows)
    return [_shown(row, current_key) for row in rows if row.pk not in ended]


def _shown(row: StaffSession, current_key: str | None) -> OpenSession:
    return OpenSession(
        id=row.pk, username=row.user.get_username(), method=row.method, address=row.address,
        browser=browsers.describe(row.user_agent).words, started=row.started_at, last_seen=row.last_seen_at,
        current=bool(current_key) and row.session_key == current_key,
    )


def prune(rows: list[StaffSession]) -> set[int]:
    """Delete the register rows among `rows` whose session no longer signs anyone in;
    their ids.  Settings keep sessions in the database (Django's default engine)."""
    live = Session.objects.filter(session_key__in=[row.session_key for row in rows], expire_date__gt=timezone.now())
    data = {session.session_key: session.get_decoded() for session in live}
    ended = {row.pk for row in rows if not _signs_in(row, data.get(row.session_key))}
    if ended:
        StaffSession.objects.filter(pk__in=ended).delete()
    return ended


def _signs_in(row: StaffSession, data: dict | None) -> bool:
    """Would this session still sign its member in?  The same checks Django's
    get_user makes at the next request (and AdminRightsMiddleware): a session is
    over once deleted or expired, and also once the password changed (the hash it
    keeps no longer matches), the account was deactivated or admin rights lost."""
    if data is None or str(data.get(SESSION_KEY)) != str(row.user_id) or not row.user.is_active:
        return False
    if data.get(_ADMIN_KEY) and not row.user.is_superuser:
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), row.user.get_session_auth_hash())


@dataclass(frozen=True)
class Ended:
    username: str
    browser: str
    address: str


def end(request, session_id: int, *, owner=None, by_admin: bool = False) -> Ended | None:
    """End one open session: its browser is signed out at its next request.  `owner`
    limits it to that member's own sessions (None when nothing matched).  An admin
    ending a session from the admin page is also an installation change (AuditEvent)."""
    rows = StaffSession.objects.select_related("user").filter(pk=session_id)
    row = (rows.filter(user=owner) if owner is not None else rows).first()
    if row is None or prune([row]):
        return None
    actor = request.user  # before _end: ending one's own session signs the actor out
    ended = _end(request, row)
    if by_admin:
        AuditEvent.record(actor, "signin.session_ended", f"session of {ended.username}",
                          detail=f"{ended.browser}, {ended.address or 'no address'}")
    return ended


def end_others(request) -> list[Ended]:
    """"Sign out everywhere else": every open session of this member but this one."""
    others = list(StaffSession.objects.select_related("user").filter(user=request.user)
                  .exclude(session_key=request.session.session_key))
    over = prune(others)  # already ended: nothing to end, nothing to log
    return [_end(request, row) for row in others if row.pk not in over]


def _end(request, row: StaffSession) -> Ended:
    ended = Ended(row.user.get_username(), browsers.describe(row.user_agent).words, row.address)
    audit.record(audit.SESSION_ENDED, request, user=row.user, method=row.method,
                 detail=f"ended by {request.user.get_username()}: {ended.browser} from {ended.address or 'no address'}")
    if row.session_key == request.session.session_key:
        # This very browser: a plain sign-out (deleting the session under the
        # request would make Django refuse to save it at the end of the request).
        request.postdesk_signout_reason = ENDED_HERE
        logout(request)
        return ended
    # The engine's own delete: the server-side session is what signs a browser in.
    import_module(settings.SESSION_ENGINE).SessionStore(session_key=row.session_key).delete()
    row.delete()
    return ended
