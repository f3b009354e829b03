"""A separate Postdesk process for the OAuth tests (test_processes.py): run as
`python tests/oauth/grant_process.py COMMAND NAME` with an installation's environment.

    add NAME [due]         stdin: {"issuer", "client_id", "username", "scope"}: an OAuth mailbox; with
                           "access_token", "refresh_token", "expires_in" too, connected (tokens.connect);
                           with `due`, its access token then runs out in 5 s (inside the refresh margin)
    token NAME [due] [AT]  (due: as above, first) at Unix time AT: tokens.access_token; prints the grant
    grant NAME             prints the grant's state, generation, failures, lease holder, tokens' sha256

Tokens are printed only as sha256 digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time


def main(command: str, name: str, *rest: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    import django

    django.setup()
    from postdesk.management.base import ensure_migrated

    ensure_migrated()
    print(json.dumps(COMMANDS[command](name, *rest)), flush=True)


def _add(name: str, *due: str) -> dict:
    from postdesk.models import Mailbox
    from postdesk.oauth import tokens
    from postdesk.oauth.flows import TokenResponse

    given = json.load(sys.stdin)
    mailbox = Mailbox.objects.create(name=name, protocol="imap", host="127.0.0.1", port=993, security="tls",
                                     username=given["username"], auth="oauth", oauth_provider=given["issuer"],
                                     oauth_client_id=given["client_id"], oauth_scope=given.get("scope", ""))
    if "access_token" not in given:
        return {"added": name}
    tokens.connect(mailbox, TokenResponse.from_token(given, given.get("scope", "")))
    return _due(name) if due else _grant(name)


def _due(name: str) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    from postdesk.models import OAuthGrant

    OAuthGrant.objects.filter(mailbox__name=name).update(access_expires_at=timezone.now() + timedelta(seconds=5))
    return _grant(name)


def _token(name: str, *args: str) -> dict:
    from postdesk.models import Mailbox
    from postdesk.oauth import tokens

    if "due" in args:
        _due(name)
    at = next((a for a in args if a != "due"), "")
    mailbox = Mailbox.objects.get(name=name)
    if at:
        time.sleep(max(0.0, float(at) - time.time()))
    token = tokens.access_token(mailbox)
    return {"sha256": _digest(token), **_grant(name)}


def _grant(name: str) -> dict:
    from postdesk import secrets
    from postdesk.models import OAuthGrant

    g = OAuthGrant.objects.get(mailbox__name=name)
    return {"state": g.state, "generation": g.generation, "refresh_failures": g.refresh_failures,
            "access_sha256": _digest(secrets.decrypt(g.access_token)),
            "refresh_sha256": _digest(secrets.decrypt(g.refresh_token)), "lease_owner": g.refresh_lease_owner}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


COMMANDS = {"add": _add, "token": _token, "grant": _grant}

if __name__ == "__main__":
    main(*sys.argv[1:])
