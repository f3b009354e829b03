"""Full-text search (postdesk.desk.search): the normaliser, the query language, the index
kept current where requests change, the queue's search box, and the reindex command.
Against the database the run names: SQLite's FTS5 by default, PostgreSQL's tsvector with
POSTDESK_DATABASE_URL."""

from __future__ import annotations

import hashlib
import io
import itertools
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from postdesk.desk import search, tagging
from postdesk.desk.search import normalise
from postdesk.desk.search.index import TABLE
from postdesk.models import Attachment, Customer, Intake, Mailbox, Message, Request, StaffProfile
from postdesk.outbound.reply import add_note
from postdesk.store import blobs
from tests.support.mail import make_message

_serial = itertools.count()


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def mailbox(db):
    return Mailbox.objects.create(name="support", address="support@desk.example", protocol="maildir", path="/nonexistent")


@pytest.fixture
def staff(db):
    return User.objects.create_user("phil", "phil@example.com", "pw", first_name="Phil")


def request_with(mailbox, subject="Hello", text="", sender="alice@customer.example", name="", to=(), cc=(),
                 customer=None, **fields) -> Request:
    """A request with one message, indexed as apply.py would."""
    customer = customer or Customer.objects.get_or_create(address=sender, defaults={"name": name})[0]
    req = Request.objects.create(subject=subject, mailbox=mailbox, customer=customer, **fields)
    message(req, text, sender=sender, name=name, to=to, cc=cc, subject=subject)
    return req


def message(req, text, sender="alice@customer.example", name="", to=(), cc=(), subject="", direction="in") -> Message:
    raw = f"{next(_serial)} {text}".encode()
    m = Message.objects.create(request=req, mailbox=req.mailbox, fingerprint=hashlib.sha256(raw).hexdigest(),
                               subject=subject, sender_address=sender, sender_name=name, text=text, raw=blobs.put(raw),
                               to=[{"name": "", "address": a} for a in to], cc=[{"name": "", "address": a} for a in cc],
                               direction=direction, date=datetime.now(dt_timezone.utc))
    search.index_request(req.pk)
    return m


def found(q, user=None) -> set[int]:
    return set(search.filter_requests(Request.objects.all(), q, user).values_list("pk", flat=True))


def documents(pk: int) -> int:
    from django.db import connection

    key = "request_id" if connection.vendor == "postgresql" else "rowid"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE {key} = %s", [pk])
        return cursor.fetchone()[0]


# --- the normaliser -----------------------------------------------------------------


def test_normaliser_folds_accents_keeps_umlaut_transliteration_and_cuts_cjk_into_bigrams():
    assert normalise.index_text("Jürgen Straße café ＬＩＣＥＮＣＥＳ") == "jurgen strasse cafe licences juergen"
    assert normalise.tokens("東京都庁へ") == ["東京", "京都", "都庁", "庁へ"]
    assert normalise.tokens("PD-3 a_b") == ["pd", "3", "a", "b"]


# --- words, names, languages ----------------------------------------------------------


def test_words_from_bodies_and_subjects_all_of_them(mailbox):
    a = request_with(mailbox, "Renewal", "We need more licences for the team.")
    b = request_with(mailbox, "Licences", "Please send the invoice.")
    assert found("licences") == {a.pk, b.pk}
    assert found("licences invoice") == {b.pk}
    assert found("licen") == {a.pk, b.pk}  # the beginning of a word finds it
    assert found("nothing-like-this") == set()


def test_german_names_with_and_without_umlauts(mailbox):
    jurgen = request_with(mailbox, "Frage", "Hallo", sender="jm@kunde.example", name="Jürgen Müller")
    juergen = request_with(mailbox, "Frage", "Hallo", sender="jw@kunde.example", name="Juergen Weiß")
    for q in ("Jürgen", "jürgen", "JÜRGEN"):
        assert found(q) == {jurgen.pk, juergen.pk}, q
    assert found("jurgen") == {jurgen.pk}
    assert found("juergen") == {jurgen.pk, juergen.pk}
    assert found("weiss") == {juergen.pk} == found("Weiß")
    assert found("müller") == {jurgen.pk} == found("mueller") == found("muller")


def test_french_accents_either_way(mailbox):
    req = request_with(mailbox, "Problème de facturation", "Le relevé de décembre est erroné.")
    assert found("probleme") == found("Problème") == found("releve decembre") == {req.pk}
    assert found('"relevé de décembre"') == {req.pk}


