"""Where people (and providers) reach one of our pages from outside: the redirect URLs
registered at OAuth2 / OpenID Connect providers are built here, and only here."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def public_url(request, viewname: str) -> str:
    """The page's full URL: under POSTDESK_PUBLIC_URL when set (behind a reverse proxy the
    request's own address is the proxy's), else under this request's address."""
    path = reverse(viewname)
    public = getattr(settings, "POSTDESK_PUBLIC_URL", "")
    return public.rstrip("/") + path if public else request.build_absolute_uri(path)
