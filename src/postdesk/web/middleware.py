"""Security headers on every response, and secure cookies over HTTPS.

The Content-Security-Policy forbids inline scripts and styles, so templates use
only /static/ files.  Referrer-Policy comes from SecurityMiddleware
(settings.SECURE_REFERRER_POLICY); nosniff is set here too so it holds even if
that setting is turned off.
"""

from __future__ import annotations

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
        if request.is_secure():
            _mark_cookies_secure(response)
        return response


def _mark_cookies_secure(response) -> None:
    """Session and CSRF cookies are sent over HTTPS only once the site is served
    over HTTPS (directly or through a trusted proxy, see POSTDESK_TRUSTED_PROXY).
    Decided per request rather than by a setting, so plain http://127.0.0.1 on
    the embedded default still works and a TLS deployment needs no extra switch."""
    for cookie in response.cookies.values():
        cookie["secure"] = True
