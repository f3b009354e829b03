"""`postdesk mailbox connect NAME`: sign a mailbox in from a terminal.

The device grant (RFC 8628) where the provider offers one: print the URL and the code,
show that we are waiting, finish with the granted scopes.  Otherwise (Google for mail
scopes), or with --no-device, the loopback redirect (RFC 8252): print the URL to open
in a browser on this machine, and catch the redirect on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from postdesk.models import Mailbox
from postdesk.oauth import flows, tokens
from postdesk.oauth.flows import DeviceProgress

PROGRESS_EVERY = 15.0  # seconds between "still waiting" lines


@dataclass(frozen=True)
class Connected:
    mailbox: str
    grant: str  # "device" or "loopback"
    scope: str

    @property
    def summary(self) -> str:
        return f"connected: scopes {self.scope}"


def connect(mailbox: Mailbox, say: Callable[[str], None], *, no_device: bool = False, timeout: float = 600,
            actor=None) -> Connected:
    """Run the interaction; OAuthError on any failure (nothing is saved then)."""
    client = tokens.client_for(mailbox)
    if client.endpoints.offers_device_grant and not no_device:
        answer = _by_device(client, say)
        grant = "device"
    else:
        answer = _by_loopback(client, say, timeout)
        grant = "loopback"
    saved = tokens.connect(mailbox, answer, actor)
    return Connected(mailbox.name, grant, saved.granted_scope)


def _by_device(client: flows.Client, say: Callable[[str], None]) -> flows.TokenResponse:
    device = flows.start_device(client)
    say(f"To sign in, open {device.verification_uri} and enter the code {device.user_code}")
    if device.verification_uri_complete:
        say(f"(or open {device.verification_uri_complete})")
    say(f"waiting for the sign-in (the code is valid for {device.expires_in // 60} min)...")
    return flows.poll_device(client, device, progress=_progress_printer(say))


def _progress_printer(say: Callable[[str], None]) -> Callable[[DeviceProgress], None]:
    last = [0.0]

    def progress(p: DeviceProgress) -> None:
        if p.waited - last[0] >= PROGRESS_EVERY:
            last[0] = p.waited
            say(f"still waiting ({p.waited:.0f} s; the code runs out in {p.expires_in:.0f} s)")

    return progress


def _by_loopback(client: flows.Client, say: Callable[[str], None], timeout: float) -> flows.TokenResponse:
    with flows.LoopbackReceiver() as receiver:
        pending = flows.start_authorization(client, receiver.redirect_uri)
        say("Open this URL in a browser on this machine and sign in:")
        say(pending.url)
        say(f"waiting for the sign-in to come back to {receiver.redirect_uri} (up to {timeout:.0f} s)...")
        query = receiver.wait(timeout)
    return flows.finish_authorization(client, pending, query)
