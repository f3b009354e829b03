#!/usr/bin/env python3
"""Notification latency: from the APPEND of a customer's message to a routed IMAP
mailbox, to the notification to its assignee accepted by the SMTP server.

    .venv/bin/python bench/notify.py                  # 50 messages at 2/s
    .venv/bin/python bench/notify.py --count 100 --rate 4

Starts a private Dovecot (tests/servers/dovecot.py), the test SMTP server
(tests/servers/smtp.py: STARTTLS with the tests' CA, AUTH), and an isolated
installation (SQLite in a temporary data dir, or a fresh PostgreSQL database
when POSTDESK_DATABASE_URL is set).  The mailbox routes new requests to the
staff member "phil"; notifications leave through the system account
(POSTDESK_SMTP_URL).  `postdesk worker` runs as a child process, with IMAP IDLE.

Each message's delay: the time the SMTP server answered the end of DATA with
250 for the notification of its request, minus the wall-clock time just before
its APPEND (one machine, one clock).  Goal: p50 < 2 s, p95 < 4 s.  Exits 0
either way (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timezone

from _worker import World, backend_note, message, percentile, wait_for

from tests.servers.smtp import SmtpServer

P50_GOAL, P95_GOAL = 2.0, 4.0
READY_TIMEOUT = 60.0
SETTLE_SECONDS = 2.0
STAFF = "phil"
STAFF_EMAIL = "phil@staff.example"


class TimedSmtpServer(SmtpServer):
    """The test server, noting when it took each mail (time.time(), at the 250)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted_at: list[tuple[float, object]] = []

    def _record(self, received) -> None:
        self.accepted_at.append((time.time(), received))
        super()._record(received)


def request_of(received) -> int | None:
    value = received.message["X-Postdesk-Request"]
    return int(value) if value else None


def run(world: World, smtp: TimedSmtpServer, count: int, rate: float, seed: int) -> dict:
    from postdesk.models import Message

    rng = random.Random(seed)
    world.installation.run("staff", "add", STAFF, "--email", STAFF_EMAIL)
    user = world.server.new_user("notify")
    world.add_mailbox("notify", user)
    world.installation.run("mailbox", "edit", "notify", "--assign", STAFF)
    env = {
        "POSTDESK_SMTP_URL": f"smtp://{smtp.username}@{smtp.host}:{smtp.port}/?ca_file={smtp.ca_file}",
        "POSTDESK_SMTP_PASSWORD": smtp.password,
        "POSTDESK_NOTIFY_FROM": "postdesk@staff.example",
    }
    worker = world.worker(env, log_name="worker-notify.log")
    worker.start()
    if worker.wait_for_log("worker started", READY_TIMEOUT) is None:
        raise SystemExit(f"the worker did not start:\n{worker.log_since_start()[-3000:]}")
    tag = f"notify-{seed}"
    _, warm_raw = message(tag, 0, rng)
    world.server.append(user, warm_raw)
    if not wait_for(lambda: len(smtp.accepted_at) >= 1, READY_TIMEOUT):
        raise SystemExit(f"the warm-up notification was not sent:\n{worker.log_since_start()[-3000:]}")
    time.sleep(SETTLE_SECONDS)
    done_before = len(smtp.accepted_at)

    messages = [message(tag, i, rng) for i in range(1, count + 1)]
    appended: dict[str, float] = {}
    interval = 1.0 / rate
    with world.server.imap(user) as client:
        start = time.time()
        for i, (mid, raw) in enumerate(messages):
            pause = start + i * interval - time.time()
            if pause > 0:
                time.sleep(pause)
            appended[mid] = time.time()
            client.append("INBOX", raw)
    wait_for(lambda: len(smtp.accepted_at) >= done_before + count, 60, step=0.2)
    worker.stop()

    by_request = dict(Message.objects.filter(message_id__in=list(appended)).values_list("request_id", "message_id"))
    delays = []
    for accepted, received in smtp.accepted_at[done_before:]:
        mid = by_request.get(request_of(received))
        if mid is not None and received.rcpt_tos == [STAFF_EMAIL]:
            delays.append(accepted - appended[mid])
    return {"count": count, "rate": rate, "notified": len(delays), "delays": delays}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50, help="messages (default 50)")
    parser.add_argument("--rate", type=float, default=2.0, help="APPENDs per second (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.monotonic()
    with World("postdesk-bench-notify-") as world:
        smtp = TimedSmtpServer.create(world.tmp / "smtp")
        try:
            print(f"database: {backend_note()}; started {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC", flush=True)
            print(f"{args.count} messages at {args.rate:g}/s, IMAP IDLE, routed to {STAFF} ...", flush=True)
            result = run(world, smtp, args.count, args.rate, args.seed)
        finally:
            smtp.stop()

    d = result["delays"]
    print()
    print(f"{'sent':>5} {'rate':>6} {'notified':>9} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    print(f"{result['count']:>5} {result['rate']:>5g}/s {result['notified']:>9} {percentile(d, 50):>8.3f} "
          f"{percentile(d, 95):>8.3f} {max(d, default=float('nan')):>8.3f}")
    print("(delay: the SMTP server's 250 for the notification - time before APPEND)")
    if result["notified"] < result["count"]:
        print(f"FAIL: {result['count'] - result['notified']} of {result['count']} notifications not accepted in time")
    p50, p95 = percentile(d, 50), percentile(d, 95)
    print(f"p50 {p50:.3f} s  goal < {P50_GOAL:g} s  {'PASS' if p50 < P50_GOAL else 'FAIL'}")
    print(f"p95 {p95:.3f} s  goal < {P95_GOAL:g} s  {'PASS' if p95 < P95_GOAL else 'FAIL'}")
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
