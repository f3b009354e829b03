"""Where a provider lives: Microsoft and Google by name, any other by discovery (RFC 8414 /
OpenID Connect) at the test provider, the issuer check, the https rule, and the cache."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from postdesk.oauth import OAuthError, providers


class DocumentServer:
    """Serves fixed JSON documents by path on a loopback port (a provider that lies, or has none)."""

    def __init__(self, documents: dict[str, object]):
        self.documents = documents
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path not in server.documents:
                    self.send_error(404)
                    return
                body = json.dumps(server.documents[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture(autouse=True)
def no_cache():
    providers.forget()
    yield
    providers.forget()


def test_discovery_finds_the_test_providers_endpoints(provider):
    endpoints = providers.resolve(provider.issuer)
    assert endpoints.provider == provider.issuer
    assert endpoints.authorization_endpoint == provider.authorization_endpoint
    assert endpoints.token_endpoint == provider.token_endpoint
    assert endpoints.device_authorization_endpoint == provider.device_authorization_endpoint
    assert endpoints.offers_device_grant


def test_discovery_is_cached_so_a_provider_outage_does_not_stop_a_known_issuer(provider):
    first = providers.resolve(provider.issuer)
    provider.down()
    assert providers.resolve(provider.issuer) == first
    providers.forget()
    with pytest.raises(OAuthError) as raised:
        providers.resolve(provider.issuer)
    assert (raised.value.kind, raised.value.permanent) == ("provider", False)


def test_the_openid_document_is_used_when_there_is_no_rfc8414_one():
    with DocumentServer({}) as server:
        server.documents["/.well-known/openid-configuration"] = {
            "issuer": server.issuer, "authorization_endpoint": server.issuer + "/auth",
            "token_endpoint": server.issuer + "/token", "scopes_supported": ["openid", "offline_access"]}
        endpoints = providers.resolve(server.issuer)
    assert endpoints.token_endpoint == server.issuer + "/token"
    assert not endpoints.offers_device_grant
    assert endpoints.default_scope == "offline_access"


def test_an_issuer_with_a_path_is_asked_where_each_standard_puts_the_document():
    assert providers.discovery_urls("https://sso.example/realms/mail") == [
        "https://sso.example/.well-known/oauth-authorization-server/realms/mail",
        "https://sso.example/realms/mail/.well-known/openid-configuration",
    ]


def test_a_document_naming_another_issuer_is_refused():
    with DocumentServer({}) as server:
        server.documents["/.well-known/oauth-authorization-server"] = {
            "issuer": "https://attacker.example", "authorization_endpoint": "https://attacker.example/a",
            "token_endpoint": "https://attacker.example/t"}
        with pytest.raises(OAuthError) as raised:
            providers.resolve(server.issuer)
    assert (raised.value.kind, raised.value.permanent) == ("config", True)
    assert "attacker.example" in raised.value.message


def test_no_document_at_all_is_a_configuration_error():
    with DocumentServer({}) as server, pytest.raises(OAuthError) as raised:
        providers.resolve(server.issuer)
    assert (raised.value.kind, raised.value.permanent) == ("config", True)
    assert "no discovery document" in raised.value.message


def test_a_document_with_a_plain_http_endpoint_elsewhere_is_refused():
    with DocumentServer({}) as server:
        server.documents["/.well-known/oauth-authorization-server"] = {
            "issuer": server.issuer, "authorization_endpoint": server.issuer + "/a",
            "token_endpoint": "http://tokens.example/token"}
        with pytest.raises(OAuthError, match="must use https"):
            providers.resolve(server.issuer)


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "http://127.8.9.1",
                                    "https://login.example.com"])
def test_https_or_a_loopback_host(issuer):
    providers.check_url(issuer, "the issuer")


@pytest.mark.parametrize("issuer", ["http://login.example.com", "http://10.0.0.1", "ftp://127.0.0.1", "example.com",
                                    "http://localhost.example.com"])
def test_plain_http_off_loopback_is_refused_before_any_request(issuer):
    with pytest.raises(OAuthError) as raised:
        providers.resolve(issuer)
    assert raised.value.kind == "config"


def test_microsoft_endpoints_by_tenant():
    default = providers.resolve("microsoft", "")
    assert default.token_endpoint == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    assert default.device_authorization_endpoint.endswith("/organizations/oauth2/v2.0/devicecode")
    assert "offline_access" in default.default_scope and "SMTP.Send" in default.default_scope
    tenant = providers.resolve("microsoft", "0b5f3b4e-1d1e-4a43-9d55-3d3f0e0b1a2c")
    assert tenant.authorization_endpoint.startswith("https://login.microsoftonline.com/0b5f3b4e-")
    with pytest.raises(OAuthError):
        providers.resolve("microsoft", "../evil")


def test_google_offers_no_device_grant_and_asks_for_offline_access():
    google = providers.resolve("google")
    assert not google.offers_device_grant
    assert google.default_scope == "https://mail.google.com/"
    assert dict(google.authorize_params) == {"access_type": "offline", "prompt": "consent"}
