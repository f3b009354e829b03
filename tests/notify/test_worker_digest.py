"""The worker's sending loop queues due digests and sends them (worker/sending.py)."""

from __future__ import annotations

import threading
import time

from postdesk.notify import preferences
from postdesk.worker.sending import SendingLoop
from tests.notify.conftest import notifications
from tests.support.mail import make_message

WAIT = 30.0  # seconds at most; the loop looks every 2 s


def test_the_sending_loop_sends_a_due_digest(desk, staff, smtp):
    phil = staff("phil")
    desk.mailbox(assign="phil", ack_enabled=False)
    preferences.save(phil, list(preferences.ALL_EVENTS), False, 5)
    desk.receive("support", make_message(subject="Printer"), make_message(subject="Scanner"))
    stop = threading.Event()
    loop = SendingLoop(stop)
    loop.start()
    try:
        deadline = time.monotonic() + WAIT
        while not notifications(smtp) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        loop.wake.set()
        loop.join(10)

    (mail,) = notifications(smtp)
    assert "Printer" in mail.text and "Scanner" in mail.text
