"""OAuthError: every failure of postdesk.oauth, with a kind and whether retrying can help.

    kind           permanent  what happened
    config         yes        bad issuer, no discovery document, invalid_client, a missing endpoint
    expired        yes        invalid_grant: the grant was revoked or expired, consent removed,
                              password changed ("sign-in expired: reconnect the mailbox")
    denied         yes        the user refused at the provider (access_denied), or the device code ran out
    state          yes        the redirect came back with another state than the one we sent
    secret         yes        a stored token or client secret cannot be decrypted: the mailbox key changed
    not-connected  yes        the mailbox has no grant yet (`postdesk mailbox connect`)
    provider       no         the provider is down, slow, answered 5xx or something that is not JSON
    busy           no         another process is refreshing and did not finish in time
"""

from __future__ import annotations

EXPIRED_MESSAGE = "sign-in expired: reconnect the mailbox"


class OAuthError(Exception):
    def __init__(self, kind: str, message: str, permanent: bool):
        super().__init__(message)
        self.kind, self.message, self.permanent = kind, message, permanent

    def __repr__(self) -> str:
        return f"OAuthError({self.kind!r}, {self.message!r}, permanent={self.permanent})"


def config(message: str) -> OAuthError:
    return OAuthError("config", message, permanent=True)


def provider(message: str) -> OAuthError:
    return OAuthError("provider", message, permanent=False)


def expired(detail: str = "") -> OAuthError:
    return OAuthError("expired", EXPIRED_MESSAGE + (f" ({detail})" if detail else ""), permanent=True)


def secret() -> OAuthError:
    return OAuthError("secret", "the mailbox key changed: the stored OAuth2 tokens or client secret cannot be "
                                "decrypted (POSTDESK_SECRET_KEY or mailbox.key); reconnect the mailbox", permanent=True)


def not_connected(name: str) -> OAuthError:
    return OAuthError("not-connected", f"mailbox {name} is not connected: run `postdesk mailbox connect {name}`",
                      permanent=True)
