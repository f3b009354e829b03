"""Connect an OAuth2 mailbox from the web UI: Authorization Code with PKCE.

Connect (POST, admins only) starts an authorization at the mailbox's provider
and sends the admin to its consent page; the provider sends them back to the
one callback URL, where the code is exchanged for tokens and the grant saved.
Connect answers a small page that moves on to the provider (a refresh and a
link), not a redirect: the CSP's form-action 'self' also governs where a form's
answer redirects, so browsers refuse a redirect to another origin.

What is pending between the two (the state, the PKCE verifier, which mailbox)
lives in the admin's session only: nothing is written to the mailbox until the
provider has answered with tokens, so a refusal, an error, a mismatched state
or an abandoned consent page leaves nothing half-saved behind.  The state is
single-use (popped on the first callback) and expires after PENDING_TTL.
"""

from __future__ import annotations

import logging
import time

from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from postdesk.models import Mailbox, OAuthGrant, SignInEvent
from postdesk.signin import audit, throttle
from postdesk.signin.client import client_address
from postdesk.web.access import admin_required
from postdesk.web.addresses import public_url

log = logging.getLogger("postdesk.signin")
SESSION_KEY = "postdesk_oauth_pending"
PENDING_TTL = 15 * 60  # seconds an admin has on the consent page
MAX_PENDING = 5  # started connections kept per session (older ones dropped)


def redirect_uri(request) -> str:
    """The callback URL to register at the provider (web.addresses: POSTDESK_PUBLIC_URL when set)."""
    return public_url(request, "postdesk_web:oauth_callback")


@admin_required
@require_POST
@never_cache
def connect(request, pk: int):
    from postdesk.oauth import OAuthError, flows, tokens

    mailbox = get_object_or_404(Mailbox, pk=pk)
    if mailbox.auth != "oauth":
        flash.error(request, f"Mailbox {mailbox.name} signs in with a password: set its sign-in to OAuth2 first.")
        return redirect("postdesk_web:mailbox_detail", pk=pk)
    try:
        pending = flows.start_authorization(tokens.client_for(mailbox), redirect_uri(request))
    except OAuthError as exc:
        flash.error(request, f"Cannot connect {mailbox.name}: {exc.message}")
        return redirect("postdesk_web:mailbox_detail", pk=pk)
    _remember(request, pending, mailbox)
    return render(request, "postdesk/mailboxes/oauth_continue.html", {
        "mailbox": mailbox, "url": pending.url,
        "provider_name": PROVIDER_NAMES.get(mailbox.oauth_provider, mailbox.oauth_provider)})


@admin_required
@require_GET
def callback(request):
    from postdesk.oauth import OAuthError, flows, tokens

    locked = throttle.refuse_if_locked(request)
    if locked is not None:
        return locked  # the provider is not asked
    state = request.GET.get("state", "")
    pending = _take(request, state)
    if pending is None:
        _count_failure(request, "state")
        flash.error(request, "The sign-in could not be finished: its state does not match a Connect started here "
                             "(an old or repeated page, or the session ended). Press Connect again.")
        return redirect("postdesk_web:mailbox_list")
    mailbox = Mailbox.objects.filter(pk=pending["mailbox"]).first()
    if mailbox is None:
        flash.error(request, "The mailbox was removed while its sign-in was under way.")
        return redirect("postdesk_web:mailbox_list")
    try:
        answer = flows.finish_authorization(tokens.client_for(mailbox), _pending_of(state, pending), request.GET.dict())
        tokens.connect(mailbox, answer, actor=request.user)
    except OAuthError as exc:
        if exc.kind in throttle.COUNTED_OAUTH_ERRORS:
            _count_failure(request, exc.kind)
        flash.error(request, f"{mailbox.name} was not connected: {exc.message}")
    else:
        flash.success(request, f"Connected {mailbox.name}. Test its connection below.")
    return redirect("postdesk_web:mailbox_detail", pk=mailbox.pk)


PROVIDER_NAMES = {"microsoft": "Microsoft", "google": "Google"}


def _count_failure(request, why: str) -> None:
    """A refused callback is a failed sign-in of the client address (signin.throttle), as at
    /login/sso/callback/.  Not of the admin's account: a forged link must not lock them out."""
    log.warning("mailbox oauth callback refused", extra={"outcome": why, "user": request.user.get_username(),
                                                         "address": client_address(request)})
    audit.record(SignInEvent.FAILED, request, user=request.user, method="mailbox oauth",
                 detail=f"mailbox OAuth callback refused: {why}")
    throttle.count_failure(request)


def panel(request, mailbox: Mailbox) -> dict | None:
    """What the mailbox page shows of its OAuth2 sign-in (oauth.tokens.describe: never a token),
    with the redirect URL to register; None for a password mailbox."""
    from postdesk.oauth import tokens

    if mailbox.auth != "oauth":
        return None
    shown = tokens.describe(mailbox)
    connected = shown["state"] != "not connected"
    return {**shown,
            "provider_name": PROVIDER_NAMES.get(mailbox.oauth_provider, mailbox.oauth_provider),
            "redirect_uri": redirect_uri(request),
            "connected": connected,
            "state_key": shown["state"].replace(" ", "-"),
            "state_text": dict(OAuthGrant.State.choices).get(shown["state"], "not connected: press Connect")}


def _remember(request, pending, mailbox: Mailbox) -> None:
    started = {state: p for state, p in request.session.get(SESSION_KEY, {}).items()
               if p.get("at", 0) > time.time() - PENDING_TTL}
    started[pending.state] = {"mailbox": mailbox.pk, "verifier": pending.code_verifier,
                              "redirect_uri": pending.redirect_uri, "at": time.time()}
    request.session[SESSION_KEY] = dict(sorted(started.items(), key=lambda kv: kv[1]["at"])[-MAX_PENDING:])


def _take(request, state: str) -> dict | None:
    """The pending connection of this state, removed from the session (single use)."""
    started = request.session.get(SESSION_KEY, {})
    pending = started.pop(state, None) if state else None
    request.session[SESSION_KEY] = started
    if pending is None or pending.get("at", 0) <= time.time() - PENDING_TTL:
        return None
    return pending


def _pending_of(state: str, saved: dict):
    from postdesk.oauth import flows

    return flows.PendingAuthorization(url="", state=state, code_verifier=saved["verifier"],
                                      redirect_uri=saved["redirect_uri"])
