"""Sign-in throttling: failed sign-ins are limited per account and per client address.

django-axes records every failed sign-in (its AccessAttempt rows, one per
username, address and user agent) and refuses a sign-in before the password is
checked once the limit is reached: its backend goes first in
AUTHENTICATION_BACKENDS, so /login/ and /admin/login/ are both covered.  What
is ours, all in this module:

- the growing wait.  After AXES_FAILURE_LIMIT failures in a row (POSTDESK_SIGNIN_FAILURES),
  each further failure locks the account (and the address) for twice as long as the
  one before: 1, 2, 4, ... minutes (POSTDESK_SIGNIN_FIRST_WAIT), capped at an hour
  (POSTDESK_SIGNIN_MAX_WAIT).  axes' own cool-off is a single
  duration that both ends the lockout and forgets the failures, so a lock that
  ends after a minute would also reset the count: axes keeps the failures for
  AXES_COOLOFF_TIME (a day) and we decide "locked until when" here
  (ThrottleHandler.is_locked).  An attacker thus gets about 10 guesses in the
  first hour and one an hour after that.
- the client address: postdesk.signin.client, the web server's rule,
- the page that says how long to wait (lockout_response), the same for an
  account that does not exist,
- the log lines: "sign-in failed" and "sign-in locked", with user and address, and
  the same as rows of the sign-in log (postdesk.signin.audit),
- the list of current lockouts and unlocking (`postdesk staff unlock`, /staff/lockouts/).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max, Sum
from django.shortcuts import render
from django.utils import timezone

from postdesk.signin import audit

log = logging.getLogger("postdesk.signin")

# The limits are settings, from the environment (settings.py checks them):
#   AXES_FAILURE_LIMIT          failures in a row before the first wait (POSTDESK_SIGNIN_FAILURES)
#   POSTDESK_SIGNIN_FIRST_WAIT  the first wait (POSTDESK_SIGNIN_FIRST_WAIT, minutes)
#   POSTDESK_SIGNIN_MAX_WAIT    the longest (POSTDESK_SIGNIN_MAX_WAIT, minutes)
#   AXES_COOLOFF_TIME           how long failures are remembered: it must outlast the
#                               longest wait, or a count would be forgotten while its wait runs.
LOCKED_STATUS = 429


def max_wait() -> timedelta:
    """The longest wait after failed sign-ins (POSTDESK_SIGNIN_MAX_WAIT)."""
    return settings.POSTDESK_SIGNIN_MAX_WAIT


def wait_after(failures: int) -> timedelta:
    """How long sign-in is refused after the last of `failures` failures in a row."""
    limit = settings.AXES_FAILURE_LIMIT
    if failures < limit:
        return timedelta(0)
    first, longest = settings.POSTDESK_SIGNIN_FIRST_WAIT, max_wait()
    # Past this many doublings the first wait is beyond the cap (and 2**n stays small).
    doublings = min(failures - limit, math.ceil(math.log2(longest / first)) + 1)
    return min(first * 2**doublings, longest)




@dataclass(frozen=True)
class Standing:
    """Failed sign-ins in a row for one account or one address, and until when it is refused."""

    failures: int
    last_failure: datetime | None

    @property
    def locked_until(self) -> datetime | None:
        if self.last_failure is None or self.failures < settings.AXES_FAILURE_LIMIT:
            return None
        return self.last_failure + wait_after(self.failures)

    def remaining(self, now: datetime) -> timedelta:
        until = self.locked_until
        return max(until - now, timedelta(0)) if until else timedelta(0)


def _standing(attempts) -> Standing:
    totals = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
    return Standing(failures=totals["failures"] or 0, last_failure=totals["last"])


class ThrottleHandler(AxesDatabaseHandler):
    """axes' database handler with the growing wait, and our log lines."""

    def is_locked(self, request, credentials=None) -> bool:
        wait = self.remaining_wait(request, credentials)
        request.postdesk_wait = wait
        return wait > timedelta(0)

    def remaining_wait(self, request, credentials=None) -> timedelta:
        """The longest wait of the account's and the address's (each an axes lockout parameter)."""
        now = timezone.now()
        standings = [_standing(attempts) for attempts in self.get_user_attempts(request, credentials)]
        return max((s.remaining(now) for s in standings), default=timedelta(0))

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        refused = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        if request is None:
            return
        fields = {"user": get_client_username(request, credentials) or "", "address": request.axes_ip_address}
        if refused:
            # Refused before the password was looked at: not counted, so
            # hammering a locked account does not lengthen its wait.
            minutes = _minutes(request.postdesk_wait)
            log.warning("sign-in locked", extra={**fields, "wait": minutes})
            audit.failure(audit.LOCKED, request, fields["user"], detail=f"refused, {_in_words(minutes)} left")
            return
        failures = getattr(request, "axes_failures_since_start", None)
        log.warning("sign-in failed", extra={**fields, "failures": failures})
        if not getattr(request, "postdesk_audited", False):
            audit.failure(audit.FAILED, request, fields["user"], detail=f"{failures} in a row" if failures else "")
        if getattr(request, "axes_locked_out", False):
            wait = self.remaining_wait(request, credentials)
            request.postdesk_wait = wait
            log.warning("sign-in locked", extra={**fields, "wait": _minutes(wait)})
            audit.failure(audit.LOCKED, request, fields["user"], detail=f"locked for {_in_words(_minutes(wait))}")


def _minutes(wait: timedelta | None) -> int:
    """Whole minutes, rounded up: "try again in 1 minute" must not be too early."""
    return max(1, math.ceil((wait or timedelta(0)).total_seconds() / 60))


