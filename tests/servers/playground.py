"""An OAuth2 playground: the tests' own provider and a Dovecot that takes its tokens,
on loopback, for trying an OAuth2 mailbox by hand (README, "Try it").

    .venv/bin/python -m tests.servers.playground [--web-port 8000]

It starts both, makes a mail user who is also a user at the provider, puts two
messages in the user's INBOX, registers a public client for the CLI (device grant,
loopback redirect) and for the web UI's Connect (redirect URL on --web-port), prints
the commands to add and connect the mailbox, and runs until Ctrl-C.  Everything
lives in a temporary directory that is removed on exit.
"""

from __future__ import annotations

import argparse
import signal
import threading

from tests.servers.dovecot import Dovecot
from tests.servers.oauth_provider import OAuthProvider
from tests.support.mail import make_message

CLIENT_ID = "postdesk-playground"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web-port", type=int, default=8000, help="where `postdesk run` listens (default 8000)")
    args = parser.parse_args()

    provider = OAuthProvider.start()
    dovecot = Dovecot.create(introspection_url=provider.introspection_endpoint)
    try:
        dovecot.start()
        user = dovecot.new_user("alice")
        provider.add_user(user.username, user.password)
        provider.add_client(CLIENT_ID, redirect_uris=(
            "http://127.0.0.1/callback",  # the CLI's loopback redirect (any port, RFC 8252)
            f"http://127.0.0.1:{args.web_port}/mailboxes/oauth/callback/",
            f"http://localhost:{args.web_port}/mailboxes/oauth/callback/"))
        for subject in ("Printer on fire", "Password reset, please"):
            dovecot.append(user, make_message(subject=subject))
        print(instructions(provider, dovecot, user.username, user.password), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        dovecot.cleanup()
        provider.down()


def instructions(provider: OAuthProvider, dovecot: Dovecot, username: str, password: str) -> str:
    return f"""
OAuth2 playground running (Ctrl-C ends it and removes everything):
  provider (issuer)  {provider.issuer}
  IMAP               {dovecot.host}:{dovecot.ports.imap} (STARTTLS, CA {dovecot.ca_file})
  sign in as         {username} / {password}

In another terminal, from the Postdesk checkout:

  P=.venv/bin/postdesk
  $P mailbox add playground --protocol imap --host {dovecot.host} --port {dovecot.ports.imap} \\
      --security starttls --ca-file {dovecot.ca_file} --username {username} --after keep \\
      --oauth {provider.issuer} --oauth-client-id {CLIENT_ID} --oauth-scope "mail offline_access"
  $P mailbox connect playground     # open the URL it prints, enter the code, sign in as above, Allow
  $P mailbox test playground        # ok, 2 messages in INBOX
  $P fetch --mailbox playground     # two new requests
  $P mailbox show playground --json # "oauth": provider, granted scope, state ok; never a token

Or in the web UI (bash scripts/run, port 8000): Mailboxes, the mailbox, Connect.
"""


if __name__ == "__main__":
    main()
