"""Security headers on every response, no caching of anything but static files,
and secure cookies over HTTPS.

The Content-Security-Policy forbids inline scripts and styles, so templates use
only /static/ files.  Referrer-Policy comes from SecurityMiddleware
(settings.SECURE_REFERRER_POLICY); nosniff is set here too so it holds even if
that setting is turned off.
"""

from __future__ import annotations

from django.conf import settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # A view may set a stricter policy of its own (the message HTML frame does).
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        if not _is_static(request):
            _forbid_storing(response)
        if request.is_secure():
            _mark_cookies_secure(response)
        return response


def _is_static(request) -> bool:
    return request.path.startswith("/" + settings.STATIC_URL.lstrip("/"))


def _forbid_storing(response) -> None:
    """Every page but the static files shows mail or is about a signed-in member
    (queues, requests, message frames, attachments, raw downloads, quarantine):
    no browser or proxy cache may keep a copy, where the next user of a shared
    computer, or the back button after signing out, would find it."""
    if "no-store" not in response.headers.get("Cache-Control", ""):
        response.headers["Cache-Control"] = "private, no-store"


def _mark_cookies_secure(response) -> None:
    """Session and CSRF cookies are sent over HTTPS only once the site is served
    over HTTPS (directly or through a trusted proxy, see POSTDESK_TRUSTED_PROXY).
    Decided per request rather than by a setting, so plain http://127.0.0.1 on
    the embedded default still works and a TLS deployment needs no extra switch."""
    for cookie in response.cookies.values():
        cookie["secure"] = True