def _in_words(minutes: int) -> str:
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_message(wait: timedelta | None) -> str:
    return f"Too many failed sign-ins: try again in {_in_words(_minutes(wait))}."


def lockout_response(request, original_response=None, credentials=None):
    """The sign-in page with the wait in words (AXES_LOCKOUT_CALLABLE).  The same
    words whether the account exists or not: the lock is on the name typed."""
    # Unbound: a bound form would authenticate again when the page asks for its errors.
    form = AuthenticationForm(request, initial={"username": get_client_username(request, credentials) or ""})
    context = {"form": form, "locked_message": lockout_message(getattr(request, "postdesk_wait", None))}
    return render(request, "postdesk/login.html", context, status=LOCKED_STATUS)


# --- admins: who is locked out, and unlocking ----------------------------------------------


@dataclass(frozen=True)
class Lockout:
    kind: str  # "account" or "address"
    name: str
    failures: int
    until: datetime


def current_lockouts(now: datetime | None = None) -> list[Lockout]:
    """Accounts and addresses that are refused sign-in right now, the longest wait first."""
    now = now or timezone.now()
    found = []
    for kind, field in (("account", "username"), ("address", "ip_address")):
        rows = AccessAttempt.objects.exclude(**{f"{field}__isnull": True}).values(field)
        for row in rows.annotate(failures=Sum("failures_since_start"), last=Max("attempt_time")):
            standing = Standing(failures=row["failures"], last_failure=row["last"])
            if standing.remaining(now) > timedelta(0):
                found.append(Lockout(kind, row[field], standing.failures, standing.locked_until))
    return sorted(found, key=lambda lock: lock.until, reverse=True)


@dataclass(frozen=True)
class Unlocked:
    kind: str
    name: str
    cleared: int  # failure records removed (0: nothing was held against it)


def unlock(kind: str, name: str, actor=None) -> Unlocked:
    """Forget the failed sign-ins of an account (kind "account") or an address, audited."""
    from postdesk.models import AuditEvent

    field = {"account": "username", "address": "ip_address"}[kind]
    _, deleted = AccessAttempt.objects.filter(**{field: name}).delete()
    cleared = deleted.get(AccessAttempt._meta.label, 0)
    AuditEvent.record(actor, "signin.unlocked", f"{kind} {name}", detail=f"{cleared} failure records cleared")
    log.info("sign-in unlocked", extra={"user" if kind == "account" else "address": name, "count": cleared})
    return Unlocked(kind, name, cleared)


# --- ways in that are no password: the single sign-on and OAuth callbacks -------------------
#
# A callback with a bad or missing state, an error from the provider, or a refused single
# sign-on counts as a failed sign-in, for the client address and for the email when known:
# sent as Django's user_login_failed, so axes' handler (ThrottleHandler) counts and logs it
# like a wrong password, and the waits, lockout page and unlocking are the password's.


# The OAuthError kinds (postdesk.oauth.errors) of a callback that count: what the redirect itself
# carried (a refusal, a mismatched state, a code the provider would not take).  An unreachable
# provider or our own settings are no one's failed sign-in.
COUNTED_OAUTH_ERRORS = ("state", "denied", "expired")


def count_failure(request, username: str = "") -> bool:
    """One failed sign-in by this client (and by `username`, an email, when known).  The
    caller logs why and writes its own audit row; the handler logs "sign-in failed" (and
    "sign-in locked" at the limit), and AxesMiddleware answers the lockout page once the
    limit is reached.  False when not counted (see top_level_navigation)."""
    from django.contrib.auth.signals import user_login_failed

    if not top_level_navigation(request):
        return False
    request.postdesk_audited = True  # the caller's row says more than a bare "failed"
    # None, not "": an unknown account must not pool every unknown account's failures.
    user_login_failed.send(sender=__name__, credentials={"username": username or None}, request=request)
    return True


def top_level_navigation(request) -> bool:
    """Whether a callback was opened as a page, by a person or a script, rather than loaded by
    another site as an image, a script or a frame.  A callback cannot carry a CSRF token, so
    without this any web page could lock a whole office's address out with five hidden
    <img src=".../callback/?state=x">.  Browsers say how a request was made (Fetch Metadata);
    a client that sends no such header (curl, a script guessing) is counted."""
    mode = request.META.get("HTTP_SEC_FETCH_MODE", "navigate")
    dest = request.META.get("HTTP_SEC_FETCH_DEST", "document")
    return mode == "navigate" and dest == "document"


def refused_wait(request, username: str = "") -> timedelta:
    """How long this client address (and `username`, when known) is refused sign-in now;
    the same standings as ThrottleHandler.remaining_wait, without asking for a password."""
    from axes.attempts import get_cool_off_threshold
    from axes.handlers.proxy import AxesProxyHandler

    AxesProxyHandler.update_request(request)
    recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))
    standings = [_standing(recent.filter(ip_address=request.axes_ip_address))]
    if username:
        standings.append(_standing(recent.filter(username=username)))
    now = timezone.now()
    request.postdesk_wait = max(s.remaining(now) for s in standings)
    return request.postdesk_wait


def refuse_if_locked(request, username: str = ""):
    """The lockout page when this client (or account) may not sign in now, else None.
    Asked before a callback talks to its provider: a locked client costs it nothing."""
    wait = refused_wait(request, username)
    if wait <= timedelta(0):
        return None
    log.warning("sign-in locked", extra={"user": username, "address": request.axes_ip_address, "wait": _minutes(wait)})
    return lockout_response(request, credentials={"username": username})
