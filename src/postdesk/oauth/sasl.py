"""SASL initial responses for OAuth2 logins (IMAP, POP3, SMTP): one home.

    XOAUTH2       Google's and Microsoft's mechanism ("user=...^Aauth=Bearer ...^A^A")
    OAUTHBEARER   RFC 7628: a GS2 header naming the user, then host, port and the bearer token

Both return text; the protocol client base64-encodes it.  The result holds a token:
never log it.
"""

from __future__ import annotations


def xoauth2(user: str, token: str) -> str:
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer(user: str, token: str, host: str, port: int) -> str:
    # RFC 5801 section 4: "," and "=" in the authorization identity are escaped as =2C and =3D.
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
