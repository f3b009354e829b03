"""Staff pages: the queues, a request with its conversation, and the actions on it.

Every view here requires a logged-in user (login_required); actions are POST
only (require_POST, so a GET is a 405) and go through Django's CSRF check.
A message's HTML is shown in a sandboxed frame (see mailframe.py); its inline
images come from inline_image, whose signed URL is the credential.
"""

from __future__ import annotations

import hmac
import os
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from postdesk import tags
from postdesk.desk import assignment, customers
from postdesk.desk import search as desk_search
from postdesk.desk import status as request_status
from postdesk.models import Attachment, Mailbox, Message, Request, RequestEvent
from postdesk.notify import hooks as notify_hooks
from postdesk.outbound.reply import ReplyChoice, parent_of, reply_choice
from postdesk.store import blobs
from postdesk.store.attachments import read_attachment
from postdesk.web import compose_panel, disposition, live, mailframe, side_column, staleness, unread
from postdesk.desk import filters
from postdesk.web.queues import (COUNTED, MAILBOX_COUNTED, QUEUES, PageNumbers, nav_counts, numbers_page, page_of, queue_bar,
                                  queue_filter)

PAGE_SIZE = 50
# Shown inline by a browser only as an image, never as a document; anything
# else (SVG included: it can carry script) is served as opaque bytes.
SAFE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# An id beyond a 64-bit integer is no request of ours (and would upset the database).
MAX_NUMBER_DIGITS = 18

def _search_hints(request, page, q: str, current: str) -> dict:
    """A search's snippets on its rows; an empty one in a queue says how many All has."""
    if not q.strip():
        return {}
    if page.object_list:
        found = desk_search.snippets_for([r.pk for r in page.object_list], q)
        for row in page.object_list:
            row.snippet = found.get(row.pk)
        return {}
    if current == "all":
        return {}
    count = desk_search.filter_requests(Request.objects.all(), q, request.user).count()
    return {"elsewhere": count, "elsewhere_url": reverse("postdesk_web:queue", args=["all"]) + "?" + urlencode({"q": q.strip()})}


def _nav(request) -> dict:
    """The counts in the top bar: each queue and each mailbox."""
    counts = nav_counts(request.user)
    queues = [{"key": key, "label": label, "count": counts[key], "url": reverse("postdesk_web:queue", args=[key]),
               "counted": COUNTED[key]} for key, label in QUEUES.items()]
    mailboxes = [{"name": key.split(":", 1)[1], "count": count, "counted": MAILBOX_COUNTED}
                 for key, count in counts.items() if key.startswith("mailbox:")]
    return {"nav_queues": queues, "nav_mailboxes": mailboxes, "failing_mailboxes": _failing(request.user),
            "unstable_mailboxes": _unstable(request.user), "signin_mailboxes": _signin_attention(request.user)}


def _failing(user) -> list[Mailbox]:
    """Mailboxes failing for a while, for the admins' banner (the worker logs the same once)."""
    if not user.is_superuser:
        return []
    from postdesk.mailboxes import failing_after

    return list(Mailbox.objects.filter(enabled=True, consecutive_failures__gte=failing_after()).order_by("name"))


def _unstable(user) -> list[Mailbox]:
    """Mailboxes whose server changes UIDVALIDITY all the time (postdesk.identity), for the admins' banner."""
    if not user.is_superuser:
        return []
    return list(Mailbox.objects.filter(enabled=True, identity_unstable_at__isnull=False).order_by("name"))


def _signin_attention(user) -> list:
    """OAuth grants an admin must renew: ended (reconnect now) or ending within the warning
    window (reconnect before then), for the admins' banner."""
    if not user.is_superuser:
        return []
    from django.utils import timezone

    from postdesk.models import OAuthGrant
    from postdesk.oauth.tokens import GRANT_WARNING

    soon = timezone.now() + GRANT_WARNING
    return list(OAuthGrant.objects.filter(mailbox__enabled=True, mailbox__auth="oauth")
                .filter(Q(state=OAuthGrant.State.EXPIRED) | Q(grant_expires_at__lte=soon))
                .select_related("mailbox").order_by("mailbox__name"))


