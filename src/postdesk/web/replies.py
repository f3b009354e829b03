"""Answering from the request page: a reply to the customer, or an internal note.

The reply and the note are two forms with their own text boxes and their own URLs, so
a note cannot reach the customer by a wrong button, even with JavaScript off: the note's
form has no way to post to the reply URL, and the reply URL never reads the note's box.
The rules live in postdesk.desk (drafts, canned, signature) and postdesk.outbound.reply."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from postdesk import crashpoints
from postdesk.desk import canned, drafts
from postdesk.desk.status import Then
from postdesk.models import Message, Request
from postdesk.outbound import compose
from postdesk.outbound.reply import ReplyDraft, ReplyError, add_note, send_reply
from postdesk.web import staleness
from postdesk.web.compose_panel import clock

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # what most receiving servers accept in all

# What each send button does, and how the flash says it.
AFTER_SEND = {
    Then.OPEN: "",
    Then.PENDING: " The request is waiting on the customer.",
    Then.CLOSED: " The request is closed.",
}


def _files(request) -> tuple[compose.FileToSend, ...]:
    files, total = [], 0
    for upload in request.FILES.getlist("attachments"):
        total += upload.size
        if total > MAX_ATTACHMENT_BYTES:
            raise ReplyError("the attachments are larger than 25 MB together; most mail servers would refuse them")
        files.append(compose.FileToSend(upload.name or "attachment", upload.content_type or "application/octet-stream", upload.read()))
    return tuple(files)


def _typed(request, kind: str) -> dict:
    return {"kind": kind, "text": request.POST.get("text", "")[:drafts.MAX_TEXT],
            "cc": request.POST.get("cc", "")[:2000] if kind == "reply" else ""}


def _keep_draft(request, number: int, kind: str) -> None:
    """On an error what was typed is kept (as the draft the page shows again)."""
    typed = _typed(request, kind)
    drafts.save(request.user, number, kind, typed["text"], typed["cc"])


def _refuse_stale(request, number: int, stale: staleness.StalePage, kind: str):
    """409: the request page as it is now, what changed on top, the draft in the form
    (the names of the chosen files too: a browser cannot hand files back to a form)."""
    from postdesk.web.views import request_page

    _keep_draft(request, number, kind)
    draft = {**_typed(request, kind), "files": [u.name for u in request.FILES.getlist("attachments")]}
    req = get_object_or_404(Request.objects.select_related("assignee", "mailbox", "customer"), pk=number)
    return request_page(request, req, draft=draft, stale=stale.changes, status=409)


def _back_to_form(number: int, kind: str):
    return redirect(f"/requests/{number}/#{kind}-pane")


@require_POST
@login_required
def reply(request, number: int):
    get_object_or_404(Request, pk=number)
    then = request.POST.get("then") or Then.OPEN
    try:
        draft = ReplyDraft(request.POST.get("text", ""), request.POST.get("cc", ""), _files(request),
                           reply_all=request.POST.get("reply_all") == "1")
        guard = staleness.guard(staleness.read_seen(request.POST), request.user, "reply")
        message = send_reply(number, draft, request.user, guard=guard, then=then, discard_draft=True)
    except staleness.StalePage as stale:
        return _refuse_stale(request, number, stale, "reply")
    except ReplyError as exc:
        _keep_draft(request, number, "reply")
        flash.error(request, f"Not sent: {exc}")
        return _back_to_form(number, "reply")
    crashpoints.reached("after-reply")
    flash.success(request, f"Reply queued to {_to_whom(message)}; it leaves within seconds.{AFTER_SEND[then]}")
    return redirect("postdesk_web:request", number=number)


def _to_whom(message: Message) -> str:
    return ", ".join(r["address"] for r in [*message.to, *message.cc])


@require_POST
@login_required
def note(request, number: int):
    get_object_or_404(Request, pk=number)
    try:
        add_note(number, request.POST.get("text", ""), request.user,
                 guard=staleness.guard(staleness.read_seen(request.POST), request.user, "note"), discard_draft=True)
    except staleness.StalePage as stale:
        return _refuse_stale(request, number, stale, "note")
    except ReplyError as exc:
        _keep_draft(request, number, "note")
        flash.error(request, str(exc))
        return _back_to_form(number, "note")
    crashpoints.reached("after-note")
    flash.success(request, "Note added (not sent to the customer).")
    return redirect("postdesk_web:request", number=number)


@require_POST
@login_required
def draft(request, number: int):
    """Saved as one types (compose.js posts here a moment after typing stops)."""
    get_object_or_404(Request, pk=number)
    kind = request.POST.get("kind", "")
    if kind not in drafts.KINDS:
        return HttpResponseBadRequest("kind: reply or note")
    typed = _typed(request, kind)
    saved = drafts.save(request.user, number, kind, typed["text"], typed["cc"])
    return JsonResponse({"saved": clock(request.user, saved.updated_at) if saved else ""})


@require_POST
@login_required
def insert_canned(request, number: int):
    """Without JavaScript, the picker's Insert button: the reply's text so far with the
    canned reply added, kept as the draft the page shows again."""
    req = get_object_or_404(Request.objects.select_related("mailbox", "customer"), pk=number)
    chosen = canned.one_filled(req, request.user, request.POST.get("canned", ""))
    typed = _typed(request, "reply")
    text = typed["text"].rstrip("\n")
    if chosen is not None:
        text = f"{text}\n\n{chosen.text}" if text.strip() else chosen.text
    drafts.save(request.user, number, "reply", text, typed["cc"])
    return _back_to_form(number, "reply")
