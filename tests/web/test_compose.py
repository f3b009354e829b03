"""Answering from the request page (issue 15): Reply and Note apart, the three send
buttons, reply-all, signatures, canned replies, drafts; each action twice changes
nothing more."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from postdesk import crashpoints, pipeline
from postdesk.desk import canned, drafts, profile, signature
from postdesk.models import CannedReply, Draft, Mailbox, Message, Outgoing, Request
from postdesk.outbound.reply import ReplyDraft, ReplyError, add_note, send_reply
from postdesk.store import blobs
from tests.support.desk import seen
from tests.support.mail import make_message, maildir_deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(tmp_path):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "md" / sub).mkdir(parents=True)
    return Mailbox.objects.create(
        name="support", address="support@desk.example", from_name="Desk Support", protocol="maildir",
        path=str(tmp_path / "md"), after_import="keep", smtp_host="127.0.0.1", smtp_port=2525, smtp_security="none",
        last_success_at=timezone.now(),
    )


@pytest.fixture
def customer_request(mailbox) -> Request:
    """Alice wrote to us, with Bob in Cc and Carol in To (and our other address in Cc)."""
    maildir_deliver(mailbox.path, make_message(
        subject="Printer on fire", message_id="<first@customer.example>", sender="Alice Customer <alice@customer.example>",
        to="Support <support@desk.example>, Carol <carol@customer.example>",
        cc="Bob <bob@customer.example>, support@desk.example"))
    pipeline.fetch_mailbox(mailbox)
    return Request.objects.get()


def page(client, req) -> str:
    return client.get(f"/requests/{req.pk}/").content.decode()


def sent_text(message: Message) -> str:
    return message_from_bytes(blobs.read(message.raw_id), policy=default_policy).get_body(("plain",)).get_content()


def post_reply(client, req, text="We are on it.", **fields):
    req.refresh_from_db()
    return client.post(f"/requests/{req.pk}/reply/", {**seen(req), "text": text, **fields}, follow=True)


# --- Reply and Note -------------------------------------------------------------------


def test_reply_and_note_are_two_forms_with_their_own_tabs(logged_in, customer_request):
    html = page(logged_in, customer_request)
    assert 'id="tab-reply"' in html and 'id="tab-note"' in html
    reply_form = html[html.index('class="reply-form"'):html.index('id="note-pane"')]
    note_form = html[html.index('class="note-form"'):]
    # The reply's form has no way to the note URL, the note's none to the reply URL.
    assert "/note/" not in reply_form and "/reply/" not in note_form
    assert "Internal note: colleagues only" in note_form and "Add note" in note_form
    assert 'id="note-text"' in note_form and 'id="reply-text"' in reply_form
    # Without JavaScript both are shown (compose.js makes them tabs).
    assert 'role="tabpanel" aria-labelledby="tab-reply">' in html and 'role="tabpanel" aria-labelledby="tab-note">' in html


def test_a_note_is_never_sent(logged_in, customer_request):
    response = logged_in.post(f"/requests/{customer_request.pk}/note/",
                              {**seen(customer_request), "text": "Calling them.", "then": "closed", "cc": "x@customer.example"},
                              follow=True)
    assert "Note added (not sent to the customer)" in response.content.decode()
    assert not Outgoing.objects.exists()
    assert Message.objects.get(direction="note").text == "Calling them."
    customer_request.refresh_from_db()
    assert customer_request.status == "new"  # a note neither sends nor closes


@pytest.mark.parametrize(("then", "status", "said"), [
    ("open", "open", ""), ("pending", "pending", "waiting on the customer"), ("closed", "closed", "is closed"),
])
def test_send_buttons_set_the_status(logged_in, customer_request, then, status, said):
    response = post_reply(logged_in, customer_request, then=then)
    flash = response.content.decode()
    assert "Reply queued to alice@customer.example" in flash and said in flash
    customer_request.refresh_from_db()
    assert customer_request.status == status
    assert Outgoing.objects.count() == 1


def test_an_unknown_then_sends_nothing(logged_in, customer_request):
    response = post_reply(logged_in, customer_request, then="deleted")
    assert "Not sent: unknown status" in response.content.decode()
    assert not Outgoing.objects.exists()


def test_send_and_close_twice_sends_once(logged_in, customer_request):
    """The second POST comes from a page that saw the request open: refused as stale."""
    form = {**seen(customer_request), "text": "Done.", "then": "closed"}
    assert logged_in.post(f"/requests/{customer_request.pk}/reply/", form).status_code == 302
    assert logged_in.post(f"/requests/{customer_request.pk}/reply/", form).status_code == 409
    assert Outgoing.objects.count() == 1
    customer_request.refresh_from_db()
    assert customer_request.status == "closed"


# --- Reply all -----------------------------------------------------------------------------


def test_reply_all_offers_the_others_but_not_our_address(logged_in, customer_request):
    html = page(logged_in, customer_request)
    offer = html[html.index('id="reply-all"'):]
    offer = offer[:offer.index("</label>")]
    assert "carol@customer.example" in offer and "bob@customer.example" in offer
    assert "support@desk.example" not in offer and "alice@customer.example" not in offer


def test_reply_all_adds_them_in_cc(logged_in, customer_request):
    post_reply(logged_in, customer_request, reply_all="1", cc="Bob <bob@customer.example>, dan@customer.example")
    out = Outgoing.objects.get()
    assert out.recipients[0] == "alice@customer.example"
    assert sorted(out.recipients[1:]) == ["bob@customer.example", "carol@customer.example", "dan@customer.example"]


def test_without_reply_all_only_the_customer(logged_in, customer_request):
    post_reply(logged_in, customer_request)
    assert Outgoing.objects.get().recipients == ["alice@customer.example"]


def reply_all_offer(client, req) -> str:
    html = page(client, req)
    offer = html[html.index('id="reply-all"'):]
    return offer[:offer.index("</label>")]


def test_reply_all_never_offers_where_the_mail_was_delivered(logged_in, tmp_path):
    """A Maildir mailbox with no address set knows its own address only from the
    delivering server's Delivered-To: it is ours on every message of the request, and
    so is a sub-address of it (desk+billing@)."""
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "bare" / sub).mkdir(parents=True)
    bare = Mailbox.objects.create(name="bare", protocol="maildir", path=str(tmp_path / "bare"), after_import="keep",
                                  last_success_at=timezone.now())
    maildir_deliver(bare.path, make_message(
        subject="Invoice", message_id="<inv@customer.example>", to="Desk <desk@ours.example>",
        cc="colleague@customer.example", headers={"Delivered-To": "desk@ours.example"}))
    pipeline.fetch_mailbox(bare)
    req = Request.objects.get()
    assert "desk@ours.example" not in reply_all_offer(logged_in, req)
    assert "colleague@customer.example" in reply_all_offer(logged_in, req)
    # The customer answers, to us and a sub-address of ours; this copy says nothing of its delivery.
    maildir_deliver(bare.path, make_message(
        subject="Re: Invoice", in_reply_to="<inv@customer.example>", to="desk@ours.example, desk+billing@ours.example",
        cc="Colleague <colleague@customer.example>"))
    pipeline.fetch_mailbox(bare)
    assert Message.objects.filter(request=req, direction="in").count() == 2
    offer = reply_all_offer(logged_in, req)
    assert "colleague@customer.example" in offer and "ours.example" not in offer


# --- Signatures ----------------------------------------------------------------------------


def test_signatures_are_added_at_send_below_the_separator(logged_in, staff, mailbox, customer_request):
    profile.save(staff, signature="Phil, {mailbox}")
    mailbox.signature = "Desk Support · +49 30 1234"
    mailbox.save()
    assert "Phil, Desk Support" in page(logged_in, customer_request)  # the preview
    post_reply(logged_in, customer_request, text="Fixed.")
    text = sent_text(Message.objects.get(direction="out")).replace("\r\n", "\n")
    assert text.startswith("Fixed.\n\n-- \nPhil, Desk Support\n\nDesk Support · +49 30 1234")


def test_a_signature_is_never_added_twice(staff, mailbox):
    block = signature.signature_for(staff, mailbox)
    assert block == ""
    assert signature.signed("Hi", "") == "Hi"
    assert signature.signed("Hi\n\n-- \nPhil", "Phil") == "Hi\n\n-- \nPhil"
    assert signature.signed("Hi", "Phil") == "Hi\n\n-- \nPhil"


# --- Canned replies ------------------------------------------------------------------------


def test_placeholders_filled_and_unknown_ones_left_visible(staff, customer_request):
    values = canned.values_for(customer_request, staff)
    text = canned.fill("Dear {customer_name} ({customer_email}), #{request_number}: {agent_name} of {mailbox}. {typo}", values)
    assert text == f"Dear Alice Customer (alice@customer.example), #{customer_request.pk}: phil of Desk Support. {{typo}}"


def test_canned_replies_offered_per_mailbox(logged_in, mailbox, customer_request):
    other = Mailbox.objects.create(name="sales", protocol="maildir", path="/nonexistent")
    CannedReply.objects.create(title="Thanks", body="Thanks {customer_name}!")
    CannedReply.objects.create(title="Sales only", body="Buy more.", mailbox=other)
    html = page(logged_in, customer_request)
    assert 'data-text="Thanks Alice Customer!"' in html and "Sales only" not in html


def test_insert_without_javascript_keeps_the_text_as_a_draft(logged_in, staff, customer_request):
    chosen = CannedReply.objects.create(title="Thanks", body="Thanks {customer_name}!")
    url = f"/requests/{customer_request.pk}/canned/"
    response = logged_in.post(url, {"text": "Hello,", "cc": "bob@customer.example", "canned": chosen.pk})
    assert response.status_code == 302 and response["Location"].endswith("#reply-pane")
    assert drafts.load(staff, customer_request.pk, "reply").text == "Hello,\n\nThanks Alice Customer!"
    assert "Hello,\n\nThanks Alice Customer!</textarea>" in page(logged_in, customer_request)


def test_canned_admin_pages_are_for_admins(staff, as_admin):
    member = Client()
    member.force_login(staff)
    assert member.get("/staff/canned/").status_code == 403
    assert member.post("/staff/canned/add/", {"title": "Hi", "body": "x"}).status_code == 403
    assert as_admin.post("/staff/canned/add/", {"title": "Hi", "body": "Hello {customer_name}"}).status_code == 302
    reply = CannedReply.objects.get()
    assert "Hello {customer_name}" in as_admin.get("/staff/canned/").content.decode()
    as_admin.post(f"/staff/canned/{reply.pk}/", {"title": "Hi", "body": "Hello again"})
    reply.refresh_from_db()
    assert reply.body == "Hello again"
    for _ in range(2):  # twice: the second deletes nothing and says so
        response = as_admin.post(f"/staff/canned/{reply.pk}/delete/", follow=True)
    assert "already deleted" in response.content.decode() and not CannedReply.objects.exists()


# --- Drafts --------------------------------------------------------------------------------


def test_drafts_saved_restored_and_deleted_when_sent(logged_in, staff, customer_request):
    url = f"/requests/{customer_request.pk}/draft/"
    for _ in range(2):  # saving the same twice keeps one draft
        response = logged_in.post(url, {"kind": "reply", "text": "Half a thought", "cc": "bob@customer.example"})
        assert response.status_code == 200 and response.json()["saved"]
    logged_in.post(url, {"kind": "note", "text": "A note in progress"})
    assert Draft.objects.count() == 2
    html = page(logged_in, customer_request)
    assert "Half a thought</textarea>" in html and "A note in progress</textarea>" in html and "Draft saved" in html
    post_reply(logged_in, customer_request, text="Half a thought, finished.")
    assert list(Draft.objects.values_list("kind", flat=True)) == ["note"]  # the note's draft stays


def test_a_draft_emptied_is_gone_and_drafts_are_per_member(logged_in, client, staff, admin, customer_request):
    drafts.save(admin, customer_request.pk, "reply", "Ada's words")
    url = f"/requests/{customer_request.pk}/draft/"
    logged_in.post(url, {"kind": "reply", "text": "Phil's words"})
    assert "Ada's words" not in page(logged_in, customer_request)
    logged_in.post(url, {"kind": "reply", "text": ""})
    assert list(Draft.objects.values_list("text", flat=True)) == ["Ada's words"]


def test_draft_endpoint_needs_a_kind_and_csrf(logged_in, staff, customer_request):
    assert logged_in.post(f"/requests/{customer_request.pk}/draft/", {"kind": "email", "text": "x"}).status_code == 400
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)
    assert csrf_client.post(f"/requests/{customer_request.pk}/draft/", {"kind": "reply", "text": "x"}).status_code == 403


@pytest.mark.parametrize("kind", ["reply", "note"])
def test_a_crash_after_the_answer_committed_leaves_no_draft(logged_in, staff, customer_request, monkeypatch, kind):
    """The draft goes in the answer's own transaction: a crash right after the commit
    (before the page answers) cannot leave it to come back and be sent twice."""
    drafts.save(staff, customer_request.pk, kind, "We are on it.")
    monkeypatch.setenv("POSTDESK_CRASH_AT", f"after-{kind}")
    monkeypatch.setenv("POSTDESK_CRASH_MODE", "raise")
    with pytest.raises(crashpoints.CrashInjected):
        logged_in.post(f"/requests/{customer_request.pk}/{kind}/", {**seen(customer_request), "text": "We are on it."})
    assert Message.objects.filter(direction="out" if kind == "reply" else "note").count() == 1
    assert drafts.load(staff, customer_request.pk, kind) is None


@pytest.mark.parametrize("kind", ["reply", "note"])
def test_an_answer_that_rolls_back_keeps_its_draft(staff, customer_request, kind):
    """The delete is in the answer's transaction: whatever undoes the answer undoes it."""
    drafts.save(staff, customer_request.pk, kind, "Kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        answer(kind, customer_request, staff)
        raise RuntimeError("the caller's transaction fails after the answer")
    assert drafts.load(staff, customer_request.pk, kind).text == "Kept"
    assert not Message.objects.exclude(direction="in").exists()


def test_a_reply_refused_inside_its_transaction_keeps_the_draft(staff, mailbox, customer_request):
    """Refused after the draft's delete (no sending account, checked under the lock)."""
    drafts.save(staff, customer_request.pk, "reply", "Kept")
    Mailbox.objects.filter(pk=mailbox.pk).update(smtp_host="")
    with pytest.raises(ReplyError):
        answer("reply", customer_request, staff)
    assert drafts.load(staff, customer_request.pk, "reply").text == "Kept"
    Mailbox.objects.filter(pk=mailbox.pk).update(smtp_host="127.0.0.1")
    answer("reply", customer_request, staff)
    assert drafts.load(staff, customer_request.pk, "reply") is None


def answer(kind: str, req, author) -> Message:
    if kind == "reply":
        return send_reply(req.pk, ReplyDraft("We are on it."), author, discard_draft=True)
    return add_note(req.pk, "Calling them.", author, discard_draft=True)


def test_a_refused_reply_keeps_its_text_as_the_draft(logged_in, staff, customer_request):
    response = post_reply(logged_in, customer_request, text="Hi", cc="not an address")
    assert "Not sent" in response.content.decode()
    assert drafts.load(staff, customer_request.pk, "reply").text == "Hi"
    assert not Outgoing.objects.exists()


def test_the_mailbox_form_has_the_signature():
    from postdesk.web.mailboxes import MailboxForm

    assert MailboxForm().fields["signature"].label == "Signature"