def test_cjk_words_without_spaces(mailbox):
    tokyo = request_with(mailbox, "お問い合わせ", "東京都庁の近くに住んでいます。")
    kyoto = request_with(mailbox, "質問", "京都の天気はどうですか")
    assert found("東京都") == {tokyo.pk}
    assert found("京都") == {tokyo.pk, kyoto.pk}  # 東京都 holds 京都 too: bigrams, no dictionary
    assert found("天気") == {kyoto.pk}
    assert found("東") == {tokyo.pk}
    assert found("서울") == set()


def test_phrases_need_the_words_in_order(mailbox):
    req = request_with(mailbox, "Printer", "The printer on floor two is on fire.")
    assert found('"printer on floor"') == {req.pk}
    assert found('"floor printer"') == set()
    assert found('"on fire') == {req.pk}  # an unclosed quote ends at the end


def test_numbers_and_the_request_tag(mailbox):
    req = request_with(mailbox, "Order", "order 98765 is late")
    other = request_with(mailbox, f"Re: [PD-{req.pk}] about the other one", "see there")
    for q in (str(req.pk), f"#{req.pk}", f"PD-{req.pk}", f"pd-{req.pk}"):
        assert req.pk in found(q), q
    assert found(f"[PD-{req.pk}]") == {req.pk}
    assert found("98765") == {req.pk}
    assert found(f"[PD-{req.pk}] late") == {req.pk}
    assert other.pk not in found(f"[PD-{req.pk}] late")


# --- operators ------------------------------------------------------------------------


def test_from_and_to(mailbox):
    a = request_with(mailbox, "One", "hi", sender="carol@acme.example", name="Carol Smith", to=["sales@desk.example"])
    b = request_with(mailbox, "Two", "carol@acme.example wrote this", sender="dave@acme.example", cc=["carol@acme.example"])
    assert found("from:carol@acme.example") == {a.pk}
    assert found("from:carol") == {a.pk}
    assert found('from:"Carol Smith"') == {a.pk}
    assert found("to:carol@acme.example") == {b.pk}  # Cc counts as to:
    assert found("to:sales") == {a.pk}
    assert found("carol@acme.example") == {a.pk, b.pk}


def test_status_tag_assignee_mailbox_priority(mailbox, staff):
    other_box = Mailbox.objects.create(name="billing", address="billing@desk.example", protocol="maildir", path="/x")
    a = request_with(mailbox, "Alpha", "common", status="pending", priority=3, assignee=staff)
    b = request_with(other_box, "Beta", "common", status="closed")
    tagging.add_tag(b, "VIP")
    assert found("common status:waiting") == found("common status:pending") == {a.pk}
    assert found("status:closed") == {b.pk}
    assert found("tag:vip") == found("tag:VIP") == {b.pk}
    assert found("tag:vip tag:other") == set()
    assert found("assignee:me", staff) == {a.pk} == found("assignee:phil") == found("assignee:Phil")
    assert found("assignee:none") == {b.pk}
    assert found("mailbox:billing") == {b.pk}
    assert found("priority:urgent") == {a.pk}
    assert found("vip") == {b.pk}  # a tag is a word too


def test_has_attachment_before_after_in_the_members_time_zone(mailbox, staff):
    a = request_with(mailbox, "With file", "see attached")
    b = request_with(mailbox, "Without", "nothing attached")
    Attachment.objects.create(message=a.messages.get(), blob=blobs.put(b"pdf"), position=0, filename="a.pdf",
                              content_type="application/pdf", size=3)
    assert found("attached has:attachment") == {a.pk}
    # 2026-03-01 23:30 UTC is already 2 March in Berlin.
    Request.objects.filter(pk=a.pk).update(created_at=datetime(2026, 3, 1, 23, 30, tzinfo=dt_timezone.utc))
    Request.objects.filter(pk=b.pk).update(created_at=datetime(2026, 3, 1, 12, 0, tzinfo=dt_timezone.utc))
    StaffProfile.objects.create(staff=staff, time_zone="Europe/Berlin")
    assert found("after:2026-03-02", staff) == {a.pk}
    assert found("before:2026-03-02", staff) == {b.pk}
    assert found("attached after:2026-03-01 before:2026-03-03", staff) == {a.pk, b.pk}


def test_unknown_operators_and_bad_values_are_words(mailbox):
    req = request_with(mailbox, "Subject", "the colour:red one, due before 2026-13-45")
    assert found("colour:red") == {req.pk}
    assert found("before:2026-13-45") == {req.pk}
    assert found("status:sleeping") == set()  # searched as the words "status sleeping"
    assert found("!!! ???") == set()


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
       | st.lists(st.sampled_from(['"', "*", "(", ")", ":", "^", "-", "NEAR", "OR", "AND", "NOT", "{", "}", "'", "\\", "&",
                                   "|", "!", "<->", "from:", "status:", "[PD-", "]", "#", "東", "ü", " ", "\x00"]), max_size=12).map("".join))
