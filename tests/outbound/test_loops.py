"""Mail loops cannot start: machines never answer machines.

    two desks         two Postdesk installations (one in this process, one run as commands,
                      each with its own database) whose mailboxes write to each other, the
                      test SMTP server delivering each one's mail into the other's Maildir
    one desk          our acknowledgement delivered back into another of our own mailboxes
    out-of-office     a customer's auto-reply to our acknowledgement threads quietly
"""

from __future__ import annotations

from postdesk.models import Intake, Message, Outgoing, Request, RequestEvent
from tests.outbound import cli
from tests.outbound.conftest import ALICE, acks, history, request_of
from tests.support.mail import make_message, maildir_deliver, new_message_id

DESK_A, DESK_B = "support@desk-a.example", "help@desk-b.example"


def test_two_desks_acknowledging_each_other_do_not_loop(desk, smtp, tmp_path):
    # Desk A runs in this process; desk B is another installation with its own
    # database (and its own tag prefix), run as `postdesk` commands.
    desk.mailbox("support", address=DESK_A)
    b = cli.Desk(tmp_path / "desk-b", "HELP")
    try:
        inbox = {DESK_A: desk.maildir("support"), DESK_B: cli.add_sending_maildir(b, smtp, "help", DESK_B)}
        # A person at each desk writes to the other from the desk's shared address: a new
        # request from a person, so each desk acknowledges it, to the other desk.
        maildir_deliver(inbox[DESK_A], make_message(subject="Your parcel", sender=f"Help <{DESK_B}>", to=DESK_A))
        maildir_deliver(inbox[DESK_B], make_message(subject="Our invoice", sender=f"Support <{DESK_A}>", to=DESK_B))

        relayed = 0
        for _ in range(2):  # round 1: each desk acknowledges; round 2: the acknowledgements arrive, nothing answers
            desk.fetch("support")
            desk.send()
            cli.fetch(b)
            cli.send(b)
            for mail in smtp.received[relayed:]:  # the SMTP server delivers
                for rcpt in mail.rcpt_tos:
                    maildir_deliver(inbox[rcpt], mail.data)
            relayed = len(smtp.received)

        assert sorted(m.rcpt_tos[0] for m in smtp.received) == sorted([DESK_A, DESK_B])  # one acknowledgement each way
        assert all(m.message["Auto-Submitted"] == "auto-replied" for m in smtp.received)
        # Desk A: the person's request, acknowledged; desk B's acknowledgement, a request of its own, not answered.
        assert [(o.status, o.recipients) for o in acks()] == [(Outgoing.Status.SENT, [DESK_B])]
        assert Request.objects.count() == 2
        assert [e.detail for e in RequestEvent.objects.filter(kind="not-acknowledged")] == [
            "not acknowledged: sent automatically (auto-replied)"]
        # Desk B: the same.
        found = cli.state(b)
        assert [(o["kind"], o["status"], o["recipients"]) for o in found["outgoing"]] == [("ack", "sent", [DESK_A])]
        assert found["requests"] == 2
        assert [e["detail"] for e in found["events"] if e["kind"] == "not-acknowledged"] == [
            "not acknowledged: sent automatically (auto-replied)"]
    finally:
        b.close()


def test_our_acknowledgement_coming_back_to_another_of_our_mailboxes_is_not_answered(desk, smtp):
    desk.mailbox("support")
    desk.mailbox("sales", address="sales@desk.example")
    desk.receive("support", make_message(subject="Printer on fire", sender=ALICE))
    desk.send()
    (ack,) = smtp.received

    # Say the customer had Cc'd sales, or forwarded our answer there as it was.
    report = desk.receive("sales", ack.data)

    assert desk.send() == []
    assert len(smtp.received) == 1 and len(acks()) == 1
    # Recognised as the very mail we sent (same fingerprint), not imported as a new request.
    assert (report["created"], report["duplicates"]) == (0, 1)
    assert Intake.objects.get(mailbox__name="sales").message.direction == "out"


def test_out_of_office_reply_to_our_acknowledgement_threads_quietly(desk, smtp):
    desk.mailbox()
    mid = new_message_id()
    desk.receive("support", make_message(subject="Printer on fire", sender=ALICE, message_id=mid))
    request = request_of(mid)
    desk.send()
    (ack,) = smtp.received
    Request.objects.filter(pk=request.pk).update(status=Request.Status.CLOSED)  # staff solved it meanwhile
    events_before = RequestEvent.objects.filter(request=request).count()

    away = new_message_id()
    report = desk.receive("support", make_message(
        subject=f"Automatic reply: {ack.message['Subject']}", sender=ALICE, message_id=away,
        in_reply_to=ack.message_id, references=[mid, ack.message_id],
        headers={"Auto-Submitted": "auto-replied"}, body="I am away until Monday.\n"))

    assert (report["created"], report["threaded"]) == (0, 1)
    assert request_of(away) == request
    request.refresh_from_db()
    assert request.status == Request.Status.CLOSED  # an auto-reply does not reopen
    assert RequestEvent.objects.filter(request=request).count() == events_before  # nothing to say about it
    assert Message.objects.get(message_id=away.strip("<>")).auto_submitted == "auto-replied"
    assert desk.send() == [] and len(smtp.received) == 1
    assert Outgoing.objects.count() == 1


def test_a_customers_own_reply_to_our_acknowledgement_is_not_acknowledged_again(desk, smtp):
    desk.mailbox()
    mid = new_message_id()
    desk.receive("support", make_message(subject="Printer on fire", sender=ALICE, message_id=mid))
    desk.send()
    (ack,) = smtp.received

    reply = new_message_id()
    desk.receive("support", make_message(subject=ack.message["Subject"], sender=ALICE, message_id=reply,
                                         in_reply_to=ack.message_id, body="It is still burning.\n"))

    assert request_of(reply) == request_of(mid)
    assert desk.send() == [] and len(smtp.received) == 1
    assert history(request_of(mid), "not-acknowledged") == []  # only new requests are acknowledged at all
