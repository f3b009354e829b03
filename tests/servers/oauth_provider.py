"""A real OAuth2 authorization server for tests, built on authlib's server side.

It runs in a thread of the test process (werkzeug, threaded) on a free loopback
port, over plain http: the issuer is ``http://127.0.0.1:PORT``.  Everything is
kept in memory under one lock, so a test changes its state directly:

    provider = OAuthProvider.start()
    provider.add_user("alice", "pw")                       # same names as the Dovecot users
    provider.add_client("desk", redirect_uris=("http://127.0.0.1/oauth/callback",))  # public: no secret
    tokens = provider.mint("alice", "desk", scope="mail")  # TokenSet, no browser needed
    provider.access_lifetime = 60                          # seconds, for tokens issued from now on
    provider.refresh_expires_in = 86400                    # also sent (and enforced); None: not sent
    provider.expire(tokens)                                # this access token expired now
    provider.revoke_user("alice")                          # consent removed: refresh -> invalid_grant
    provider.revoke_grant(tokens)                          # just this grant (token family)
    provider.approve_device(user_code, "alice")            # or deny_device / expire_device(user_code)
    provider.down(); provider.up()                         # port closed, then listening again (same port)
    provider.fail_with(503); provider.fail_with(None)      # /token answers 503, then normally again
    provider.refreshes("alice"), provider.issued("alice")  # counters for assertions (None: all users)
    provider.reset_behaviour()                             # lifetimes, intervals, down/fail back to defaults
    provider.add_user("bob", "pw", email="b@x.org", email_verified=False)  # None: no email_verified claim
    provider.id_token_claims = {"aud": ["someone-else"]}   # forced into every id_token (reset_behaviour clears)

Endpoints (all also in the discovery documents, /.well-known/oauth-authorization-server
and /.well-known/openid-configuration):

    GET/POST /authorize    authorization code + PKCE.  A consent page with
                           input[name=username], input[name=password] and
                           button[name=decision][value=allow|deny].  Deny redirects with
                           error=access_denied.  An unknown client or redirect_uri gets an
                           error page (400), never a redirect.  Public clients (no secret)
                           must send code_challenge_method=S256; "plain" is not offered.
                           A loopback redirect_uri (http://127.0.0.1:ANYPORT/path) matches
                           a registered one whatever its port (RFC 8252 section 7.3).
    POST /token            authorization_code, refresh_token, and the device code grant.
    POST /device           device authorization (RFC 8628); `device_interval` seconds
                           (default 1) between polls, `slow_down` adds 5 s as the RFC says.
    GET/POST /verify       the page where a user types the device's user code, signs in
                           and approves or denies (same field names as the consent page,
                           plus input[name=user_code]); approve_device() does the same.
    POST /revoke           RFC 7009.  Revoking a refresh token revokes its whole grant;
                           revoking an access token revokes that access token only.
    GET  /jwks             the RS256 key of the id_tokens: with `openid` in the scope, the
                           code grant also answers an id_token (sub = username, email,
                           email_verified (the user's; left out when None), preferred_username,
                           nonce, then `id_token_claims`).
    POST /introspect       RFC 7662, for access tokens.  Open to any caller without client
                           authentication: it listens on loopback only, and Dovecot's
                           oauth2 passdb (introspection_mode = post) sends just token=...
                           Active: {"active": true, "username", "sub", "scope", "exp",
                           "iat", "client_id", "token_type"}; anything else {"active": false}.
                           fail_with() does not touch it: Dovecot keeps working while
                           token requests fail; down() takes it away too.

Refresh tokens rotate: every refresh answers a new refresh token.  Like real
providers with reuse detection, a grant accepts exactly two refresh tokens: its
newest one, and the one that newest was issued for (the parent), because the
client may have crashed before it saved the newest.  Any other refresh token of
the grant (an older one, or a sibling abandoned when the parent was used again)
is a replay: the answer is invalid_grant and the whole grant is revoked, its
access tokens included.  So a kill -9 between receiving a rotated token and
saving it strands nothing, while two workers that refresh with the same token
and keep the wrong one of the two answers get the grant revoked at their next
refresh, as at a real provider.  Without a replay, an access token stays active
until it expires, also after a refresh (as at real providers).
"""