def test_any_input_never_raises(mailbox, text):
    list(search.filter_requests(Request.objects.all(), text))
    search.snippets_for([1], text)


# --- snippets and the queue page ------------------------------------------------------


def test_snippet_marks_the_words_and_escapes_the_mail(mailbox):
    req = request_with(mailbox, "Hi", "<script>alert(1)</script> Our licences ran out & we <b>need</b> more. " + "x " * 200)
    snippet = search.snippets_for([req.pk], "licences need")[req.pk]
    assert "<mark>licences</mark>" in snippet and "<mark>need</mark>" in snippet
    assert "<script>" not in snippet and "&lt;script&gt;" in snippet and "&amp;" in snippet and "<b>" not in snippet
    assert snippet.endswith("…")


def test_queue_page_shows_snippets_and_points_to_all(client, mailbox, staff):
    client.force_login(staff)
    open_one = request_with(mailbox, "Open one", "the licences are <i>due</i>")
    closed = request_with(mailbox, "Closed one", "old invoice", status="closed")
    page = client.get("/queue/general/", {"q": "licences"}).content.decode()
    assert f'/requests/{open_one.pk}/' in page and "<mark>licences</mark>" in page and "&lt;i&gt;due" in page
    page = client.get("/queue/general/", {"q": "invoice"}).content.decode()
    assert f'/requests/{closed.pk}/' not in page and '1 in All</a>' in page and "/queue/all/?q=invoice" in page
    assert client.get("/queue/general/", {"q": '"(*:'}).status_code == 200


# --- keeping the index current --------------------------------------------------------


def test_notes_tags_and_names_are_indexed_where_they_change(mailbox, staff):
    req = request_with(mailbox, "Quiet", "nothing", name="Al")
    add_note(req.pk, "Customer prefers phone calls", staff)
    assert found("phone calls") == {req.pk}
    tagging.add_tag(req, "billing")
    assert found("billing") == {req.pk}
    tagging.remove_tag(req, "billing")
    assert found("billing") == set()


def test_arriving_mail_is_indexed_in_its_batch_and_a_new_name_reindexes(mailbox):
    from postdesk.process import iter_process, parallel

    def deliver(raw: bytes) -> None:
        intake = Intake.objects.create(mailbox=mailbox, source_key=str(next(_serial)), raw=blobs.put(raw), size=len(raw))
        list(iter_process(ids=[intake.pk]))

    try:
        deliver(make_message(subject="Lizenzen", sender="Jürgen Ärger <jae@kunde.example>", body="Wir brauchen mehr Lizenzen.\n"))
        req = Request.objects.get(subject="Lizenzen")
        assert found("jürgen lizenzen") == {req.pk}
        deliver(make_message(subject="Neu", sender="Jörg Ärger <jae@kunde.example>", body="Noch etwas.\n"))
        assert req.pk in found("jörg")  # the customer's new name reaches their older request
    finally:
        parallel.shutdown()


def test_indexing_twice_leaves_one_document(mailbox):
    req = request_with(mailbox, "Twice", "words")
    search.index_request(req.pk)
    search.index_requests([req.pk, req.pk])
    assert documents(req.pk) == 1
    assert found("words") == {req.pk}


def test_reindex_command_rebuilds_resumes_and_drops_the_gone(mailbox):
    reqs = [request_with(mailbox, f"Number {i}", f"apple{i}") for i in range(5)]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")
    assert found("apple3") == set()
    out = io.StringIO()
    call_command("search", "reindex", "--batch", "2", stdout=out)
    assert "indexed 5 requests" in out.getvalue() and "--from" in out.getvalue()
    assert found("apple3") == {reqs[3].pk}
    call_command("search", "reindex", "--missing", stdout=io.StringIO())
    call_command("search", "reindex", "--from", str(reqs[2].pk), stdout=io.StringIO())
    assert all(documents(r.pk) == 1 for r in reqs)
    gone = reqs[4].pk
    Request.objects.filter(pk=gone).delete()
    call_command("search", "reindex", stdout=io.StringIO())
    assert documents(gone) == 0
    out = io.StringIO()
    call_command("search", "query", "apple1", stdout=out)
    assert "Number 1" in out.getvalue()
