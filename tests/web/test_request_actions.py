"""The request page's side column: statuses (take, waiting on the customer with a snooze,
close, reopen, and the customer's answers through real processed mail), priority and tags.
Each action done twice changes nothing more; a stale page's form is refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from postdesk.desk import profile, snooze
from postdesk.desk import status as request_status
from postdesk.models import Request, RequestEvent, Tag
from postdesk.outbound.reply import ReplyDraft, send_reply
from tests.pipeline.test_processing import Desk, desk, opened  # noqa: F401 (fixture)
from tests.support.desk import customer_writes, req, rita, seen  # noqa: F401 (fixtures)
from tests.support.mail import make_message

pytestmark = pytest.mark.django_db

UTC = dt_timezone.utc


def post(client, req: Request, action: str, **fields):
    return client.post(f"/requests/{req.pk}/{action}/", {**seen(req), **fields})


def fresh(req: Request) -> Request:
    return Request.objects.get(pk=req.pk)


def history(req: Request) -> list[tuple[str, str]]:
    return [(e.kind, e.detail) for e in RequestEvent.objects.filter(request=req).order_by("pk")]


def flashes(client) -> list[str]:
    return [str(m) for m in client.get("/queue/general/").context["messages"]]


# --- statuses -------------------------------------------------------------------------


def test_take_on_a_new_request_opens_it_once(logged_in, staff, req):
    assert post(logged_in, req, "take").status_code == 302
    assert (fresh(req).status, fresh(req).assignee) == ("open", staff)
    assert post(logged_in, req, "take").status_code == 302  # again: nothing more
    assert history(req) == [("assigned", "taken by phil, now open")]


def test_send_and_wait_makes_it_wait_on_the_customer(staff, req):
    send_reply(req.pk, ReplyDraft("Could you send a photo?"), staff, then=request_status.Then.PENDING)
    assert fresh(req).status == "pending" and fresh(req).snooze_until is None
    assert ("pending", "waiting on the customer after the reply") in history(req)


def test_waiting_on_the_customer_without_a_date_and_twice(logged_in, req):
    assert post(logged_in, req, "wait").status_code == 302
    assert (fresh(req).status, fresh(req).snooze_until) == ("pending", None)
    post(logged_in, req, "wait")
    assert history(req) == [("pending", "waiting on the customer")]
    assert flashes(logged_in)[-1] == "Nothing to change."


def test_snooze_until_tomorrow_morning_then_it_wakes_by_itself(logged_in, req):
    post(logged_in, req, "wait", snooze="tomorrow")
    req = fresh(req)
    tomorrow = timezone.now().date() + timedelta(days=1)
    assert req.status == "pending"
    assert req.snooze_until == datetime.combine(tomorrow, snooze.MORNING, tzinfo=UTC)
    (kind, detail), = history(req)
    assert kind == "pending" and detail == f"waiting on the customer until {tomorrow.day} {tomorrow:%b} 09:00 UTC"
    assert "back on" in logged_in.get(f"/requests/{req.pk}/").content.decode()

    assert request_status.wake_due(now=req.snooze_until - timedelta(minutes=1)) == 0
    assert request_status.wake_due(now=req.snooze_until + timedelta(minutes=1)) == 1
    assert (fresh(req).status, fresh(req).snooze_until) == ("open", None)
    assert request_status.wake_due(now=req.snooze_until + timedelta(minutes=2)) == 0  # twice: once
    assert history(req)[-1] == ("woke", f"open again: the snooze until {tomorrow.day} {tomorrow:%b} 09:00 UTC ended")


def test_a_picked_snooze_time_is_in_the_agents_time_zone(logged_in, staff, req):
    profile.save(staff, time_zone="Europe/Berlin")
    day = (timezone.now() + timedelta(days=2)).astimezone(ZoneInfo("Europe/Berlin")).date()
    post(logged_in, req, "wait", until=f"{day:%Y-%m-%d}T09:00", pick="1")
    until = fresh(req).snooze_until
    assert until == datetime.combine(day, snooze.MORNING, tzinfo=ZoneInfo("Europe/Berlin"))
    assert history(req)[-1][1].endswith(f"until {day.day} {day:%b} 09:00 {until.astimezone(ZoneInfo('Europe/Berlin')).tzname()}")


@pytest.mark.parametrize("fields, words", [
    ({"until": "2020-01-01T09:00"}, "already passed"),
    ({"until": "tomorrow-ish"}, "not a date and time"),
    ({"pick": "1", "until": ""}, "pick the date and time"),
    ({"snooze": "someday"}, "unknown snooze choice"),
])
def test_a_snooze_time_that_cannot_be_is_refused_in_words(logged_in, req, fields, words):
    post(logged_in, req, "wait", **fields)
    assert fresh(req).status == "new" and not history(req)
    assert any(words in m for m in flashes(logged_in))


def test_the_quick_choices():
    berlin = ZoneInfo("Europe/Berlin")
    thursday = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)  # already Friday in Berlin
    assert snooze.quick("tomorrow", thursday, berlin) == datetime(2026, 12, 5, 9, 0, tzinfo=berlin)
    assert snooze.quick("3days", thursday, UTC) == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert snooze.quick("week", thursday, UTC) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # next Monday


def test_wake_due_runs_at_most_once_a_minute_and_from_the_queue_page(logged_in, req):
    Request.objects.filter(pk=req.pk).update(status="pending", snooze_until=timezone.now() - timedelta(minutes=5))
    request_status.wake_throttle.reset()
    assert logged_in.get("/queue/general/").status_code == 200
    assert fresh(req).status == "open"
    Request.objects.filter(pk=req.pk).update(status="pending", snooze_until=timezone.now() - timedelta(minutes=5))
    assert request_status.wake_due_now_and_then() is None  # within the minute: not again
    assert fresh(req).status == "pending"


def test_close_and_reopen_each_twice(logged_in, req):
    post(logged_in, req, "close")
    post(logged_in, req, "close")
    post(logged_in, req, "reopen")
    post(logged_in, req, "reopen")
    assert [k for k, _ in history(req)] == ["closed", "reopened"]
    assert fresh(req).status == "open"


def test_closing_a_snoozed_request_forgets_the_snooze(logged_in, req):
    post(logged_in, req, "wait", snooze="week")
    post(logged_in, req, "close")
    assert (fresh(req).status, fresh(req).snooze_until) == ("closed", None)


# --- the customer answers (real mail through the pipeline) ---------------------------------


@pytest.fixture
def mailed(desk, client, django_user_model):
    desk.mailbox("support")
    request, mid = opened(desk)
    agent = django_user_model.objects.create_user("phil", "phil@desk.example", "pw")
    client.force_login(agent)
    return desk, client, request, mid


def test_the_customer_answering_a_waiting_request_opens_it(mailed):
    desk, client, request, mid = mailed
    post(client, request, "wait", snooze="week")
    desk.receive("support", make_message(subject="Re: Printer on fire", in_reply_to=mid, body="Here is the photo.\n"))
    request = fresh(request)
    assert (request.status, request.snooze_until) == ("open", None)
    assert history(request)[-1] == ("status", "open: the customer answered")


def test_the_customer_writing_to_a_closed_request_reopens_it_in_the_history(mailed):
    desk, client, request, mid = mailed
    post(client, request, "close")
    desk.receive("support", make_message(subject="Re: Printer on fire", in_reply_to=mid, body="It is on fire again.\n"))
    assert fresh(request).status == "open"
    assert history(request)[-1] == ("reopened", "reopened by the customer")
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "reopened by the customer" in page


# --- priority and tags --------------------------------------------------------------------


def test_priority_by_name_once(logged_in, req):
    post(logged_in, req, "priority", priority="urgent")
    post(logged_in, req, "priority", priority="urgent")
    assert fresh(req).priority == Request.Priority.URGENT
    assert history(req) == [("priority", "priority urgent")]


def test_an_unknown_priority_is_refused(logged_in, req):
    post(logged_in, req, "priority", priority="whenever")
    assert fresh(req).priority == Request.Priority.NORMAL and not history(req)
    assert any("unknown priority" in m for m in flashes(logged_in))


def test_tags_added_and_removed_once_each(logged_in, req):
    post(logged_in, req, "tags/add", tag="  Billing ")
    post(logged_in, req, "tags/add", tag="billing")
    assert [t.name for t in fresh(req).tags.all()] == ["billing"]
    page = logged_in.get(f"/requests/{req.pk}/").content.decode()
    assert 'aria-label="Remove tag billing"' in page and '<option value="billing">' in page
    post(logged_in, req, "tags/remove", tag="billing")
    post(logged_in, req, "tags/remove", tag="billing")
    assert not fresh(req).tags.exists() and Tag.objects.filter(name="billing").exists()
    assert [k for k, _ in history(req)] == ["tagged", "untagged"]


def test_a_tag_that_cannot_be_is_refused(logged_in, req):
    post(logged_in, req, "tags/add", tag="a<b")
    assert not fresh(req).tags.exists() and not history(req)


# --- stale pages, sign-in, methods --------------------------------------------------------


def test_waiting_after_the_customer_wrote_is_refused(logged_in, req):
    page = seen(req)
    customer_writes(req, "Still there?")
    response = logged_in.post(f"/requests/{req.pk}/wait/", page)
    assert response.status_code == 409 and "a new message from the customer" in response.content.decode()
    assert fresh(req).status == "new"


def test_priority_and_tags_need_the_pages_version_but_no_change_refuses_them(logged_in, req):
    for action, fields in (("priority", {"priority": "high"}), ("tags/add", {"tag": "vip"})):
        assert logged_in.post(f"/requests/{req.pk}/{action}/", fields).status_code == 409
    page = seen(req)
    customer_writes(req, "Hello?")
    assert logged_in.post(f"/requests/{req.pk}/priority/", {**page, "priority": "high"}).status_code == 302
    assert fresh(req).priority == Request.Priority.HIGH


@pytest.mark.parametrize("action", ["wait", "priority", "tags/add", "tags/remove"])
def test_actions_are_post_only_and_signed_in(client, logged_in, req, action):
    assert logged_in.get(f"/requests/{req.pk}/{action}/").status_code == 405
    logged_in.logout()
    response = client.post(f"/requests/{req.pk}/{action}/", seen(req))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_side_column_says_the_status_in_words(logged_in, req):
    Request.objects.filter(pk=req.pk).update(status="pending")
    page = logged_in.get(f"/requests/{req.pk}/").content.decode()
    assert "waiting on customer" in page
    assert 'id="shortcuts"' in page and "<script" not in page.split("</head>")[1]


def test_a_customer_message_threaded_from_an_older_copy_does_not_undo_a_close(req):
    # The pipeline finds the request unlocked, then moves its status: an agent's Close in
    # between must be seen (and the request reopened by the customer, on record), never
    # overwritten by the older copy.  No hook can interleave a real fetch here, hence the
    # direct call to the step that moves the status.
    from postdesk.process import apply

    older = Request.objects.get(pk=req.pk)
    Request.objects.filter(pk=req.pk).update(status="closed")
    apply._follow_up(older, auto_kind="")
    assert fresh(req).status == "open" and older.status == "open"
    assert history(req) == [("reopened", "reopened by the customer")]


@pytest.mark.django_db(transaction=True)
def test_the_workers_sending_loop_wakes_snoozed_requests(req):
    import threading

    from postdesk.worker.sending import SendingLoop
    from tests.support.worker import wait_for

    Request.objects.filter(pk=req.pk).update(status="pending", snooze_until=timezone.now() - timedelta(minutes=1))
    request_status.wake_throttle.reset()  # as in a fresh worker process: it wakes them at once
    stop = threading.Event()
    loop = SendingLoop(stop)
    loop.start()
    try:
        loop.wake.set()
        wait_for(lambda: fresh(req).status == "open", timeout=30, what="the snoozed request woke")
    finally:
        stop.set()
        loop.wake.set()
        loop.join(timeout=10)
    assert [k for k, _ in history(req)] == ["woke"]
