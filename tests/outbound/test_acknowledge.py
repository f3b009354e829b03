"""Acknowledgements end to end: Maildir in, the pipeline, `postdesk send`, the test SMTP server.

What the customer gets (headers that thread and stop loops, the mailbox's From and
template, over STARTTLS with a login), and every case in which nobody gets anything:
automatic mail, bounces, lists, our own addresses, the backlog, the per-sender limit.
Each refusal is in the request's history.
"""

from __future__ import annotations

import pytest

from postdesk.models import Mailbox, Outgoing
from tests.outbound.conftest import ALICE, SUPPORT, acks, history, request_of
from tests.support.mail import make_bounce, make_message, maildir_deliver, new_message_id


def test_acknowledgement_threads_stops_loops_and_uses_the_mailboxs_template(desk, smtp):
    desk.mailbox(from_name="Example Support",
                 ack_subject="We got it: {{ subject }} (#{{ number }})",
                 ack_body="Dear {{ customer_name }},\n\nrequest {{ number }} ({{ tag }}) about \"{{ subject }}\" "
                          "reached {{ mailbox_name }} from {{ customer_address }}.\n")
    mid = new_message_id()
    desk.receive("support", make_message(subject="Printer on fire", sender=ALICE, message_id=mid))
    request = request_of(mid)
    n = request.pk

    (result,) = desk.send()

    assert result["status"] == "sent"
    (mail,) = smtp.received
    # The session: STARTTLS first (the server offers AUTH only then), then the login.
    assert mail.tls and mail.login == smtp.username
    assert smtp.logins == [(smtp.username, True)]
    assert (mail.mail_from, mail.rcpt_tos) == (SUPPORT, ["alice@customer.example"])
    msg = mail.message
    assert msg["From"] == f"Example Support <{SUPPORT}>"
    assert msg["To"] == "Alice Customer <alice@customer.example>"
    assert msg["Subject"] == f"Re: We got it: Printer on fire (#{n}) [PD-{n}]"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["In-Reply-To"] == mid and msg["References"] == mid
    body = mail.text
    assert body == (f"Dear Alice Customer,\n\nrequest {n} ([PD-{n}]) about \"Printer on fire\" reached Example Support "
                    "from alice@customer.example.\n")
    # The conversation holds what was sent, under the Message-ID the customer's answer will quote.
    (out,) = acks()
    assert (out.status, out.attempts, out.last_error) == (Outgoing.Status.SENT, 1, "")
    assert out.smtp_reply.startswith("250") and out.sent_at is not None
    assert (out.message.direction, out.message.request_id) == ("out", n)
    assert mail.message_id == f"<{out.message.message_id}>"
    assert history(request, "acknowledged") == ["acknowledged: acknowledgement queued to alice@customer.example"]


def test_default_template_answers_the_reply_to_address(desk, smtp):
    desk.mailbox()
    mid = new_message_id()
    desk.receive("support", make_message(subject="Invoice missing", sender="Bob Buyer <bob@customer.example>",
                                         headers={"Reply-To": "Accounts <accounts@customer.example>"}, message_id=mid))
    n = request_of(mid).pk

    desk.send()

    (mail,) = smtp.received
    assert mail.rcpt_tos == ["accounts@customer.example"]
    msg = mail.message
    assert msg["From"] == SUPPORT  # no display name set: the bare address
    assert msg["Subject"] == f"Re: Invoice missing [PD-{n}]"
    body = mail.text
    assert body.startswith("Hello Bob Buyer,\n") and f"as request [PD-{n}]" in body and body.rstrip().endswith("support")


def test_names_with_commas_and_accents_stay_one_address(desk, smtp):
    desk.mailbox(from_name="Équipe Support, Inc.")
    desk.receive("support", make_message(subject="Drucker brennt – Hilfe", sender='"Zoë, Ümlaut" <zoe@customer.example>'))

    desk.send()

    msg = smtp.received[0].message
    assert [(a.display_name, a.addr_spec) for a in msg["From"].addresses] == [("Équipe Support, Inc.", SUPPORT)]
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [("Zoë, Ümlaut", "zoe@customer.example")]
    assert msg["Subject"].startswith("Re: Drucker brennt – Hilfe [PD-")


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Auto-Submitted": "auto-replied"}, "sent automatically (auto-replied)"),
        ({"Auto-Submitted": "auto-generated"}, "sent automatically (auto-generated)"),
        ({"X-Autoreply": "yes"}, "sent automatically (auto-replied)"),
        ({"Precedence": "auto_reply"}, "sent automatically (auto-generated)"),
        ({"Precedence": "bulk"}, "sent automatically (auto-generated)"),
        ({"Precedence": "list"}, "sent automatically (list)"),
        ({"List-Id": "Printer owners <printers.lists.example>"}, "sent automatically (list)"),
        ({"X-Auto-Response-Suppress": "All"}, "sent automatically (auto-generated)"),
    ],
    ids=["auto-replied", "auto-generated", "x-autoreply", "precedence-auto-reply", "precedence-bulk", "precedence-list",
         "list-id", "response-suppress"],
)
def test_no_acknowledgement_for_automatic_or_list_mail(desk, smtp, headers, reason):
    desk.mailbox()
    mid = new_message_id()
    desk.receive("support", make_message(subject="Out of office", headers=headers, message_id=mid))
    request = request_of(mid)

    assert desk.send() == []
    assert smtp.received == [] and acks() == []
    assert history(request, "not-acknowledged") == [f"not-acknowledged: not acknowledged: {reason}"]


