"""The production web server: waitress in front of Django, static files by WhiteNoise.

Why waitress and not gunicorn: it is pure Python, runs on every platform, and
serves from threads inside one process, so `postdesk run` (issue 5) can start
the web UI and the mail worker together in a single command.  Django's
runserver is never used: it is single-purpose development code.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_THREADS = 8
# Open connections waitress keeps before it stops accepting: every open page keeps
# one alive (live.js polls), and waitress's default of 100 would leave the 101st
# browser, and any other request on a new connection, waiting in the backlog until
# some page closes.  Under select()'s limit of 1024 file descriptors.
CONNECTION_LIMIT = 500


@dataclass(frozen=True)
class ServerOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0 picks a free port (the tests use it)
    threads: int = DEFAULT_THREADS
    # The address of a reverse proxy whose X-Forwarded-Proto/-Host/-For we
    # trust: behind a TLS proxy this is how Django learns the page is HTTPS
    # (secure cookies, HSTS).  Empty: nothing forwarded is trusted.
    trusted_proxy: str = ""


def add_arguments(parser) -> None:
    """--host, --port, --threads: the same for `postdesk serve` and `postdesk run`."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="request threads (default 8)")


def check_port(port: int) -> str | None:
    """The error for a --port that is no port, or None."""
    return None if 0 <= port <= 65535 else f"--port {port}: not a port number"


class ListenError(Exception):
    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage  # a wrong option rather than a busy port


def listen(options: dict):
    """The bound server for `serve`/`run` options (--host, --port, --threads)."""
    if error := check_port(options["port"]):
        raise ListenError(error, usage=True)
    try:
        return make_server(options_from_env(options["host"], options["port"], options["threads"]))
    except OSError as exc:
        raise ListenError(f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}") from None


def options_from_env(host: str, port: int, threads: int) -> ServerOptions:
    return ServerOptions(host=host, port=port, threads=threads, trusted_proxy=os.environ.get("POSTDESK_TRUSTED_PROXY", ""))


def make_server(options: ServerOptions):
    """A bound (listening) waitress server for the Postdesk WSGI application."""
    from waitress import create_server

    from postdesk.wsgi import application

    extra = {}
    if options.trusted_proxy:
        extra = {
            "trusted_proxy": options.trusted_proxy,
            "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-host", "x-forwarded-for"},
            "clear_untrusted_proxy_headers": True,
        }
    return create_server(
        application,
        host=options.host,
        port=options.port,
        threads=options.threads,
        ident="Postdesk",
        # A help desk's uploads (staff attachments, later) are bounded by the
        # mailbox size limits, not here; 64 MB keeps a rogue client in check.
        max_request_body_size=64 * 1024 * 1024,
        connection_limit=CONNECTION_LIMIT,
        **extra,
    )


def url_of(server) -> str:
    host = server.effective_host
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{server.effective_port}/"


def serve_forever(server) -> None:
    """Run until SIGTERM or SIGINT; requests in progress are not waited for
    (every change a page makes is one database transaction, so none is half-done)."""

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
