"""The grants we speak with a provider, on Authlib's client (OAuth2Session over requests).

    authorization code + PKCE   start_authorization -> PendingAuthorization (keep it server-side),
                                the user consents, finish_authorization(pending, query) -> TokenResponse
    device grant (RFC 8628)     start_device -> DeviceAuthorization (show URL and code),
                                poll_device(...) -> TokenResponse once approved
    loopback redirect (RFC 8252) LoopbackReceiver: a one-shot HTTP server on 127.0.0.1:<free port>
                                that catches the redirect of the CLI's authorization code grant
    refresh                     refresh(client, refresh_token) -> TokenResponse

Every failure is an OAuthError (postdesk.oauth.errors): the provider's own error codes are
turned into kinds here, once (`_from_oauth_error`).
"""

from __future__ import annotations

import html
import http.server
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError
from authlib.integrations.requests_client import OAuth2Session

from postdesk.oauth import errors
from postdesk.oauth.errors import OAuthError
from postdesk.oauth.providers import TIMEOUT, Endpoints

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True)
class Client:
    """Who we are at the provider, and what we ask for."""

    endpoints: Endpoints
    client_id: str
    client_secret: str = ""  # "": a public client (PKCE only)
    scope: str = ""  # "": the provider's default mail scopes

    @property
    def requested_scope(self) -> str:
        return self.scope or self.endpoints.default_scope


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    refresh_token: str  # "": the provider kept the one we have (Google does not rotate)
    expires_in: int | None
    scope: str
    grant_expires_in: int | None  # refresh_token_expires_in / refresh_expires_in, when the provider tells
    id_token: str = ""  # OpenID Connect (scope openid): checked by postdesk.signin.sso, never stored

    @classmethod
    def from_token(cls, token: Mapping, requested_scope: str) -> TokenResponse:
        if not token.get("access_token"):
            raise errors.provider("the token response has no access_token")
        return cls(access_token=str(token["access_token"]), refresh_token=str(token.get("refresh_token") or ""),
                   expires_in=_seconds(token.get("expires_in")),
                   # RFC 6749 section 5.1: no scope in the answer means the one asked for.
                   scope=str(token.get("scope") or requested_scope),
                   grant_expires_in=_seconds(token.get("refresh_token_expires_in") or token.get("refresh_expires_in")),
                   id_token=str(token.get("id_token") or ""))

    def __repr__(self) -> str:  # never a token in a log line or a traceback
        return f"TokenResponse(scope={self.scope!r}, expires_in={self.expires_in})"


