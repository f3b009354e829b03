"""Security headers on every response.

The Content-Security-Policy forbids inline scripts and styles, so templates use
only /static/ files.  Referrer-Policy comes from SecurityMiddleware
(settings.SECURE_REFERRER_POLICY); nosniff is set here too so it holds even if
that setting is turned off.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # A view may set a stricter policy of its own (the later HTML iframe will).
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