from __future__ import annotations

import html
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE, DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oauth2.rfc8628 import DeviceCredentialDict
from authlib.oidc.core import OpenIDCode, UserInfo
from flask import Flask, Response, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

HOST = "127.0.0.1"
DEFAULT_ACCESS_LIFETIME = 3600
DEFAULT_DEVICE_INTERVAL = 1
DEFAULT_DEVICE_EXPIRES_IN = 600
AUTHORIZATION_CODE_LIFETIME = 600
SLOW_DOWN_STEP = 5  # seconds added to a device's interval on slow_down (RFC 8628 section 3.5)
GRANT_TYPES = ("authorization_code", "refresh_token", DEVICE_CODE_GRANT_TYPE)
_LOOPBACK_HOSTS = {"127.0.0.1", "[::1]", "::1", "localhost"}


@dataclass(frozen=True)
class TokenSet:
    """What a token response carries, for tests that need tokens without a browser."""

    access_token: str
    refresh_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class User:
    username: str
    password: str
    email: str
    email_verified: bool | None = True  # None: the id_token has no email_verified (as at Entra ID)

    def get_user_id(self) -> str:
        return self.username


@dataclass
class Client(ClientMixin):
    client_id: str
    secret: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(_same_redirect_uri(redirect_uri, known) for known in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A confidential client must prove its secret; a public one has none to prove.
        if self.secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    username: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    nonce: str | None = None
    auth_time: int | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    # What authlib's OpenID Connect extension reads into the id_token.

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int | None:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Grant:
    """One consent (a token family): what refresh and revocation act on."""

    grant_id: int
    username: str
    client_id: str
    scope: str
    newest_refresh: str
    parent_refresh: str | None = None
    revoked: bool = False

    def accepts(self, refresh_token: str) -> bool:
        return not self.revoked and refresh_token in (self.newest_refresh, self.parent_refresh)

    def rotate(self, used: str, issued: str) -> None:
        # Used the newest: it becomes the parent.  Used the parent again (the client
        # lost the newest): the parent stays, the lost newest is dropped.
        if used == self.newest_refresh:
            self.parent_refresh = used
        self.newest_refresh = issued


@dataclass
class Token(TokenMixin):
    """An access token and the refresh token issued with it."""

    access_token: str
    refresh_token: str
    grant: Grant
    expires_in: int
    issued_at: float
    refresh_expires_at: float | None = None
    access_revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client is not None and client.client_id == self.grant.client_id

    def get_scope(self) -> str:
        return self.grant.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.access_revoked or self.grant.revoked

    def refresh_expired(self) -> bool:
        return self.refresh_expires_at is not None and time.time() >= self.refresh_expires_at


@dataclass
class DeviceRequest:
    credential: DeviceCredentialDict
    interval: int
    last_poll: float | None = None
    decision: tuple[User | None, bool] | None = None  # (user, approved) once decided


@dataclass
class _Store:
    """All of the provider's state; every access holds `lock`."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    by_access: dict[str, Token] = field(default_factory=dict)
    by_refresh: dict[str, Token] = field(default_factory=dict)
    devices: dict[str, DeviceRequest] = field(default_factory=dict)  # by device_code
    refresh_counts: Counter = field(default_factory=Counter)
    issued_counts: Counter = field(default_factory=Counter)

    def device_by_user_code(self, user_code: str) -> DeviceRequest | None:
        wanted = _normal_user_code(user_code)
        for device in self.devices.values():
            if _normal_user_code(device.credential["user_code"]) == wanted:
                return device
        return None


class OAuthProvider:
    """See the module docstring."""

    host = HOST

    def __init__(self) -> None:
        self.store = _Store()
        self.access_lifetime = DEFAULT_ACCESS_LIFETIME
        self.refresh_expires_in: int | None = None
        self.device_interval = DEFAULT_DEVICE_INTERVAL
        self.device_expires_in = DEFAULT_DEVICE_EXPIRES_IN
        self.failing_status: int | None = None
        self.id_token_claims: dict = {}  # forced into every id_token (a wrong aud, nonce, ...)
        self.authz = _authorization_server(self)
        self.app = _flask_app(self)
        self.port = 0
        self._signing_key: RSAKey | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls) -> OAuthProvider:
        provider = cls()
        provider.up()
        return provider

    # -- addresses --------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def authorization_endpoint(self) -> str:
        return self.url("/authorize")

    @property
    def token_endpoint(self) -> str:
        return self.url("/token")

    @property
    def device_authorization_endpoint(self) -> str:
        return self.url("/device")

    @property
    def verification_uri(self) -> str:
        return self.url("/verify")

    @property
    def revocation_endpoint(self) -> str:
        return self.url("/revoke")

    @property
    def introspection_endpoint(self) -> str:
        return self.url("/introspect")

    def metadata(self) -> dict:
        """The discovery document (RFC 8414; also served as openid-configuration)."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "device_authorization_endpoint": self.device_authorization_endpoint,
            "revocation_endpoint": self.revocation_endpoint,
            "introspection_endpoint": self.introspection_endpoint,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANT_TYPES),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "jwks_uri": self.url("/jwks"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "offline_access"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified",
                                 "preferred_username"],
        }

    @property
    def signing_key(self) -> RSAKey:
        """The id_token key, made at its first use (an RSA key takes a moment to make)."""
        with self.store.lock:
            if self._signing_key is None:
                self._signing_key = RSAKey.generate_key(2048, auto_kid=True)
            return self._signing_key

    def jwks(self) -> dict:
        return KeySet([self.signing_key]).as_dict(private=False)

    # -- life cycle and outages -------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    def up(self) -> None:
        """Listen (again, on the same port once one was picked)."""
        if self._server is not None:
            return
        server = make_server(self.host, self.port, self.app, threaded=True, request_handler=_QuietHandler)
        self.port = server.port
        self._server = server
        # A short poll interval: down() waits for the loop to notice, 0.5 s by default.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth-provider", daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Close the port: connecting is refused until up()."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._thread.join()

    stop = down

    def fail_with(self, status: int | None) -> None:
        """Answer every token request with this HTTP status (e.g. 503); None: normally again."""
        self.failing_status = status

    def reset_behaviour(self) -> None:
        """Default lifetimes and intervals, listening, not failing (between tests)."""
        self.access_lifetime = DEFAULT_ACCESS_LIFETIME
        self.refresh_expires_in = None
        self.device_interval = DEFAULT_DEVICE_INTERVAL
        self.device_expires_in = DEFAULT_DEVICE_EXPIRES_IN
        self.fail_with(None)
        self.id_token_claims = {}
        self.up()

    # -- users and clients ------------------------------------------------------------

    def add_user(self, username: str, password: str, email: str | None = None,
                 email_verified: bool | None = True) -> User:
        """A user who can sign in (again: replaced); `email` (for id_tokens) defaults to the
        username if it is an address, else to username@example.org."""
        email = email or (username if "@" in username else f"{username}@example.org")
        with self.store.lock:
            user = self.store.users[username] = User(username, password, email, email_verified)
        return user

    def add_client(
        self,
        client_id: str,
        secret: str | None = None,
        redirect_uris: Iterable[str] = (),
        grant_types: Iterable[str] = GRANT_TYPES,
    ) -> Client:
        client = Client(client_id, secret, tuple(redirect_uris), tuple(grant_types))
        with self.store.lock:
            self.store.clients[client_id] = client
        return client

    # -- tokens without a browser, and what a user or admin does ---------------------------

    def mint(self, username: str, client_id: str, scope: str = "") -> TokenSet:
        """A new grant for `username`, as if they had consented; its first tokens."""
        with self.store.lock:
            user, client = self.store.users[username], self.store.clients[client_id]
            token = self.authz.generate_token(
                grant_type="authorization_code", client=client, user=user, scope=scope, include_refresh_token=True
            )
            self._save_token(token, client, user, used=None)
        return TokenSet(token["access_token"], token["refresh_token"], token["expires_in"], token.get("scope", ""))

    def revoke_user(self, username: str) -> None:
        """Every grant of the user revoked (consent removed, password changed)."""
        with self.store.lock:
            for grant in self.store.grants:
                if grant.username == username:
                    grant.revoked = True

    def revoke_grant(self, token: str | TokenSet) -> None:
        """The grant that issued this token (access or refresh, or a TokenSet) revoked."""
        value = token.refresh_token if isinstance(token, TokenSet) else token
        with self.store.lock:
            found = self.store.by_refresh.get(value) or self.store.by_access.get(value)
            if found is None:
                raise KeyError("no such token at this provider")
            found.grant.revoked = True

    def expire(self, access_token: str | TokenSet) -> None:
        """This access token expired now (instead of waiting for its lifetime)."""
        value = access_token.access_token if isinstance(access_token, TokenSet) else access_token
        with self.store.lock:
            self.store.by_access[value].expires_in = 0

    def approve_device(self, user_code: str, username: str) -> None:
        """What the verification page does when `username` signs in and allows."""
        self._decide_device(user_code, self.store.users[username], approved=True)

    def deny_device(self, user_code: str) -> None:
        self._decide_device(user_code, None, approved=False)

    def expire_device(self, user_code: str) -> None:
        """The device code's lifetime is over: the next poll answers expired_token."""
        with self.store.lock:
            self._device(user_code).credential["expires_at"] = time.time() - 1

    # -- counters -----------------------------------------------------------------------

    def refreshes(self, username: str | None = None) -> int:
        """Successful refresh-token grants, of one user or of all."""
        with self.store.lock:
            counts = self.store.refresh_counts
            return counts[username] if username is not None else sum(counts.values())

    def issued(self, username: str | None = None) -> int:
        """Token sets issued (any grant, mint() included), of one user or of all."""
        with self.store.lock:
            counts = self.store.issued_counts
            return counts[username] if username is not None else sum(counts.values())

    # -- internals used by the grants and endpoints ---------------------------------------

    def _save_token(self, token: dict, client: Client, user: User, used: Token | None) -> Token:
        """Keep a token response (adding refresh_expires_in when set); lock held.
        `used`: the refresh token's record, on a refresh."""
        grant = self._rotated_grant(used, token) if used else self._new_grant(client, user, token)
        now = time.time()
        refresh_expires_at = None
        if self.refresh_expires_in is not None:
            token["refresh_expires_in"] = self.refresh_expires_in
            refresh_expires_at = now + self.refresh_expires_in
        record = Token(token["access_token"], token["refresh_token"], grant, token["expires_in"], now,
                       refresh_expires_at)
        self.store.by_access[record.access_token] = record
        self.store.by_refresh[record.refresh_token] = record
        self.store.issued_counts[user.username] += 1
        return record

    def _new_grant(self, client: Client, user: User, token: dict) -> Grant:
        grant = Grant(len(self.store.grants) + 1, user.username, client.client_id,
                      token.get("scope", ""), token["refresh_token"])
        self.store.grants.append(grant)
        return grant

    def _rotated_grant(self, used: Token, token: dict) -> Grant:
        used.grant.rotate(used.refresh_token, token["refresh_token"])
        self.store.refresh_counts[used.grant.username] += 1
        return used.grant

    def _refresh_record(self, refresh_token: str) -> Token | None:
        """The record of a refresh token the grant still accepts; a replay revokes the grant."""
        record = self.store.by_refresh.get(refresh_token)
        if record is None or record.refresh_expired():
            return None
        if not record.grant.accepts(refresh_token):
            record.grant.revoked = True  # a replayed (or already revoked) token: the family is gone
            return None
        return record

    def _device(self, user_code: str) -> DeviceRequest:
        device = self.store.device_by_user_code(user_code)
        if device is None:
            raise KeyError("no such user code")
        return device

    def _decide_device(self, user_code: str, user: User | None, *, approved: bool) -> None:
        with self.store.lock:
            self._device(user_code).decision = (user, approved)

    def _check_password(self, username: str, password: str) -> User | None:
        with self.store.lock:
            user = self.store.users.get(username)
        if user is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            return None
        return user


