"""A mailbox's credentials: the one place a mailbox turns into a way to sign in.

Fetching (IMAP, POP3, the IDLE watcher) and sending (SMTP, the Sent copy) both
ask `credentials_for(mailbox, purpose)`; nothing else reads `Mailbox.secret`,
`smtp_secret` or an OAuth grant.  Nothing is decrypted, and no token fetched,
until a connection signs in, so building credentials to describe or check an
account costs nothing and cannot fail on a changed key.

`sign_in` holds the rule every protocol follows with OAuth2: offer the current
access token; if the server refuses it, get a fresh one once (the token may
have been revoked or expired early) and offer that; a second refusal is the
server's final word.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from postdesk.sources._base import SourceError

FETCH = "fetch"
SEND = "send"


@dataclass(frozen=True)
class Credentials:
    """How to sign in to one server of a mailbox.

    method: "password" (the encrypted `secret`), "oauth" (the mailbox's OAuth2 grant)
    or "none" (an SMTP server that takes mail without a login)."""

    username: str
    method: str
    secret: str = field(default="", repr=False)  # encrypted (postdesk.secrets); never the plain text
    mailbox: object = field(default=None, repr=False, compare=False)  # the grant's owner, for "oauth"

    def password(self) -> str:
        """The plain password, decrypted now; a changed key is said as such."""
        from postdesk import secrets

        try:
            return secrets.decrypt(self.secret)
        except secrets.SecretError as exc:
            raise SourceError("secret", f"the mailbox key changed: {exc}") from None

    def check(self) -> None:
        """Fail before connecting when a password cannot be decrypted: a changed key is
        the admin's to fix, and should not read as the server's (a DNS or network error)."""
        if self.method == "password":
            self.password()

    def token(self, rejected: str | None = None) -> str:
        """A valid access token from the grant (refreshed ahead of expiry, or when
        `rejected` is the one the server just refused)."""
        from postdesk.oauth import OAuthError, tokens

        try:
            return tokens.access_token(self.mailbox, rejected=rejected)
        except OAuthError as exc:
            raise source_error_of(exc) from None


def credentials_for(mailbox, purpose: str = FETCH) -> Credentials:
    """The credentials a connection of `purpose` (FETCH or SEND) signs in with."""
    if purpose == SEND and not mailbox.smtp_same_as_fetch:
        if mailbox.smtp_auth == "oauth":
            return Credentials(mailbox.smtp_username or mailbox.username, "oauth", mailbox=mailbox)
        if not mailbox.smtp_username:
            return Credentials("", "none")
        return Credentials(mailbox.smtp_username, "password", mailbox.smtp_secret)
    if mailbox.auth == "oauth":
        return Credentials(mailbox.username, "oauth", mailbox=mailbox)
    return Credentials(mailbox.username, "password", mailbox.secret)


def source_error_of(exc) -> SourceError:
    """An OAuthError as the sources report failures: an expired grant or a wrong
    client is the admin's to fix ("oauth", permanent); a provider that is down is
    passing ("provider")."""
    if exc.kind == "secret":
        return SourceError("secret", f"the mailbox key changed: {exc.message}")
    return SourceError("oauth" if exc.permanent else "provider", exc.message)


def sign_in(credentials: Credentials, *, password: Callable[[str, str], object],
            token: Callable[[str, str], object], refused: type[BaseException] | tuple) -> None:
    """Sign in with whichever the credentials hold.  `password(user, password)` and
    `token(user, access_token)` do it in the protocol's way and raise `refused`
    when the server says no; the caller turns that into its "login" error."""
    if credentials.method == "none":
        return
    if credentials.method == "password":
        password(credentials.username, credentials.password())
        return
    offered = credentials.token()
    try:
        token(credentials.username, offered)
    except refused:
        # Refused although we thought it valid: revoked, or expired early.  One fresh
        # token, one more try; the grant's own errors (expired) surface from token().
        token(credentials.username, credentials.token(rejected=offered))


# --- which SASL mechanism, and its initial response (the strings: postdesk.oauth.sasl) ---


def preferred_mechanism(offered: set[str]) -> str:
    """OAUTHBEARER, the standard, where offered; else XOAUTH2 (Microsoft offers only that)."""
    return "OAUTHBEARER" if "OAUTHBEARER" in offered else "XOAUTH2"


def initial_response(mechanism: str, user: str, access_token: str, host: str, port: int | None) -> bytes:
    from postdesk.oauth import sasl

    if mechanism == "OAUTHBEARER":
        return sasl.oauthbearer(user, access_token, host, port or 0).encode()
    return sasl.xoauth2(user, access_token).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
