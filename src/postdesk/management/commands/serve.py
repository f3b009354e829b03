"""postdesk serve: the staff web UI on a production WSGI server (waitress)."""

from __future__ import annotations

import ipaddress

from django.conf import settings

from postdesk.management.base import FAILED, USAGE, PostdeskCommand
from postdesk.web import server


class Command(PostdeskCommand):
    help = "Serve the staff web UI (waitress + WhiteNoise): serve [--host 127.0.0.1] [--port 8000]."

    def add_arguments(self, parser):
        server.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            web = server.listen(options)
        except server.ListenError as exc:
            raise self.fail(str(exc), USAGE if exc.usage else FAILED) from None
        self.stdout.write(f"Postdesk web UI listening on {server.url_of(web)}")
        for hint in _hints(options["host"]):
            self.stdout.write(hint)
        self.stdout.flush()
        server.serve_forever(web)
        self.stdout.write("Postdesk web UI stopped")


def _hints(host: str) -> list[str]:
    """What someone serving beyond this machine needs to know."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return []
    return [
        f"note: browsers must use a host name listed in POSTDESK_ALLOWED_HOSTS (now: {', '.join(settings.ALLOWED_HOSTS)})",
        "note: put a TLS reverse proxy in front and set POSTDESK_TRUSTED_PROXY to its address, so cookies are marked secure",
    ]
