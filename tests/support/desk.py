"""For the live desk's tests: the hidden fields a request page's forms carry
(postdesk.web.staleness), and a request a customer writes to.

    seen(request)          what a page opened now sends with Reply, Note, Take, Assign, ...
    req, rita              fixtures: a request with one customer message in a mailbox that
                           can send; a second staff member
    customer_writes(req)   a new incoming message on it
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from postdesk.desk import search
from postdesk.models import Mailbox, Message, Request
from postdesk.store import blobs
from postdesk.web.staleness import seen_now


def seen(request: Request | int) -> dict[str, str]:
    """The fields of a page rendered now; call it again after a change to stay fresh."""
    pk = request if isinstance(request, int) else request.pk
    return seen_now(Request.objects.get(pk=pk)).as_fields()


_serial = itertools.count()


@pytest.fixture
def rita(db):
    return User.objects.create_user("rita", "rita@example.com", "pw")


@pytest.fixture
def req(db) -> Request:
    mailbox = Mailbox.objects.create(name="support", address="support@desk.example", protocol="maildir", path="/nonexistent",
                                     smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none")
    request = Request.objects.create(subject="Printer on fire", mailbox=mailbox)
    customer_writes(request)
    return request


def customer_writes(request: Request, text: str = "It is on fire.") -> Message:
    raw = f"From: alice@customer.example\r\n\r\n{text} {next(_serial)}\r\n".encode()
    message = Message.objects.create(request=request, mailbox=request.mailbox, fingerprint=hashlib.sha256(raw).hexdigest(),
                                     message_id=f"<m{next(_serial)}@customer.example>", sender_address="alice@customer.example",
                                     sender_name="Alice", date=timezone.now(), text=text, raw=blobs.put(raw))
    search.index_request(request.pk)  # as process/apply.py does for arriving mail
    return message