# -- authlib's pieces, bound to one provider ----------------------------------------------


def _authorization_server(provider: OAuthProvider) -> AuthorizationServer:
    store = provider.store

    def query_client(client_id):
        with store.lock:
            return store.clients.get(client_id)

    def save_token(token, oauth_request):
        used = oauth_request.refresh_token if oauth_request.payload.grant_type == "refresh_token" else None
        with store.lock:
            provider._save_token(token, oauth_request.client, oauth_request.user, used)
            if oauth_request.payload.grant_type == DEVICE_CODE_GRANT_TYPE:
                # A device code is good for one token response.
                store.devices.pop(oauth_request.credential["device_code"], None)

    server = AuthorizationServer(query_client=query_client, save_token=save_token)
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            _random_token, _random_token, lambda client, grant_type: provider.access_lifetime
        ),
    )
    server.register_grant(_code_grant(provider), [_S256Challenge(required=True), _OpenIDConnect(provider)])
    server.register_grant(_refresh_grant(provider))
    server.register_grant(_device_grant(provider))
    server.register_endpoint(_device_endpoint(provider))
    server.register_endpoint(_revocation_endpoint(provider))
    server.register_endpoint(_introspection_endpoint(provider))
    return server


class _S256Challenge(CodeChallenge):
    """PKCE with S256 only, and required of public clients already at /authorize."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if grant.request.client.secret is None and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must send a code_challenge (S256)")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _OpenIDConnect(OpenIDCode):
    """An id_token (RS256, the key at /jwks) when the scope has `openid`: sub, email,
    email_verified, preferred_username, and the nonce if the client sent one."""

    def __init__(self, provider: OAuthProvider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce, oauth_request):
        with self.provider.store.lock:
            return any(code.nonce == nonce and code.client_id == oauth_request.payload.client_id
                       for code in self.provider.store.codes.values())

    def resolve_client_private_key(self, client):
        return self.provider.signing_key

    def get_client_algorithm(self, client):
        return "RS256"

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": self.provider.signing_key.kid}

    def get_client_claims(self, client):
        return {"iss": self.provider.issuer, "aud": [client.get_client_id()]}

    def generate_user_info(self, user, scope):
        info = UserInfo(sub=user.username, preferred_username=user.username, email=user.email)
        if user.email_verified is not None:
            info["email_verified"] = user.email_verified
        info.update(self.provider.id_token_claims)
        return info


def _code_grant(provider: OAuthProvider):
    store = provider.store

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

        def save_authorization_code(self, code, oauth_request):
            data = oauth_request.payload.data
            item = AuthorizationCode(
                code, oauth_request.client.client_id, oauth_request.payload.redirect_uri,
                oauth_request.scope or "", oauth_request.user.username,
                data.get("code_challenge"), data.get("code_challenge_method"),
                time.time() + AUTHORIZATION_CODE_LIFETIME, data.get("nonce"), int(time.time()),
            )
            with store.lock:
                store.codes[code] = item

        def query_authorization_code(self, code, client):
            with store.lock:
                item = store.codes.get(code)
            if item and item.client_id == client.client_id and item.expires_at > time.time():
                return item
            return None

        def delete_authorization_code(self, authorization_code):
            with store.lock:
                store.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code):
            with store.lock:
                return store.users.get(authorization_code.username)

    return CodeGrant


def _refresh_grant(provider: OAuthProvider):
    store = provider.store

    class RefreshGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token):
            with store.lock:
                return provider._refresh_record(refresh_token)

        def authenticate_user(self, refresh_token):
            with store.lock:
                return store.users.get(refresh_token.grant.username)

        def revoke_old_credential(self, refresh_token):
            pass  # the grant's rotation (Grant.rotate) decides which refresh tokens still work

    return RefreshGrant


def _device_grant(provider: OAuthProvider):
    store = provider.store

    class DeviceGrant(DeviceCodeGrant):
        def query_device_credential(self, device_code):
            with store.lock:
                device = store.devices.get(device_code)
            return device.credential if device else None

        def query_user_grant(self, user_code):
            with store.lock:
                device = store.device_by_user_code(user_code)
                return device.decision if device else None

        def should_slow_down(self, credential):
            with store.lock:
                device = store.devices[credential["device_code"]]
                now, last = time.monotonic(), device.last_poll
                device.last_poll = now
                # A little slack: a client that waits `interval` is never told to slow down.
                if last is not None and now - last + 0.2 < device.interval:
                    device.interval += SLOW_DOWN_STEP
                    return True
                return False

    return DeviceGrant


def _device_endpoint(provider: OAuthProvider):
    store = provider.store

    class DeviceEndpoint(DeviceAuthorizationEndpoint):
        @property
        def INTERVAL(self):  # noqa: N802  (authlib's name)
            return provider.device_interval

        @property
        def EXPIRES_IN(self):  # noqa: N802
            return provider.device_expires_in

        def get_verification_uri(self):
            return provider.verification_uri

        def save_device_credential(self, client_id, scope, data):
            credential = DeviceCredentialDict(
                client_id=client_id, scope=scope or "", expires_at=time.time() + data["expires_in"], **data
            )
            with store.lock:
                store.devices[data["device_code"]] = DeviceRequest(credential, data["interval"])

    return DeviceEndpoint


def _revocation_endpoint(provider: OAuthProvider):
    store = provider.store

    class Revocation(RevocationEndpoint):
        CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

        def query_token(self, token_string, token_type_hint):
            with store.lock:
                return store.by_access.get(token_string) or store.by_refresh.get(token_string)

        def revoke_token(self, token, oauth_request):
            with store.lock:
                if oauth_request.form.get("token") == token.refresh_token:
                    token.grant.revoked = True
                else:
                    token.access_revoked = True

    return Revocation


def _introspection_endpoint(provider: OAuthProvider):
    store = provider.store

    class Introspection(IntrospectionEndpoint):
        def authenticate_endpoint_client(self, oauth_request):
            return None  # open on loopback: see the module docstring

        def query_token(self, token_string, token_type_hint):
            with store.lock:
                return store.by_access.get(token_string)

        def check_permission(self, token, client, oauth_request):
            return True

        def introspect_token(self, token):
            return {
                "active": True,
                "username": token.grant.username,
                "sub": token.grant.username,
                "scope": token.grant.scope,
                "client_id": token.grant.client_id,
                "token_type": "Bearer",
                "iat": int(token.issued_at),
                "exp": int(token.issued_at + token.expires_in),
            }

    return Introspection


# -- the Flask app: HTTP routes and the two HTML pages ---------------------------------------


def _flask_app(provider: OAuthProvider) -> Flask:
    app = Flask("postdesk-test-oauth-provider")
    authz = provider.authz

    @app.before_request
    def outage():
        if provider.failing_status is not None and request.path == "/token":
            body = {"error": "temporarily_unavailable", "error_description": "the test provider is failing"}
            return jsonify(body), provider.failing_status
        return None

    @app.get("/.well-known/oauth-authorization-server")
    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify(provider.metadata())

    @app.get("/jwks")
    def jwks():
        return jsonify(provider.jwks())

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize():
        try:
            grant = authz.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            return _authorization_error(authz, error)
        if request.method == "GET":
            return _consent_page(grant)
        if request.form.get("decision") != "allow":
            return authz.create_authorization_response(grant_user=None, grant=grant)
        user = provider._check_password(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            return _consent_page(grant, error="Wrong username or password."), 401
        return authz.create_authorization_response(grant_user=user, grant=grant)

    @app.post("/token")
    def token():
        return authz.create_token_response()

    @app.post("/device")
    def device_authorization():
        return authz.create_endpoint_response(DeviceAuthorizationEndpoint.ENDPOINT_NAME)

    @app.route("/verify", methods=["GET", "POST"])
    def verify():
        user_code = request.values.get("user_code", "")
        if request.method == "GET":
            return _verify_page(user_code)
        return _verify_decision(provider, user_code)

    @app.post("/revoke")
    def revoke():
        return authz.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)

    @app.post("/introspect")
    def introspect():
        return authz.create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)

    return app


def _authorization_error(authz: AuthorizationServer, error: OAuth2Error):
    # Redirect only to a redirect_uri already checked against the client
    # (authlib sets it then); otherwise the user sees the error here.
    if getattr(error, "redirect_uri", None):
        return authz.handle_error_response(None, error)
    text = f"{error.error}: {error.description or ''}"
    return _page("Sign-in error", f'<p id="error">{html.escape(text)}</p>'), 400


def _consent_page(grant, error: str = "") -> Response:
    client_id = html.escape(grant.request.client.client_id)
    scope = html.escape(grant.request.payload.scope or "")
    body = f"""<p><b id="client">{client_id}</b> asks for access: <span id="scope">{scope}</span></p>
{_error_line(error)}<form method="post" action="{html.escape(request.full_path)}">
{_sign_in_fields()}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"""
    return _page("Allow access?", body)


def _verify_page(user_code: str, error: str = "") -> Response:
    body = f"""{_error_line(error)}<form method="post" action="/verify">
