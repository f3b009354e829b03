"""Queues that filter and sort (desk.filters, web/queues.py), and saved views."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest
from django.contrib.auth.models import User
from django.http import QueryDict
from django.utils import timezone

from postdesk.desk import filters, tagging
from postdesk.desk.search import index
from postdesk.models import Customer, Mailbox, Message, Request, SavedView
from postdesk.store import blobs

pytestmark = pytest.mark.django_db
_serial = itertools.count()
S = Request.Status


def make(subject, *, status=S.NEW, assignee=None, mailbox=None, priority=1, tags=(), customer="ann@example.com"):
    cust, _ = Customer.objects.get_or_create(address=customer)
    req = Request.objects.create(subject=subject, status=status, assignee=assignee, mailbox=mailbox, priority=priority, customer=cust)
    raw = f"From: {customer}\r\n\r\n{subject} {next(_serial)}\r\n".encode()
    Message.objects.create(request=req, fingerprint=hashlib.sha256(raw).hexdigest(), sender_address=customer,
                           date=timezone.now(), text=subject, raw=blobs.put(raw))
    for tag in tags:
        tagging.add_tag(req, tag)
    return req


def numbers(response) -> list[int]:
    return [r.pk for r in response.context["page"].object_list]


@pytest.fixture
def desk(staff):
    rita = User.objects.create_user("rita", "rita@example.com", "pw")
    billing = Mailbox.objects.create(name="billing", protocol=Mailbox.Protocol.MAILDIR)
    return {
        "new": make("new one"),
        "open": make("open one", status=S.OPEN, mailbox=billing, priority=3, tags=["vip"]),
        "waiting": make("waiting one", status=S.PENDING, mailbox=billing, tags=["billing"]),
        "closed": make("closed one", status=S.CLOSED),
        "mine": make("mine", status=S.OPEN, assignee=staff, priority=2),
        "mine_waiting": make("mine waiting", status=S.PENDING, assignee=staff),
        "ritas": make("rita's", status=S.OPEN, assignee=rita),
    }


def test_general_holds_unassigned_new_and_open_mine_holds_my_requests_not_closed(logged_in, desk):
    assert set(numbers(logged_in.get("/queue/general/"))) == {desk["new"].pk, desk["open"].pk}
    assert set(numbers(logged_in.get("/queue/mine/"))) == {desk["mine"].pk, desk["mine_waiting"].pk}
    assert len(numbers(logged_in.get("/queue/all/"))) == 7


def test_status_works_on_every_queue_and_several_are_allowed(logged_in, desk):
    assert numbers(logged_in.get("/queue/all/?status=closed")) == [desk["closed"].pk]
    assert numbers(logged_in.get("/queue/general/?status=pending")) == [desk["waiting"].pk]
    both = numbers(logged_in.get("/queue/all/?status=open&status=waiting"))
    assert set(both) == {desk["open"].pk, desk["waiting"].pk, desk["mine"].pk, desk["mine_waiting"].pk, desk["ritas"].pk}
    assert set(numbers(logged_in.get("/queue/all/?status=open,closed&assignee=none"))) == {desk["open"].pk, desk["closed"].pk}


def test_filters_combine(logged_in, desk, staff):
    assert numbers(logged_in.get("/queue/all/?mailbox=billing&tag=vip")) == [desk["open"].pk]
    assert numbers(logged_in.get("/queue/all/?priority=urgent")) == [desk["open"].pk]
    assert set(numbers(logged_in.get("/queue/all/?priority=high&priority=3"))) == {desk["open"].pk, desk["mine"].pk}
    assert set(numbers(logged_in.get("/queue/all/?assignee=me"))) == {desk["mine"].pk, desk["mine_waiting"].pk}
    assert numbers(logged_in.get("/queue/all/?assignee=rita")) == [desk["ritas"].pk]
    assert numbers(logged_in.get("/queue/mailbox/billing/?status=pending")) == [desk["waiting"].pk]


def test_dates_are_whole_days(logged_in, desk):
    Request.objects.filter(pk=desk["closed"].pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    today = timezone.localdate()
    old = numbers(logged_in.get(f"/queue/all/?created_before={today - dt.timedelta(days=5)}"))
    assert old == [desk["closed"].pk]
    assert desk["closed"].pk not in numbers(logged_in.get(f"/queue/all/?created_after={today}"))
    assert len(numbers(logged_in.get(f"/queue/all/?updated_after={today}"))) == 7


def test_sorting(logged_in, desk):
    by_priority = numbers(logged_in.get("/queue/all/?sort=priority"))
    assert by_priority[:2] == [desk["open"].pk, desk["mine"].pk]
    by_number = numbers(logged_in.get("/queue/all/?sort=number&order=asc"))
    assert by_number == sorted(by_number)
    by_status = [Request.objects.get(pk=n).status for n in numbers(logged_in.get("/queue/all/?sort=status&order=asc"))]
    assert by_status == sorted(by_status, key=lambda s: filters.STATUS_RANK[s])


def test_unknown_values_are_ignored_with_a_visible_note(logged_in, desk):
    response = logged_in.get("/queue/all/?status=bogus&priority=huge&assignee=nobody-here&mailbox=nope&tag=zzz"
                             "&created_after=yesterday&sort=colour&order=sideways&page=x")
    assert response.status_code == 200
    assert len(numbers(response)) == 7
    page = response.content.decode()
    for said in ["unknown status “bogus”", "unknown priority “huge”", "no staff member “nobody-here”",
                 "no mailbox “nope”", "no tag “zzz”", "“yesterday” is not a date", "unknown sort “colour”"]:
        assert said in page


def test_a_query_goes_back_to_the_same_url():
    text = "status=open&status=pending&assignee=me&tag=vip&priority=urgent&created_after=2026-11-01&sort=priority&order=asc"
    query = filters.from_get(QueryDict(text))
    assert query.to_query_string() == text
    assert filters.from_query_string(query.to_query_string()) == query
    assert filters.from_get(QueryDict("")).to_query_string() == ""
    assert query.sorted_by("priority").endswith("sort=priority&order=desc")


def test_the_page_shows_chips_sort_links_and_columns(logged_in, desk):
    page = logged_in.get("/queue/all/?tag=vip&sort=priority").content.decode()
    assert "tag: vip" in page and 'aria-sort="descending"' in page
    assert 'class="tag">vip<' in page and "urgent" in page
    assert 'name="pick"' in page and 'form="bulk"' in page


def test_saved_views_save_rename_delete_twice(logged_in, staff, desk):
    saved = logged_in.post("/views/save/", {"name": "My urgent", "queue": "all", "query": "priority=urgent&assignee=me&page=3"})
    assert saved.status_code == 302 and saved["Location"] == "/queue/all/?assignee=me&priority=urgent"
    logged_in.post("/views/save/", {"name": "My urgent", "queue": "all", "query": "priority=urgent&assignee=me"})
    view = SavedView.objects.get(staff=staff)
    assert view.query == "assignee=me&priority=urgent"
    assert "My urgent" in logged_in.get("/queue/general/").content.decode()
    logged_in.post(f"/views/{view.pk}/rename/", {"name": "Billing, waiting"})
    logged_in.post(f"/views/{view.pk}/rename/", {"name": "Billing, waiting"})
    assert SavedView.objects.get().name == "Billing, waiting"
    logged_in.post(f"/views/{view.pk}/delete/")
    assert logged_in.post(f"/views/{view.pk}/delete/").status_code == 302
    assert not SavedView.objects.exists()


def test_saved_views_are_each_members_own(logged_in, staff):
    other = User.objects.create_user("rita", "rita@example.com", "pw")
    theirs = filters.save_view(other, "Rita's", "all", "status=open")
    logged_in.post(f"/views/{theirs.pk}/delete/")
    logged_in.post(f"/views/{theirs.pk}/rename/", {"name": "mine now"})
    assert SavedView.objects.get().name == "Rita's"
    assert "Rita's" not in logged_in.get("/queue/all/").content.decode()
    assert logged_in.get("/views/save/").status_code == 405


def test_a_saved_view_of_an_impossible_queue_opens_all(logged_in, staff):
    response = logged_in.post("/views/save/", {"name": "odd", "queue": "mailbox:a/b", "query": "status=open"})
    assert response["Location"] == "/queue/all/?status=open"
    assert logged_in.get("/queue/all/").status_code == 200


# --- ?numbers=1: a neighbouring page's request numbers, for j / k on a request page ----------


def page_numbers(client, url: str, **params) -> dict:
    response = client.get(url, {"numbers": "1", **params})
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    return response.json()


def test_the_numbers_answer_is_the_pages_requests_with_the_queues_filters_sort_and_search(client, logged_in):
    made = Request.objects.bulk_create([Request(subject=f"invoice {i}" if i % 3 == 0 else f"printer {i}", status=S.OPEN)
                                        for i in range(60)] + [Request(subject="closed printer", status=S.CLOSED)])
    index.index_requests([r.pk for r in made])  # as process/apply.py does for arriving mail
    first, second = page_numbers(logged_in, "/queue/general/"), page_numbers(logged_in, "/queue/general/", page="2")
    assert first["numbers"] == numbers(logged_in.get("/queue/general/"))  # the page as shown, in its order
    assert second["numbers"] == numbers(logged_in.get("/queue/general/", {"page": 2}))
    assert (first["page"], len(first["numbers"]), first["has_next"], first["has_previous"]) == (1, 50, True, False)
    assert (second["page"], len(second["numbers"]), second["has_next"], second["has_previous"]) == (2, 10, False, True)
    assert second["links"] == [f"/requests/{n}/" for n in second["numbers"]]
    assert page_numbers(logged_in, "/queue/general/", page="9")["page"] == 2  # out of range: the last, and says so

    ascending = sorted(r.pk for r in made[:60])
    assert page_numbers(logged_in, "/queue/general/", sort="number", order="asc", page="2")["numbers"] == ascending[50:]
    invoices = page_numbers(logged_in, "/queue/general/", q="invoice", sort="number", order="asc")
    assert invoices["numbers"] == [r.pk for r in made[:60:3]] and not invoices["has_next"]
    assert page_numbers(logged_in, "/queue/all/", q="printer", status="closed")["numbers"] == [made[-1].pk]

    client.logout()
    response = client.get("/queue/general/", {"numbers": "1", "page": "2"})
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
