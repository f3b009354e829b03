"""The two-factor pages: the code step of a sign-in (/login/code/), a member's own
two factors (/account/two-factor/), and an admin's reset (/staff/NAME/reset-2fa/).

The rules are in postdesk.signin.two_factor; these views show its answers.
Recovery codes are shown once, in the answer to the POST that made them (never
on a page that can be reloaded with GET, and no page here is cached:
web.middleware sends no-store).
"""

from __future__ import annotations

import segno
from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from postdesk.signin import flow, two_factor
from postdesk.signin.flow import StepOutcome
from postdesk.signin.two_factor import CodeCheck, TurnOff, Verdict
from postdesk.web.access import admin_required
from postdesk.web.views import _nav

CURRENT = "account:two_factor"
THROTTLED_STATUS = 429


# --- the code step of a sign-in ------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signin_code(request):
    """After a right password, for a member with two factors on: a code from the app,
    or a recovery code.  Without a pending sign-in there is nothing to complete."""
    pending = flow.pending(request)
    if pending is None:
        return redirect("postdesk_web:login")
    if request.method == "GET":
        return _code_page(request)
    step = flow.give_code(request, pending, request.POST.get("code", ""))
    if step.outcome is StepOutcome.SIGNED_IN:
        _say_recovery_codes_left(request, step.check)
        return redirect(_safe_next(request, pending.next_url))
    if step.outcome is StepOutcome.DROPPED:
        flash.error(request, "Too many wrong codes: sign in again.")
        return redirect("postdesk_web:login")
    if step.outcome is StepOutcome.THROTTLED:
        return _code_page(request, _throttled(step.check), status=THROTTLED_STATUS)
    left = step.tries_left
    return _code_page(request, f"That code is not right, or was used already. {left} tr{'y' if left == 1 else 'ies'} left.")


def _code_page(request, error: str = "", status: int = 200):
    return render(request, "postdesk/signin_code.html", {"error": error, "title": "Sign-in code"}, status=status)


def _say_recovery_codes_left(request, check: CodeCheck) -> None:
    if check.recovery_left is None:
        return
    left = check.recovery_left
    flash.warning(request, f"You signed in with a recovery code: {left} recovery code{'s' if left != 1 else ''} left. "
                           "Make new ones on your two-factor page.")


def _safe_next(request, url: str) -> str:
    """The page asked for before signing in, if it is one of ours; else the home page."""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return settings.LOGIN_REDIRECT_URL


def _throttled(check: CodeCheck) -> str:
    seconds = check.wait_seconds()
    return f"Too many wrong codes: wait {seconds} second{'s' if seconds != 1 else ''}, then try again."


# --- the member's own two factors ----------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def account_two_factor(request):
    """Status; turn on (QR code, confirm with a code, recovery codes shown once);
    new recovery codes; turn off."""
    if request.method == "GET":
        return _account_page(request)
    action = ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        return _account_page(request, error="Unknown action.", status=400)
    return action(request)


def _start(request):
    if two_factor.start(request.user) is None:
        flash.error(request, "Two-factor sign-in is on already: turn it off first to use another app.")
    return redirect("postdesk_web:two_factor")


def _cancel(request):
    two_factor.cancel(request.user)
    return redirect("postdesk_web:two_factor")


def _confirm(request):
    done = two_factor.confirm(request.user, request.POST.get("code", ""))
    if not done.check.accepted:
        return _account_page(request, error=_refusal(done.check), status=_status_of(done.check))
    return _account_page(request, recovery_codes=done.recovery_codes, turned_on=True)


def _new_codes(request):
    done = two_factor.new_recovery_codes(request.user, request.POST.get("code", ""))
    if not done.check.accepted:
        return _account_page(request, error=_refusal(done.check), status=_status_of(done.check))
    return _account_page(request, recovery_codes=done.recovery_codes)


def _turn_off(request):
    result = two_factor.turn_off(request.user, code=request.POST.get("code", ""), password=request.POST.get("password", ""))
    if result is TurnOff.DONE:
        flash.success(request, "Two-factor sign-in is off.")
        return redirect("postdesk_web:two_factor")
    return _account_page(request, error=TURN_OFF_REFUSALS[result], status=THROTTLED_STATUS if result is TurnOff.THROTTLED else 200)


ACTIONS = {"start": _start, "cancel": _cancel, "confirm": _confirm, "recovery_codes": _new_codes, "off": _turn_off}
TURN_OFF_REFUSALS = {
    TurnOff.REQUIRED: "Your administrator requires two-factor sign-in: it cannot be turned off.",
    TurnOff.WRONG: "That code or password is not right.",
    TurnOff.THROTTLED: "Too many wrong attempts: wait a few seconds, then try again.",
    TurnOff.NOT_ON: "Two-factor sign-in is off already.",
}


def _refusal(check: CodeCheck) -> str:
    if check.verdict is Verdict.THROTTLED:
        return _throttled(check)
    return "That code is not right, or was used already: type the code your app shows now."


def _status_of(check: CodeCheck) -> int:
    return THROTTLED_STATUS if check.verdict is Verdict.THROTTLED else 200


def _account_page(request, *, error: str = "", recovery_codes=(), turned_on: bool = False, status: int = 200):
    user = request.user
    enrolment = two_factor.enrolment(user)
    context = {
        "current": CURRENT,
        "title": "Two-factor sign-in",
        "status": two_factor.status(user),
        "enrolment": enrolment,
        "qr_svg": _qr_svg(enrolment.uri) if enrolment else "",
        "recovery_codes": recovery_codes,
        "turned_on": turned_on,
        "error": error,
        **_nav(request),
    }
    return render(request, "postdesk/two_factor.html", context, status=status)


def _qr_svg(uri: str) -> str:
    """The QR code as inline SVG: no script, no style attribute, so the page's
    Content-Security-Policy stays as it is.  segno draws the data as path
    geometry only (no text from the URI reaches the markup), so it is safe to
    insert as is.  A white background: apps on dark pages still read it."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, dark="#000", light="#fff", svgclass="qr", lineclass=None)
    return mark_safe(svg)  # noqa: S308 (geometry only, see above)


# --- admins: reset a member's two factors --------------------------------------------------


@require_POST
@admin_required
def staff_reset_two_factor(request, name: str):
    """For a member who lost the phone (the same as `postdesk staff reset-2fa NAME`)."""
    member = get_object_or_404(get_user_model(), username=name)
    if two_factor.reset(member, actor=request.user):
        flash.success(request, f"Two-factor sign-in of {name} reset: they can sign in with the password and enrol again.")
    else:
        flash.info(request, f"{name} had no two-factor sign-in to reset.")
    return redirect(_safe_next(request, request.POST.get("next", "")))