def test_no_acknowledgement_for_a_bounce(desk, smtp):
    desk.mailbox()
    lost = make_message(subject="Our newsletter", sender=SUPPORT, to="gone@customer.example")
    mid = new_message_id("mx.customer.example")
    desk.receive("support", make_bounce(lost, recipient="gone@customer.example", message_id=mid))
    request = request_of(mid)

    assert desk.send() == [] and smtp.received == []
    assert history(request, "not-acknowledged") == ["not-acknowledged: not acknowledged: sent automatically (bounce)"]


@pytest.mark.parametrize("which", ["address", "from_address"])
def test_no_acknowledgement_to_our_own_addresses(desk, smtp, which):
    desk.mailbox()
    desk.mailbox("sales", address="sales@desk.example", from_address="offers@desk.example", ack_enabled=False)
    ours = {"address": "Sales <sales@desk.example>", "from_address": "Offers <OFFERS@desk.example>"}[which]
    mid = new_message_id("desk.example")
    desk.receive("support", make_message(subject="Forwarded: a customer question", sender=ours, message_id=mid))

    assert desk.send() == [] and smtp.received == []
    assert history(request_of(mid), "not-acknowledged") == [
        "not-acknowledged: not acknowledged: the sender is one of our own addresses"]


def test_no_acknowledgement_to_an_address_the_mail_was_delivered_to(desk, smtp):
    """An alias of ours that no setting names: the delivering server says it is ours."""
    desk.mailbox()
    mid = new_message_id("desk.example")
    desk.receive("support", make_message(subject="Copy of a question", sender="Team <team@desk.example>", message_id=mid,
                                         headers={"Delivered-To": "team@desk.example"}))

    assert desk.send() == [] and smtp.received == []
    assert history(request_of(mid), "not-acknowledged") == [
        "not-acknowledged: not acknowledged: the sender is one of our own addresses"]


@pytest.mark.parametrize("ack_backlog", [False, True], ids=["backlog-quiet", "backlog-acknowledged"])
def test_mail_that_was_there_when_the_mailbox_was_connected(desk, smtp, ack_backlog):
    mailbox = desk.mailbox(connect=False, ack_backlog=ack_backlog)
    waiting = [new_message_id() for _ in range(2)]
    for i, mid in enumerate(waiting):
        maildir_deliver(desk.maildir("support"), make_message(subject=f"Old question {i}", message_id=mid))

    desk.fetch("support")  # the first pass: everything in it was waiting before Postdesk
    later = new_message_id()
    desk.receive("support", make_message(subject="New question", message_id=later))
    results = desk.send()

    old_requests = [request_of(mid) for mid in waiting]
    if ack_backlog:
        assert [r["status"] for r in results] == ["sent"] * 3 and len(smtp.received) == 3
        assert all(history(r, "acknowledged") for r in old_requests)
    else:
        assert [r["status"] for r in results] == ["sent"] and len(smtp.received) == 1
        for request in old_requests:
            assert history(request, "not-acknowledged") == [
                "not-acknowledged: not acknowledged: it was in the mailbox before Postdesk connected"]
    (newest,) = [m for m in smtp.received if m.message["In-Reply-To"] == later]
    assert newest.rcpt_tos == ["alice@customer.example"]
    assert Mailbox.objects.get(pk=mailbox.pk).ack_backlog is ack_backlog


def test_at_most_five_acknowledgements_per_sender_a_day(desk, smtp):
    desk.mailbox()
    mids = [new_message_id() for _ in range(6)]
    # Three in one batch, three in the next: the limit counts both what was sent and what the batch plans.
    desk.receive("support", *[make_message(subject=f"Question {i}", message_id=mids[i]) for i in range(3)])
    desk.send()
    desk.receive("support", *[make_message(subject=f"Question {i}", message_id=mids[i]) for i in range(3, 6)])
    carol = new_message_id()
    desk.receive("support", make_message(subject="Another sender", sender="Carol <carol@customer.example>",
                                         message_id=carol))
    desk.send()

    to_alice = [m for m in smtp.received if m.rcpt_tos == ["alice@customer.example"]]
    assert len(to_alice) == 5
    assert len(smtp.received) == 6  # Carol has her own five
    refused = [mid for mid in mids if history(request_of(mid), "not-acknowledged")]
    assert len(refused) == 1
    assert history(request_of(refused[0]), "not-acknowledged") == [
        "not-acknowledged: not acknowledged: 5 acknowledgements to this sender today already"]


def test_the_daily_limit_is_the_mailboxs_setting(desk, smtp):
    desk.mailbox(ack_daily_limit=1)
    desk.receive("support", make_message(subject="First"), make_message(subject="Second"))
    desk.send()
    assert len(smtp.received) == 1


def test_an_acknowledgement_that_cannot_be_made_costs_only_itself(desk, smtp):
    mailbox = desk.mailbox()
    # Past the settings' check (written to the table directly): the template no longer compiles.
    Mailbox.objects.filter(pk=mailbox.pk).update(ack_body="Hello {% if %}")
    mid = new_message_id()

    report = desk.receive("support", make_message(subject="Printer on fire", message_id=mid))

    assert (report["created"], report["quarantined"]) == (1, 0)  # the customer's request is there
    (event,) = history(request_of(mid), "not-acknowledged")
    assert event.startswith("not-acknowledged: not acknowledged: it could not be made: ")
    assert desk.send() == [] and smtp.received == [] and acks() == []
