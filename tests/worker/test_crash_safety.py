"""kill -9 at random moments: the worker is killed K times while mail arrives and
is fetched and processed, and started again each time.  At the end every message
is exactly one request or follow-up, and every message was acknowledged at its
server as the mailbox's policy says (IMAP: moved to Imported; POP3: deleted).

The moments are random (a delay after the start, or the n-th request of a life,
or during the start itself); the seed is in every failure message, and
POSTDESK_TEST_SEED=N repeats a run.
"""

from __future__ import annotations

import os
import random
import re
import signal
from dataclasses import dataclass

import pytest

from tests.support.mail import make_message, new_message_id
from tests.support.worker import WorkerProcess, metric, wait_for
from tests.worker.helpers import FAST, add_imap_by, exported

PER_MAILBOX = 10  # messages per mailbox: N = 20
KILLS = 4  # K
# Messages that answer an earlier one of the same mailbox (index -> parent index).
REPLIES = {4: 0, 7: 1, 9: 4}
# Which messages arrive in which life (the first chunk is one batch of 12 over both
# mailboxes: more than parallel.POOL_THRESHOLD, so the parser pool is in play).
CHUNKS = [range(0, 6), range(6, 7), range(7, 8), range(8, 9), range(9, 10)]
assert len(CHUNKS) == KILLS + 1


@dataclass
class Planned:
    mailbox: str
    index: int
    message_id: str
    raw: bytes


def plan(mailbox: str) -> list[Planned]:
    ids = [new_message_id() for _ in range(PER_MAILBOX)]
    planned = []
    for index, message_id in enumerate(ids):
        parent = REPLIES.get(index)
        if parent is None:
            raw = make_message(subject=f"{mailbox} question {index}", message_id=message_id)
        else:
            raw = make_message(subject=f"Re: {mailbox} question {parent}", message_id=message_id,
                               in_reply_to=ids[parent], references=ids[parent], body=f"Follow-up {index}\n")
        planned.append(Planned(mailbox, index, message_id, raw))
    return planned


def requests_of(message: int, replies: dict[int, int]) -> int:
    """The index of the message that opened `message`'s request."""
    while message in replies:
        message = replies[message]
    return message


