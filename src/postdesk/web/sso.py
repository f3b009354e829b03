"""The single sign-on pages: the button's target (/login/sso/) and the provider's way back
(/login/sso/callback/).  The rules are in postdesk.signin.sso; these views show its answers.

/login/sso/ is a POST from the sign-in form (its CSRF token, "keep me signed in" and `next`
come along) and answers a small page that moves on to the provider, not a redirect: the
Content-Security-Policy's form-action 'self' also governs where a form's answer redirects,
so browsers refuse a redirect to another origin (as web.oauth_connect does).

Both are throttled (signin.throttle): a client address locked by failed sign-ins gets the
lockout page and the provider is not asked.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from postdesk.signin import flow, sso, throttle
from postdesk.signin.sessions import REMEMBER_FIELD
from postdesk.web.addresses import public_url

log = logging.getLogger("postdesk.signin")
REFUSED_STATUS = 403
UNAVAILABLE_STATUS = 502


def button_label() -> str:
    """The SSO button's text on the sign-in page; "" when single sign-on is off (no button)."""
    cfg = sso.config()
    return cfg.label if cfg.enabled else ""


@require_POST
@never_cache
def start(request):
    if not sso.config().enabled:
        raise Http404("single sign-on is not configured")
    locked = throttle.refuse_if_locked(request)
    if locked is not None:
        return locked
    from postdesk.oauth import OAuthError

    try:
        url = sso.start(request, redirect_uri=public_url(request, "postdesk_web:sso_callback"),
                        remember=request.POST.get(REMEMBER_FIELD) == "on", next_url=_next_url(request))
    except OAuthError as exc:
        # Our settings or the provider, not the person: logged, not counted against them.
        log.error("single sign-on unavailable", extra={"error": exc.message, "kind": exc.kind})
        return sign_in_page(request, f"Single sign-on is not available right now: {exc.message}.", UNAVAILABLE_STATUS)
    return render(request, "postdesk/sso_continue.html", {"url": url, "label": button_label()})


@require_GET
@never_cache
def callback(request):
    if not sso.config().enabled:
        raise Http404("single sign-on is not configured")
    locked = throttle.refuse_if_locked(request)
    if locked is not None:
        return locked
    outcome = sso.finish(request, request.GET.dict())
    if outcome.outcome is sso.Outcome.LOCKED:
        return throttle.lockout_response(request, credentials={"username": outcome.email})
    if outcome.refused:
        return sign_in_page(request, outcome.message, REFUSED_STATUS)
    if sso.sign_in(request, outcome) is flow.Step.CODE_NEEDED:
        return redirect("postdesk_web:signin_code")
    return redirect(outcome.pending.next_url)


def sign_in_page(request, error: str, status: int):
    """The sign-in page with the single sign-on's refusal at its top."""
    context = {"form": AuthenticationForm(request), "sso_label": button_label(), "sso_error": error}
    return render(request, "postdesk/login.html", context, status=status)


def _next_url(request) -> str:
    """Where to go once signed in: the form's `next` if it stays on this site (as LoginView decides)."""
    wanted = request.POST.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return wanted
    return resolve_url(settings.LOGIN_REDIRECT_URL)