def _queue_page(request, queryset: QuerySet, *, title: str, current: str, query=None):
    """A queue; with ?live=1 the JSON live.js polls (the same rows, so the same page and search);
    with ?numbers=1 only the page's request numbers (PageNumbers), for j / k on a request page
    going on to the next or previous page.  Filters and sort come from the URL (desk.filters)."""
    request_status.wake_due_now_and_then()  # snoozed requests come back even on a desk without a worker
    q = request.GET.get("q", "")
    query = query or filters.from_get(request.GET)
    resolved = filters.resolve(query, request.user)
    has_attachments = Exists(Attachment.objects.filter(message__request=OuterRef("pk")))

    def decorate(rows: QuerySet) -> QuerySet:
        return (unread.annotate(rows, request.user).select_related("assignee", "mailbox", "customer")
                .prefetch_related("tags").annotate(has_attachments=has_attachments))

    chosen = desk_search.filter_requests(queryset.filter(resolved.condition), q, request.user).annotate(**resolved.annotations)
    if request.GET.get("numbers") == "1":
        return _numbers_answer(numbers_page(chosen, resolved.ordering, request.GET.get("page"), size=PAGE_SIZE))
    page = page_of(chosen, resolved.ordering, request.GET.get("page"), size=PAGE_SIZE, decorate=decorate)
    context = {"title": title, "current": current, "page": page, "q": q.strip(), "stamp": live.stamp(page),
               **queue_bar(query, resolved, request.user, current=current, q=q.strip()),
               **_search_hints(request, page, q, current)}
    if request.GET.get("live") == "1":
        return live.queue_answer(request, context, nav_counts(request.user))
    context["live_url"] = live.poll_url(request)
    return render(request, "postdesk/queue.html", {**context, **_nav(request)})


def _numbers_answer(page: Page) -> JsonResponse:
    response = JsonResponse(PageNumbers.of(page).as_dict())
    response["Cache-Control"] = "private, no-store"  # the queue as it is now, for this member
    return response


@login_required
def home(request):
    return redirect("postdesk_web:queue", queue="general")


@login_required
def queue(request, queue: str):
    if queue not in QUEUES:
        raise Http404("no such queue")
    query = filters.from_get(request.GET)
    queryset = Request.objects.filter(queue_filter(queue, request.user, with_statuses=not query.statuses))
    return _queue_page(request, queryset, title=QUEUES[queue], current=queue, query=query)


@login_required
def mailbox_queue(request, name: str):
    mailbox = get_object_or_404(Mailbox, name=name)
    return _queue_page(request, Request.objects.filter(mailbox=mailbox), title=f"Mailbox {mailbox.name}", current=f"mailbox:{mailbox.name}")


# --- one request --------------------------------------------------------------


def _staff():
    User = get_user_model()
    return User.objects.filter(is_active=True).order_by(User.USERNAME_FIELD)


@login_required
def request_detail(request, number: int):
    req = get_object_or_404(Request.objects.select_related("assignee", "mailbox", "customer"), pk=number)
    return request_page(request, req, draft=request.session.pop("reply_draft", None) or {})


