"""Where a mailbox's provider lives: its endpoints and default mail scopes (a typed `Endpoints`).

    "microsoft"    Entra ID: endpoints under login.microsoftonline.com/{tenant}; device grant offered
    "google"       Google: fixed endpoints; no device grant for mail scopes (the CLI uses the loopback
                   redirect, RFC 8252), and the consent asks for offline access every time so a refresh
                   token comes back
    an issuer URL  discovery (RFC 8414, then OpenID Connect); the document must name the same issuer.
                   https only, except on a loopback host, where http is allowed (tests, local set-ups)

Staff single sign-on (postdesk.signin.sso) asks `discover(issuer, openid=True)`: the OpenID
Connect document only (<issuer>/.well-known/openid-configuration), which names `jwks_uri`.

Discovery is cached per process for DISCOVERY_TTL seconds: a refresh every minute on
many mailboxes must not fetch the document every time.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import requests

from postdesk.oauth import errors

TIMEOUT = (10, 30)  # connect, read: seconds
DISCOVERY_TTL = 300

MICROSOFT_SCOPE = ("https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All "
                   "https://outlook.office.com/SMTP.Send offline_access")
GOOGLE_SCOPE = "https://mail.google.com/"


@dataclass(frozen=True)
class Endpoints:
    provider: str  # "microsoft", "google" or the issuer URL
    authorization_endpoint: str
    token_endpoint: str
    default_scope: str
    device_authorization_endpoint: str = ""  # "": the device grant is not offered
    revocation_endpoint: str = ""
    jwks_uri: str = ""  # the keys that sign id_tokens (OpenID Connect)
    # Added to every authorization request (Google: access_type=offline, prompt=consent).
    authorize_params: tuple[tuple[str, str], ...] = field(default=())
    # Microsoft's v2 endpoint wants the scope again on a refresh; others take the grant's.
    refresh_sends_scope: bool = False

    @property
    def offers_device_grant(self) -> bool:
        return bool(self.device_authorization_endpoint)


def resolve(provider: str, tenant: str = "") -> Endpoints:
    """The endpoints of a mailbox's provider (Mailbox.oauth_provider, oauth_tenant)."""
    name = (provider or "").strip()
    if name == "microsoft":
        return microsoft(tenant)
    if name == "google":
        return google()
    if not name:
        raise errors.config("no OAuth2 provider is set: microsoft, google or an issuer URL")
    return discover(name)


def microsoft(tenant: str = "") -> Endpoints:
    # Blank means "organizations": work and school accounts, the ones with shared mailboxes.
    tenant = (tenant or "").strip() or "organizations"
    if not all(c.isalnum() or c in "-." for c in tenant):
        raise errors.config(f"not a Microsoft tenant: {tenant!r} (common, organizations or a tenant id)")
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return Endpoints(provider="microsoft", authorization_endpoint=f"{base}/authorize", token_endpoint=f"{base}/token",
                     device_authorization_endpoint=f"{base}/devicecode", default_scope=MICROSOFT_SCOPE,
                     refresh_sends_scope=True)


def google() -> Endpoints:
    return Endpoints(provider="google", authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
                     token_endpoint="https://oauth2.googleapis.com/token",
                     revocation_endpoint="https://oauth2.googleapis.com/revoke", default_scope=GOOGLE_SCOPE,
                     authorize_params=(("access_type", "offline"), ("prompt", "consent")))


# --- discovery -----------------------------------------------------------------------------

_cache: dict[str, tuple[float, Endpoints]] = {}
_cache_lock = threading.Lock()


def discover(issuer: str, openid: bool = False) -> Endpoints:
    """The issuer's endpoints; `openid`: from its OpenID Connect document only."""
    issuer = issuer.strip()
    check_url(issuer, "the issuer")
    key = f"{issuer} openid" if openid else issuer
    with _cache_lock:
        cached = _cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    urls = discovery_urls(issuer)[1:] if openid else discovery_urls(issuer)
    endpoints = _endpoints_from(issuer, _fetch_document(issuer, urls))
    with _cache_lock:
        _cache[key] = (time.monotonic() + DISCOVERY_TTL, endpoints)
    return endpoints


def forget() -> None:
    """Drop every cached discovery document (tests; a changed provider)."""
    with _cache_lock:
        _cache.clear()


def discovery_urls(issuer: str) -> list[str]:
    """RFC 8414 puts the well-known segment before the issuer's path; OpenID Connect appends it."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return [urlunsplit(parts._replace(path="/.well-known/oauth-authorization-server" + path, query="", fragment="")),
            urlunsplit(parts._replace(path=path + "/.well-known/openid-configuration", query="", fragment=""))]


def _fetch_document(issuer: str, urls: list[str]) -> dict:
    missing = []
    for url in urls:
        try:
            response = requests.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise errors.provider(f"discovery at {url} failed: {type(exc).__name__}") from None
        if response.status_code in (404, 410):
            missing.append(url)
            continue
        if response.status_code >= 500 or response.status_code == 429:
            raise errors.provider(f"discovery at {url} answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise errors.config(f"discovery at {url} answered HTTP {response.status_code}")
        return _json_object(response, url)
    raise errors.config(f"no discovery document for issuer {issuer} (tried {', '.join(missing)})")


def _json_object(response: requests.Response, url: str) -> dict:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        # A captive portal or a proxy's error page: usually passes.
        raise errors.provider(f"discovery at {url} did not answer a JSON object")
    return document


def _endpoints_from(issuer: str, document: dict) -> Endpoints:
    # RFC 8414 section 3.3: the issuer in the document must be the one we asked, or an
    # attacker's document could name its own endpoints.
    if document.get("issuer") != issuer:
        raise errors.config(f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}")
    for required in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(document.get(required), str) or not document[required]:
            raise errors.config(f"the discovery document of {issuer} has no {required}")
    found = {key: document.get(key) or "" for key in
             ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint", "revocation_endpoint",
              "jwks_uri")}
    for key, url in found.items():
        if url:
            check_url(url, key.replace("_", " "))
    return Endpoints(provider=issuer, default_scope=_default_scope(document), **found)


def _default_scope(document: dict) -> str:
    # A generic provider's mail scope is the site's own choice; offline_access asks for a
    # refresh token where the provider knows it (Keycloak, Authentik, OIDC).
    supported = document.get("scopes_supported") or []
    return "offline_access" if "offline_access" in supported else ""


def check_url(url: str, what: str) -> None:
    """https, or http on a loopback host only: tokens must not cross a network in plain text."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise errors.config(f"{what} is not a URL: {url!r}")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return
    raise errors.config(f"{what} must use https (http only on a loopback address): {url}")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
