"""`postdesk worker` and `postdesk run` as real processes (tests/support/worker.py) against
the private Dovecot of tests/servers, Maildirs and misbehaving sockets.

    test_push_and_poll   IMAP IDLE, polling where the server has no IDLE, the Maildir watcher
    test_outages         a server stopped and started, login refused vs. transient errors, silence
    test_lifecycle       SIGTERM (idle, mid-fetch), mailbox edits picked up while running
    test_crash_safety    kill -9 at random moments, restarted: every message exactly once
    test_run             `postdesk run`: first start (admin password, demo mailbox), /metrics

Waiting is always for a condition with a deadline (wait_for, wait_for_log), and
the knobs are small (tests/worker/helpers.FAST), so the suite takes about a minute.
"""