def request_page(request, req: Request, *, draft: dict, stale=None, confirm_take=None, status: int = 200):
    """The request page; also re-rendered, with the draft filled in, when a stale page's
    form is refused (`stale`: staleness.Changes) or Take asks to confirm (`confirm_take`).
    Whoever sees it has read what the customer wrote (unread)."""
    unread.mark_read(request.user, req)
    conversation = list(
        req.messages.select_related("outgoing_mail", "author").prefetch_related(
            Prefetch("attachments", queryset=Attachment.objects.order_by("position"))
        )
    )
    show_images = _message_ids(request.GET.getlist("images"))
    show_full = _message_ids(request.GET.getlist("full"))
    # The reply splits and the remote image counts were computed when each message
    # was processed (in a parser process, under the parse time limit) and stored;
    # older messages get theirs once, here.  Nothing is split again per view.
    mailframe.ensure_display(conversation)
    for message in conversation:
        received = message.direction == "in"  # ours (replies, notes) are shown as their text
        # What the template needs to embed the HTML frame and its "show images" link.
        if not received:
            message.remote_images = 0
        message.images_shown = message.pk in show_images
        # A customer's reply: what they newly wrote first, the quoted history and
        # signature folded away (text behind <details>, HTML by a link that shows it all).
        message.parts = mailframe.text_parts(message) if received else None
        message.html_folds = received and mailframe.has_fold(message)
        message.full_shown = message.pk in show_full
        query = urlencode([(k, "1") for k, on in (("images", message.images_shown), ("full", message.full_shown)) if on])
        message.frame_query = f"?{query}" if query else ""
    context = {
        "req": req,
        "conversation": conversation,
        "events": req.events.select_related("actor"),
        "frame_sandbox": mailframe.FRAME_SANDBOX,
        "staff": _staff(),
        "draft": draft,
        "compose": compose_panel.compose_view(request, req, draft, conversation),
        "seen": staleness.seen_now(req).as_fields(),
        "stale": stale,
        "confirm_take": confirm_take,
        "reply": _reply_address(conversation),
        "tag": tags.tag(req.pk),
        "mentions": req.mentions.order_by("pk"),
        "mentioned_by": req.mentioned_by.order_by("pk"),
        "customer_panel": customers.panel(req),  # _customer_panel.html (desk.customers)
        "actions": side_column.side_column(request.user, req),
        "title": f"#{req.pk} {req.subject}",
        "current": "",
        **_nav(request),
    }
    return render(request, "postdesk/request.html", context, status=status)


def _reply_address(conversation: list[Message]) -> ReplyChoice:
    """Who a reply goes to, and a Reply-To left unused, shown above the form (the same
    choice send_reply makes)."""
    parent = parent_of(conversation)
    return reply_choice(parent) if parent is not None else ReplyChoice(None)


def _message_ids(values: list[str]) -> set[int]:
    return {int(v) for v in values if v.isdigit() and len(v) <= MAX_NUMBER_DIGITS}


@require_GET
@login_required
@xframe_options_sameorigin
def message_body(request, message_id: int):
    """The frame document: the message's HTML, sanitized again and under its own CSP."""
    message = get_object_or_404(Message.objects.prefetch_related("attachments"), pk=message_id)
    if not message.html:
        raise Http404("this message has no HTML body")
    remote_images = request.GET.get("images") == "1"
    whole = request.GET.get("full") == "1" or message.direction != "in"
    shown = mailframe.render_body(message, request.user.pk, remote_images, whole=whole, own_host=mailframe.host_of(request))
    response = HttpResponse(shown.html, content_type="text/html; charset=utf-8")
    origin = request.build_absolute_uri("/").rstrip("/")
    response["Content-Security-Policy"] = mailframe.frame_policy(origin, remote_images)
    # A remote image the reader allowed must not learn which request it sits in.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def inline_image(request, token: str):
    """An inline (cid:) image for the message frame.  No session cookie reaches
    here from the sandboxed frame; the signed token names the attachment and a
    reader who must still be an active user."""
    claim = mailframe.read_inline_token(token)
    if claim is None:
        raise Http404("unknown or expired image link")
    attachment_id, user_id = claim
    if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
        raise Http404("unknown or expired image link")
    attachment = get_object_or_404(Attachment, pk=attachment_id)
    content_type = attachment.content_type.split(";")[0].strip().lower()
    if content_type not in SAFE_IMAGE_TYPES:
        raise Http404("not an image we show inline")
    response = HttpResponse(read_attachment(attachment), content_type=content_type)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"  # a part of the mail, like any attachment
    # The frame is another (opaque) origin: let it embed this image, nothing else.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _act(request, number: int, action: str, change, confirm=None):
    """Run one action on a locked request; `change(req)` returns (kind, detail) or None for no change.

    Refused (409, the page shown again with what changed) when the page the form came
    from is stale for this action (staleness.RELEVANT); `confirm(req)`, when given, may
    ask first (a question in words) unless the form says confirm=1."""
    seen = staleness.read_seen(request.POST)
    with transaction.atomic():
        req = get_object_or_404(Request.objects.select_for_update(of=("self",)).select_related("assignee"), pk=number)
        stale = staleness.changes_since(seen, req, request.user).blocking(action)
        question = None if stale or confirm is None or request.POST.get("confirm") == "1" else confirm(req)
        outcome = None if stale or question else change(req)
        if outcome is not None:
            kind, detail = outcome
            req.save(update_fields=["assignee", "status", "snooze_until", "updated_at"])
            RequestEvent.objects.create(request=req, actor=request.user, kind=kind, detail=detail[:500])
            if kind == "assigned":
                notify_hooks.assigned(req, request.user)  # in this transaction; never the actor
    if stale or question:
        return _ask_again(request, number, stale=stale or None, question=question)
    if outcome is None:
        flash.info(request, "Nothing to change.")
    else:
        flash.success(request, outcome[1] or outcome[0])
    return redirect("postdesk_web:request", number=number)


