"""`postdesk serve`: the real WSGI server process (waitress + WhiteNoise)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

STOP_SECONDS = 10

# No proxy from the environment: these requests are for loopback only.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_http_no_redirect = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def get(url: str, headers: dict | None = None, follow: bool = True):
    try:
        return (_http if follow else _http_no_redirect).open(urllib.request.Request(url, headers=headers or {}), timeout=10)
    except urllib.error.HTTPError as exc:
        return exc


def start(installation, *args, env=None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "postdesk", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=installation.env(env),
        cwd=installation.work_dir,
    )
    line = proc.stdout.readline()
    match = re.search(r"http://[^ ]+/", line)
    if not match:
        proc.kill()
        raise AssertionError(f"serve printed {line!r}{proc.stdout.read()}")
    return proc, match.group(0)


def stop(proc: subprocess.Popen) -> tuple[int, float]:
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return code, time.monotonic() - began


@pytest.fixture
def server(installation):
    proc, url = start(installation)
    try:
        yield url
    finally:
        if proc.poll() is None:
            stop(proc)


def test_serves_pages_with_security_headers_and_static_files(server):
    response = get(server, follow=False)
    assert response.status == 302 and response.headers["Location"] == "/login/?next=/"
    login = get(server + "login/")
    assert login.status == 200 and "waitress" not in login.headers.get("Server", "").lower()
    policy = login.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert login.headers["X-Frame-Options"] == "DENY"
    assert login.headers["Referrer-Policy"] == "same-origin"
    assert login.headers["X-Content-Type-Options"] == "nosniff"
    assert "Secure" not in (login.headers.get("Set-Cookie") or "")  # plain http on loopback
    css = get(server + "static/postdesk/app.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert css.headers["Content-Security-Policy"] and css.headers["X-Content-Type-Options"] == "nosniff"
    assert get(server + "static/postdesk/keys.js").status == 200
    assert get(server + "admin/", follow=False).status == 302  # the Django admin is there, behind a login


def test_sigterm_stops_it_within_seconds(installation):
    proc, url = start(installation)
    assert get(url + "login/").status == 200
    code, seconds = stop(proc)
    assert code == 0 and seconds < 5
    assert "stopped" in proc.stdout.read()


def test_cookies_are_secure_behind_a_trusted_tls_proxy(installation):
    proc, url = start(installation, env={"POSTDESK_TRUSTED_PROXY": "127.0.0.1"})
    try:
        login = get(url + "login/", headers={"X-Forwarded-Proto": "https"})
        cookie = login.headers["Set-Cookie"]
        assert cookie.startswith("csrftoken=") and "Secure" in cookie
        untrusted = get(url + "login/")  # no forwarded header: plain http
        assert "Secure" not in untrusted.headers["Set-Cookie"]
    finally:
        stop(proc)


def test_forwarded_headers_from_anyone_else_are_ignored(installation):
    proc, url = start(installation)  # no POSTDESK_TRUSTED_PROXY
    try:
        login = get(url + "login/", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in login.headers["Set-Cookie"]
    finally:
        stop(proc)


def test_bad_port_is_a_usage_error(installation):
    proc = installation.run("serve", "--port", "70000", check=False)
    assert proc.returncode == 2 and "not a port number" in proc.stderr
