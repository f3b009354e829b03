"""The steps of one sign-in, whatever the way in.

A first factor (the password form, or the single sign-on callback) calls
`first_factor_passed()`.  If the member needs a second factor
(two_factor.second_factor_needed), nothing is signed in yet: a *pending*
sign-in is kept in the (still anonymous) session, and the answer is the code
step's address.  Only `complete()` signs anyone in, so no way in can skip a
step: /admin/login/ is sent to /login/ for the same reason (urls.py).

The pending sign-in expires after PENDING_SECONDS, and is bound to the session
it was started in (Django rotates the session key at login, so a pending
sign-in cannot be carried into another browser).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum

from django.contrib.auth import get_user_model, login

from postdesk.models import SignInEvent
from postdesk.signin import audit, two_factor
from postdesk.signin.client import client_address
from postdesk.signin.sessions import METHOD_KEY

log = logging.getLogger("postdesk.signin")

PENDING_KEY = "postdesk_signin_pending"
PENDING_SECONDS = 300
# Every way in has already checked the person (password, code, provider): the
# model backend only loads the user for later requests.
BACKEND = "django.contrib.auth.backends.ModelBackend"


class Step(Enum):
    SIGNED_IN = "signed in"
    CODE_NEEDED = "code needed"  # go to the two-factor code page (web: postdesk_web:signin_code)


@dataclass(frozen=True)
class Pending:
    """A sign-in whose first factor passed, waiting for its second."""

    user_id: int
    method: str  # the first factor: "password" or "sso"
    remember: bool
    next_url: str
    started: float
    wrong_codes: int = 0  # codes refused in this sign-in (MAX_WRONG_CODES ends it)

    @property
    def expired(self) -> bool:
        return time.time() - self.started > PENDING_SECONDS

    def user(self):
        return get_user_model().objects.filter(pk=self.user_id, is_active=True).first()


def first_factor_passed(request, user, *, method: str, remember: bool, next_url: str = "") -> Step:
    """The member proved who they are once; sign in, or ask for the second factor."""
    if two_factor.second_factor_needed(user, method):
        request.session[PENDING_KEY] = {
            "user_id": user.pk, "method": method, "remember": remember, "next_url": next_url, "started": time.time(),
        }
        return Step.CODE_NEEDED
    complete(request, user, method=method, remember=remember)
    return Step.SIGNED_IN


def pending(request) -> Pending | None:
    """The sign-in waiting for its second factor in this session, if any and not expired."""
    data = request.session.get(PENDING_KEY)
    if not data:
        return None
    found = Pending(**data)
    if found.expired:
        request.session.pop(PENDING_KEY, None)
        return None
    return found


def note_wrong_code(request) -> int:
    """Count a refused code against the pending sign-in; how many it has had."""
    data = request.session.get(PENDING_KEY)
    if not data:
        return 0
    data["wrong_codes"] = data.get("wrong_codes", 0) + 1
    request.session[PENDING_KEY] = data  # reassigned so the session is saved
    return data["wrong_codes"]


def abandon(request) -> None:
    """Drop the pending sign-in: the member starts again from the first factor."""
    request.session.pop(PENDING_KEY, None)


def complete(request, user, *, method: str, remember: bool) -> None:
    """Sign the member in: the one place that calls Django's login()."""
    request.session.pop(PENDING_KEY, None)
    # Read by the user_logged_in receivers (sessions register, audit) during login().
    request.postdesk_signin_method = method
    login(request, user, backend=BACKEND)
    request.session[METHOD_KEY] = method
    if not remember:
        request.session.set_expiry(0)  # ends when the browser closes


# --- the code step of a sign-in ------------------------------------------------------------


MAX_WRONG_CODES = 5  # in one pending sign-in; then back to the password


class StepOutcome(Enum):
    SIGNED_IN = "signed in"
    WRONG = "wrong"  # try again
    THROTTLED = "throttled"  # wait, then try again
    DROPPED = "dropped"  # too many wrong codes (or the member is gone): back to the password


@dataclass(frozen=True)
class CodeStep:
    outcome: StepOutcome
    check: two_factor.CodeCheck | None = None
    method: str = ""  # the session's sign-in method when SIGNED_IN
    tries_left: int = 0  # when WRONG


def give_code(request, pending: Pending, code: str) -> CodeStep:
    """The second step of a pending sign-in: a good code completes it (complete);
    a wrong one is audited, logged and counted, and the MAX_WRONG_CODES-th drops it."""
    user = pending.user()
    if user is None:
        abandon(request)
        return CodeStep(StepOutcome.DROPPED)
    check = two_factor.check_code(user, code)
    if check.verdict is two_factor.Verdict.THROTTLED:
        return CodeStep(StepOutcome.THROTTLED, check)
    if check.accepted:
        method = f"{pending.method}+{check.kind.value}"
        complete(request, user, method=method, remember=pending.remember)
        return CodeStep(StepOutcome.SIGNED_IN, check, method)
    wrong = note_wrong_code(request)
    _record_refusal(request, user, pending, check, wrong)
    if wrong >= MAX_WRONG_CODES:
        abandon(request)
        return CodeStep(StepOutcome.DROPPED, check)
    return CodeStep(StepOutcome.WRONG, check, tries_left=MAX_WRONG_CODES - wrong)


def _record_refusal(request, user, pending: Pending, check: two_factor.CodeCheck, wrong: int) -> None:
    kind = check.kind.value if check.kind else "code"
    detail = f"wrong {kind} code ({wrong} of {MAX_WRONG_CODES})"
    # Not signed in yet (request.user is anonymous): the member is named here.
    audit.record(SignInEvent.CODE_FAILED, request, user=user, username=user.get_username(), method=pending.method, detail=detail)
    log.warning("sign-in code refused", extra={"user": user.get_username(), "address": client_address(request),
                                                "kind": kind, "failures": wrong})