def _seconds(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _session(client: Client, **kwargs) -> OAuth2Session:
    return OAuth2Session(client.client_id, client.client_secret or None, code_challenge_method="S256",
                         default_timeout=TIMEOUT, **kwargs)


# --- authorization code + PKCE -----------------------------------------------------------


@dataclass(frozen=True)
class PendingAuthorization:
    """Between sending the user to the provider and their return: never shown to the user
    except `url` (state and code_verifier stay on our side: session, or this process)."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str

    def __repr__(self) -> str:
        return f"PendingAuthorization(redirect_uri={self.redirect_uri!r})"


def start_authorization(client: Client, redirect_uri: str, **params: str) -> PendingAuthorization:
    """`params`: more query parameters for the provider (single sign-on adds its `nonce`)."""
    verifier = generate_token(64)  # RFC 7636: 43 to 128 characters of [A-Za-z0-9-._~]
    with _session(client, redirect_uri=redirect_uri) as session:
        url, state = session.create_authorization_url(
            client.endpoints.authorization_endpoint, code_verifier=verifier, scope=client.requested_scope,
            **dict(client.endpoints.authorize_params), **params)
    return PendingAuthorization(url=url, state=state, code_verifier=verifier, redirect_uri=redirect_uri)


def finish_authorization(client: Client, pending: PendingAuthorization, query: Mapping[str, str]) -> TokenResponse:
    """The redirect's query parameters -> tokens; state first, so a forged redirect costs nothing."""
    if query.get("state") != pending.state:
        raise OAuthError("state", "the sign-in came back with another state than the one sent: start again "
                                  "(an old tab, or a forged link)", permanent=True)
    if query.get("error"):
        raise _redirect_error(query)
    if not query.get("code"):
        raise errors.provider("the provider's redirect carried no authorization code")
    with _session(client, redirect_uri=pending.redirect_uri) as session:
        try:
            token = _call(lambda: session.fetch_token(
                client.endpoints.token_endpoint, grant_type="authorization_code", code=query["code"],
                code_verifier=pending.code_verifier, redirect_uri=pending.redirect_uri))
        except OAuthError as error:
            # invalid_grant here is about the code, not a grant we hold.
            if error.kind != "expired":
                raise
            raise OAuthError("denied", "the provider refused the sign-in code (it ran out, was used already, or "
                                       "came from another attempt): start again", permanent=True) from None
    return TokenResponse.from_token(token, client.requested_scope)


def _redirect_error(query: Mapping[str, str]) -> OAuthError:
    code, description = query.get("error", ""), query.get("error_description", "")
    if code == "access_denied":
        said = f": {description}" if description else ""
        return OAuthError("denied", f"the sign-in was refused at the provider{said}", permanent=True)
    return _from_provider_error(code, description)


# --- device grant (RFC 8628) --------------------------------------------------------------


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int

    def __repr__(self) -> str:
        return f"DeviceAuthorization(verification_uri={self.verification_uri!r}, user_code={self.user_code!r})"


def start_device(client: Client) -> DeviceAuthorization:
    url = client.endpoints.device_authorization_endpoint
    if not url:
        raise errors.config(f"{client.endpoints.provider} offers no device grant: use the browser (--no-device)")
    with _session(client) as session:
        answer = _call(lambda: _post_json(session, url, {"scope": client.requested_scope}))
    try:
        return DeviceAuthorization(
            device_code=str(answer["device_code"]), user_code=str(answer["user_code"]),
            # Microsoft's v2 endpoint answered "verification_url" for a long time.
            verification_uri=str(answer.get("verification_uri") or answer["verification_url"]),
            verification_uri_complete=str(answer.get("verification_uri_complete") or ""),
            expires_in=int(answer.get("expires_in") or 900), interval=int(answer.get("interval") or 5))
    except (KeyError, TypeError, ValueError):
        raise errors.provider("the device authorization answer lacks device_code, user_code or "
                              "verification_uri") from None


def _post_json(session: OAuth2Session, url: str, data: dict) -> dict:
    # The device endpoint authenticates the client like the token endpoint (RFC 8628 section 3.1).
    auth = session.client_auth(session.token_endpoint_auth_method)
    response = session.post(url, data=data, auth=auth, headers={"Accept": "application/json"}, withhold_token=True)
    return session.parse_response_token(response)  # raises on {"error": ...} and 5xx, like a token answer


@dataclass(frozen=True)
class DeviceProgress:
    waited: float  # seconds since polling began
    expires_in: float  # seconds left before the code runs out
    interval: int  # seconds between polls (grown by slow_down)


def poll_device(client: Client, device: DeviceAuthorization, progress: Callable[[DeviceProgress], None] | None = None,
                sleep: Callable[[float], None] = time.sleep) -> TokenResponse:
    """Ask for the token every `interval` seconds until the user approves, refuses, or the code runs out."""
    started, interval = time.monotonic(), max(1, device.interval)
    deadline = started + device.expires_in
    with _session(client) as session:
        while True:
            sleep(interval)
            try:
                token = _call(lambda: session.fetch_token(client.endpoints.token_endpoint, grant_type=DEVICE_GRANT,
                                                          device_code=device.device_code))
                return TokenResponse.from_token(token, client.requested_scope)
            except _StillPending as pending:
                if pending.slow_down:
                    interval += 5  # RFC 8628 section 3.5: and for every later request
            now = time.monotonic()
            if now >= deadline:
                raise OAuthError("denied", "the device code ran out before it was approved: run connect again",
                                 permanent=True)
            if progress:
                progress(DeviceProgress(now - started, deadline - now, interval))


class _StillPending(Exception):
    def __init__(self, slow_down: bool):
        super().__init__("authorization pending")
        self.slow_down = slow_down


# --- refresh --------------------------------------------------------------------------------


def refresh(client: Client, refresh_token: str) -> TokenResponse:
    kwargs = {"scope": client.requested_scope} if client.endpoints.refresh_sends_scope else {}
    with _session(client, token={"refresh_token": refresh_token, "token_type": "bearer"}) as session:
        token = _call(lambda: session.refresh_token(client.endpoints.token_endpoint, refresh_token=refresh_token,
                                                    **kwargs))
    return TokenResponse.from_token(token, client.requested_scope)


# --- errors, once ---------------------------------------------------------------------------


def _call(request: Callable[[], dict]) -> dict:
    try:
        return request()
    except AuthlibOAuthError as exc:
        raise _from_oauth_error(exc) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise errors.provider(f"the provider answered HTTP {status}") from None
    except requests.RequestException as exc:
        raise errors.provider(f"the provider cannot be reached: {type(exc).__name__}") from None
    except ValueError as exc:  # a body that is not a JSON object
        raise errors.provider(f"the provider's answer is not OAuth2: {exc}") from None


def _from_oauth_error(exc: AuthlibOAuthError) -> Exception:
    code = exc.error or ""
    if code in ("authorization_pending", "slow_down"):
        return _StillPending(slow_down=code == "slow_down")
    return _from_provider_error(code, exc.description or "")


def _from_provider_error(code: str, description: str) -> OAuthError:
    said = f"{code}: {description}" if description else code
    if code == "invalid_grant":
        return errors.expired(said)
    if code == "access_denied":
        return OAuthError("denied", f"the sign-in was refused ({said})", permanent=True)
    if code == "expired_token":
        return OAuthError("denied", "the device code ran out before it was approved: run connect again", permanent=True)
    if code in ("temporarily_unavailable", "server_error"):
        return errors.provider(f"the provider failed: {said}")
    # invalid_client, unauthorized_client, invalid_scope, invalid_request...: our settings.
    return errors.config(f"the provider refused: {said}")


# --- loopback redirect (RFC 8252) -----------------------------------------------------------


class LoopbackReceiver:
    """A one-shot HTTP server on 127.0.0.1:<free port> catching the authorization redirect.

        with LoopbackReceiver() as receiver:
            pending = start_authorization(client, receiver.redirect_uri)
            print(pending.url)
            query = receiver.wait(timeout=300)
    """

    PATH = "/callback"

    def __init__(self):
        self.query: dict[str, str] | None = None
        self._arrived = threading.Event()
        self._server = http.server.HTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="oauth-loopback", daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.PATH}"

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def wait(self, timeout: float) -> dict[str, str]:
        if not self._arrived.wait(timeout):
            raise OAuthError("denied", f"no sign-in came back within {timeout:.0f} s: run connect again",
                             permanent=True)
        return dict(self.query or {})

    def _handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                if parts.path != receiver.PATH or receiver._arrived.is_set():
                    self.send_error(404)
                    return
                receiver.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._answer(receiver.query)
                receiver._arrived.set()

            def _answer(self, query):
                text = ("Postdesk: signed in. You can close this window." if "code" in query
                        else f"Postdesk: the sign-in failed ({query.get('error', 'no code')}).")
                body = f"<!doctype html><title>Postdesk</title><p>{html.escape(text)}</p>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # the query holds the code: never logged
                pass

        return Handler