def _ask_again(request, number: int, *, stale=None, question=None):
    """The request page as it is now: a refusal (409) saying what changed, or a question (200)."""
    req = get_object_or_404(Request.objects.select_related("assignee", "mailbox", "customer"), pk=number)
    return request_page(request, req, draft={}, stale=stale, confirm_take=question, status=409 if stale else 200)


def _username(user) -> str:
    return user.get_username() if user is not None else ""


def _as_outcome(change):
    """An action of desk.assignment or desk.status as `_act`'s change: (kind, detail) or None."""
    def run(req):
        result = change(req)
        return (result.kind, result.detail) if result else None
    return run


@require_POST
@login_required
def take(request, number: int):
    def someone_has_it(req):
        if req.assignee_id in (None, request.user.pk):
            return None
        return f"{_username(req.assignee)} has it; take it anyway?"

    return _act(request, number, "take", _as_outcome(lambda req: assignment.take(req, request.user)), confirm=someone_has_it)


@require_POST
@login_required
def assign(request, number: int):
    try:
        assignee = _staff().get(pk=int(request.POST.get("assignee", "")))
    except (ValueError, get_user_model().DoesNotExist):
        return HttpResponseBadRequest("choose a staff member")
    return _act(request, number, "assign", _as_outcome(lambda req: assignment.assign(req, assignee)))


@require_POST
@login_required
def unassign(request, number: int):
    return _act(request, number, "unassign", _as_outcome(assignment.unassign))


@require_POST
@login_required
def close(request, number: int):
    return _act(request, number, "close", _as_outcome(request_status.close))


@require_POST
@login_required
def reopen(request, number: int):
    return _act(request, number, "reopen", _as_outcome(request_status.reopen))


# --- downloads ----------------------------------------------------------------


@login_required
def attachment_download(request, attachment_id: int):
    attachment = get_object_or_404(Attachment.objects.select_related("message"), pk=attachment_id)
    declared = attachment.content_type.split(";")[0].strip().lower()
    content_type = declared if declared in SAFE_IMAGE_TYPES else "application/octet-stream"
    return disposition.download(read_attachment(attachment), attachment.filename or f"attachment-{attachment.pk}", content_type)


@login_required
def message_raw(request, message_id: int):
    message = get_object_or_404(Message, pk=message_id)
    return disposition.download(blobs.read(message.raw_id), f"message-{message.pk}.eml", "message/rfc822")


# --- metrics --------------------------------------------------------------------


def _may_scrape(request) -> bool:
    """A signed-in admin, a scraper sending `Authorization: Bearer TOKEN`
    (POSTDESK_METRICS_TOKEN), or, only when POSTDESK_METRICS_LOCAL=1 says so, a
    scraper on this machine.  Loopback is not trusted by default: a reverse
    proxy on the same host makes every visitor from the internet look local."""
    user = request.user
    if user.is_authenticated and user.is_active and user.is_superuser:
        return True
    token = os.environ.get("POSTDESK_METRICS_TOKEN", "")
    if token and hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return True
    local_allowed = os.environ.get("POSTDESK_METRICS_LOCAL", "") == "1"
    return local_allowed and request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")


@require_GET
def metrics_view(request):
    from prometheus_client import CONTENT_TYPE_LATEST

    from postdesk import metrics

    if not _may_scrape(request):
        return HttpResponse("metrics need an admin's sign-in or the bearer token of POSTDESK_METRICS_TOKEN\n", status=403, content_type="text/plain")
    response = HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
