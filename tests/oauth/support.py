"""What the OAuth tests share: an OAuth mailbox at the test provider, a grant minted
without a browser, and the consent page driven with requests (the browser test is
tests/browser)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import requests

from postdesk.models import Mailbox, OAuthGrant
from postdesk.oauth import tokens
from postdesk.oauth.flows import TokenResponse
from tests.oauth.conftest import PASSWORD

SCOPE = "mail offline_access"


def oauth_mailbox(provider, client_id: str, person: str, name: str = "support", **fields) -> Mailbox:
    settings = {"protocol": "imap", "host": "127.0.0.1", "port": 993, "security": "tls", "username": person,
                "auth": "oauth", "oauth_provider": provider.issuer, "oauth_client_id": client_id,
                "oauth_scope": SCOPE, **fields}
    return Mailbox.objects.create(name=name, **settings)


def minted(provider, person: str, client_id: str) -> TokenResponse:
    """A fresh grant at the provider, as the token endpoint would answer it."""
    t = provider.mint(person, client_id, scope=SCOPE)
    return TokenResponse.from_token({"access_token": t.access_token, "refresh_token": t.refresh_token,
                                     "expires_in": t.expires_in, "scope": t.scope}, SCOPE)


def connected(provider, client_id: str, person: str, name: str = "support", **fields) -> Mailbox:
    mailbox = oauth_mailbox(provider, client_id, person, name, **fields)
    tokens.connect(mailbox, minted(provider, person, client_id))
    return mailbox


def grant_of(mailbox: Mailbox) -> OAuthGrant:
    return OAuthGrant.objects.get(mailbox=mailbox)


def stored(mailbox: Mailbox) -> tuple[str, str]:
    """(access token, refresh token) as stored, decrypted."""
    from postdesk import secrets

    grant = grant_of(mailbox)
    return secrets.decrypt(grant.access_token), secrets.decrypt(grant.refresh_token)


def consent(url: str, person: str, decision: str = "allow") -> dict[str, str]:
    """Sign in and decide on the provider's consent page; the query of the redirect back."""
    page = requests.get(url, timeout=30)
    assert page.status_code == 200, page.text
    answer = requests.post(url, data={"username": person, "password": PASSWORD, "decision": decision},
                           allow_redirects=False, timeout=30)
    assert answer.status_code in (302, 303), answer.text
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
