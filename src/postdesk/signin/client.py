"""Who is asking: the client's address, one rule for the throttle, the audit and the
register of sessions."""

from __future__ import annotations

import os

def client_address(request) -> str:
    """The client's address, by the web server's rule (postdesk.web.server): a
    request from POSTDESK_TRUSTED_PROXY is for the last address that proxy put in
    X-Forwarded-For; from anyone else the header is ignored (it could be forged).
    Behind waitress with the proxy set, REMOTE_ADDR is already the client."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxy = os.environ.get("POSTDESK_TRUSTED_PROXY", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxy and remote == proxy and forwarded:
        return forwarded.split(",")[-1].strip() or remote
    return remote