@pytest.mark.parametrize("auth", ["password", "oauth"])
def test_killed_at_random_moments_and_restarted_every_message_is_imported_exactly_once(installation, dovecot, oauth, auth):
    seed = int(os.environ.get("POSTDESK_TEST_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    context = f"seed={seed} (POSTDESK_TEST_SEED={seed} repeats this run), {auth} sign-in"

    imap_user, pop3_user = dovecot.new_user(prefix="crashimap"), dovecot.new_user(prefix="crashpop")
    for user in (imap_user, pop3_user):
        oauth.add_user(user.username, user.password)
    # OAuth: tokens that last 20 s, so kills also land around refreshes and rotations.
    oauth.access_lifetime = 20
    add_imap_by(auth, installation, dovecot, "imap", imap_user, oauth, after="move:Imported", poll=1)
    add_imap_by(auth, installation, dovecot, "pop3", pop3_user, oauth, protocol="pop3", after="delete", poll=1)
    messages = {"imap": plan("imap"), "pop3": plan("pop3")}
    users = {"imap": imap_user, "pop3": pop3_user}

    def deliver(chunk: range) -> None:
        for name, planned in messages.items():
            for index in chunk:
                dovecot.append(users[name], planned[index].raw)

    moments = []
    for life, chunk in enumerate(CHUNKS[:-1]):
        early = rng.random() < 0.5
        if early:
            deliver(chunk)  # waiting when the worker starts
        how = rng.choice(["starting", "delay", "delay", "request"])
        worker = WorkerProcess(installation, env=FAST)
        try:
            if how == "starting":  # before or just after "worker started"
                worker.start(wait=False)
                seconds = rng.uniform(0.2, 1.5)
                _sleep_or_exit(worker, seconds)
                moment = f"{seconds:.2f} s after the start"
            else:
                worker.start()
                if not early:
                    deliver(chunk)  # arrives while it runs: IDLE or the next poll
                if how == "delay":
                    seconds = rng.uniform(0.0, 1.2)
                    _sleep_or_exit(worker, seconds)
                    moment = f"{seconds:.2f} s after 'worker started'"
                else:
                    nth = rng.randint(1, max(1, 2 * len(chunk)))
                    try:
                        worker.wait_for_log(r"request (created|threaded)", count=nth, timeout=5)
                        moment = f"after request line {nth}"
                    except AssertionError:
                        moment = f"after 5 s without request line {nth}"
            if not early and how == "starting":
                deliver(chunk)  # at the last moment before the kill: the next life finds it
            assert worker.running, f"life {life}: the worker exited on its own\n{worker.output()}\n{context}"
            code = worker.kill()
        finally:
            if worker.running:
                worker.kill()
        # (A parser process being spawned at that moment may print a traceback as it loses
        # its parent: that is the kill, not a failure.)
        assert code == -signal.SIGKILL, (code, context)
        moments.append(f"life {life}: {'before' if early else 'during'}, killed {moment}")

    # The last life: the last messages arrive, and it runs until everything is done.
    with WorkerProcess(installation, env=FAST) as worker:
        deliver(CHUNKS[-1])
        total = 2 * PER_MAILBOX

        def done():
            samples = worker.metrics()
            counts = {s: metric(samples, "postdesk_intake_messages", status=s) for s in
                      ("pending", "processed", "duplicate", "quarantined")}
            return counts["processed"] + counts["duplicate"] + counts["quarantined"] == total and counts["pending"] == 0 \
                and dovecot.message_count(imap_user) == 0 and dovecot.message_count(pop3_user) == 0 and counts

        counts = wait_for(done, 30, interval=0.2, what=lambda: f"{worker.output()}\n{moments}\n{context}")
        code, _ = worker.stop()
    assert code == 0, (worker.output(), context)
    assert not worker.matching(r"Traceback|ERROR"), (worker.output(), context)
    assert counts == {"pending": 0, "processed": total, "duplicate": 0, "quarantined": 0}, (counts, moments, context)

    # Exactly N requests or follow-ups: each Message-ID once, each reply in its parent's request.
    requests = exported(installation)
    where = {}
    for request in requests:
        for message in request["messages"]:
            message_id = f"<{message['message_id']}>"  # exported without the brackets
            assert message_id not in where, (f"imported twice: {message_id}", moments, context)
            where[message_id] = request["number"]
    planned = [p for name in messages for p in messages[name]]
    assert sorted(where) == sorted(p.message_id for p in planned), (moments, context)
    for p in planned:
        opener = messages[p.mailbox][requests_of(p.index, REPLIES)]
        assert where[p.message_id] == where[opener.message_id], (p.mailbox, p.index, moments, context)
    assert len(requests) == 2 * (PER_MAILBOX - len(REPLIES)), (moments, context)
    assert installation.json("quarantine", "list") == [], context

    # Acknowledged as the policies say: IMAP moved every message to Imported, once; POP3 deleted them.
    with dovecot.imap(imap_user, "Imported") as client:
        headers = client.fetch(client.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    moved = sorted(re.search(rb"<[^>]+>", data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]).group(0).decode()
                   for data in headers.values())
    assert moved == sorted(p.message_id for p in messages["imap"]), (moments, context)
    assert dovecot.message_count(imap_user) == 0 and dovecot.message_count(pop3_user) == 0


def _sleep_or_exit(worker: WorkerProcess, seconds: float) -> None:
    """Wait `seconds` (a random kill moment), or less if the worker exits by itself."""
    try:
        wait_for(lambda: not worker.running, seconds, interval=0.01)
    except AssertionError:
        pass