<label>Code <input name="user_code" value="{html.escape(user_code)}"></label>
{_sign_in_fields()}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"""
    return _page("Connect a device", body)


def _verify_decision(provider: OAuthProvider, user_code: str):
    with provider.store.lock:
        device = provider.store.device_by_user_code(user_code)
        if device is None or device.credential.is_expired():
            return _verify_page(user_code, "Unknown or expired code."), 400
    if request.form.get("decision") != "allow":
        provider._decide_device(user_code, None, approved=False)
        return _page("Denied", '<p id="done">Access denied. You can close this page.</p>')
    user = provider._check_password(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return _verify_page(user_code, "Wrong username or password."), 401
    provider._decide_device(user_code, user, approved=True)
    return _page("Connected", '<p id="done">Device connected. You can close this page.</p>')


def _sign_in_fields() -> str:
    return """<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>"""


def _error_line(error: str) -> str:
    return f'<p id="error">{html.escape(error)}</p>\n' if error else ""


def _page(title: str, body: str) -> Response:
    text = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body><h1>{html.escape(title)}</h1>
{body}
</body></html>"""
    return Response(text, mimetype="text/html")


class _QuietHandler(WSGIRequestHandler):
    # HTTP/1.0: one request per connection, so down() really cuts every client
    # off (a kept-alive connection would go on being served by its thread).
    protocol_version = "HTTP/1.0"

    def log_request(self, *args, **kwargs) -> None:
        pass  # URLs may carry codes; and the test output stays clean


logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _random_token(*args, **kwargs) -> str:
    return secrets.token_urlsafe(32)


def _same_redirect_uri(given: str, registered: str) -> bool:
    if given == registered:
        return True
    # RFC 8252 section 7.3: a native app's loopback redirect may use any port.
    a, b = urlsplit(given), urlsplit(registered)
    return (
        a.scheme == b.scheme == "http"
        and a.hostname in _LOOPBACK_HOSTS
        and a.hostname == b.hostname
        and (a.path, a.query) == (b.path, b.query)
    )


def _normal_user_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()
