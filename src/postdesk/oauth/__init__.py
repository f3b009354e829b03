"""OAuth2 sign-in for mailboxes: the one home of OAuth in Postdesk (nothing else talks to a provider).

    providers.py     a provider name or issuer -> Endpoints (discovery, cached; https rule)
    flows.py         authorization code + PKCE, device grant, loopback redirect, refresh (Authlib's client)
    tokens.py        the grant store on OAuthGrant: connect, access_token (refresh, lease, CAS), describe, warnings
    sasl.py          XOAUTH2 / OAUTHBEARER initial responses
    connect_cli.py   `postdesk mailbox connect NAME`
    errors.py        OAuthError(kind, message, permanent)
"""

from postdesk.oauth.errors import OAuthError

__all__ = ["OAuthError"]
