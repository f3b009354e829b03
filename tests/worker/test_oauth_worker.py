"""The worker on OAuth2 mailboxes over minutes: tokens that run out every 60 s are
refreshed ahead of time, so no pass ever fails, IDLE pushes and polls both go on,
and an ended grant is reported as one permanent "reconnect" failure and a metric.
"""

from __future__ import annotations

import time

from tests.support.mail import make_message
from tests.support.worker import WorkerProcess, metric, wait_for
from tests.worker.helpers import FAST, add_imap_by, connect_by_device, failures, show, wait_for_requests

TOKEN_LIFETIME = 60  # seconds, as the issue asks
RUN_FOR = 200  # seconds: three token lifetimes and more
EVERY = 20  # seconds between deliveries


def test_tokens_expiring_every_minute_never_fail_a_pass_pushed_or_polled(installation, dovecot, oauth):
    pushed, polled = dovecot.new_user(prefix="oauthidle"), dovecot.new_user(prefix="oauthpoll")
    for user in (pushed, polled):
        oauth.add_user(user.username, user.password)
    oauth.access_lifetime = TOKEN_LIFETIME
    add_imap_by("oauth", installation, dovecot, "pushed", pushed, oauth, security="tls")  # IDLE; polls every 300 s
    add_imap_by("oauth", installation, dovecot, "polled", polled, oauth, security="starttls", poll=5,
                options=("--pass-deadline", "60"))

    with WorkerProcess(installation, env=FAST) as worker:
        started = time.monotonic()
        delivered = 0
        while time.monotonic() - started < RUN_FOR:
            delivered += 1
            dovecot.append(pushed, make_message(subject=f"pushed {delivered}"))
            dovecot.append(polled, make_message(subject=f"polled {delivered}"))
            wait_for_requests(worker, "pushed", delivered, timeout=30)
            wait_for_requests(worker, "polled", delivered, timeout=30)
            time.sleep(max(0.0, started + delivered * EVERY - time.monotonic()))

        assert failures(worker, "pushed") == [] and failures(worker, "polled") == [], worker.output()
        assert not worker.matching(r"WARNING|ERROR"), worker.output()
        samples = worker.metrics()
        for name in ("pushed", "polled"):
            assert metric(samples, "postdesk_mailbox_oauth_refresh_failures", mailbox=name) == 0
    # Each grant was refreshed as its tokens ran out (at least once a lifetime).
    assert oauth.refreshes(pushed.username) >= RUN_FOR // TOKEN_LIFETIME - 1
    assert oauth.refreshes(polled.username) >= RUN_FOR // TOKEN_LIFETIME - 1
    subjects = sorted(r["subject"] for r in installation.requests())
    assert subjects == sorted([f"pushed {n}" for n in range(1, delivered + 1)] + [f"polled {n}" for n in range(1, delivered + 1)])


def test_an_ended_grant_says_reconnect_and_imports_again_once_reconnected(installation, dovecot, oauth):
    user = dovecot.new_user(prefix="oauthrevoked")
    oauth.add_user(user.username, user.password)
    oauth.access_lifetime = 20  # the worker soon needs a refresh, which the revoked grant refuses
    add_imap_by("oauth", installation, dovecot, "support", user, oauth, poll=2)
    dovecot.append(user, make_message(subject="Before the revocation"))

    with WorkerProcess(installation, env=FAST) as worker:
        wait_for_requests(worker, "support", 1)
        oauth.revoke_user(user.username)  # consent removed at the provider
        dovecot.append(user, make_message(subject="While signed out"))

        wait_for(lambda: show(installation, "support")["oauth"]["state"] == "expired", 60,
                 what=lambda: worker.output())
        shown = show(installation, "support")
        assert any("reconnect the mailbox" in w for w in shown["warnings"]), shown
        assert shown["last_error_kind"] == "oauth", shown
        listed = installation.run("mailbox", "list").stdout
        assert "sign-in expired: reconnect the mailbox" in listed, listed
        wait_for(lambda: (metric(worker.metrics(), "postdesk_mailbox_oauth_refresh_failures", mailbox="support") or 0) >= 1,
                 30, what=lambda: worker.output())

        # An admin reconnects; the worker picks the new grant up without a restart.
        printed = connect_by_device(installation, oauth, "support", user.username)
        assert "connected" in printed
        wait_for_requests(worker, "support", 2, timeout=60)
    assert sorted(r["subject"] for r in installation.requests()) == ["Before the revocation", "While signed out"]
