"""Answering from the request page: a reply to the customer, or an internal note.

The reply and the note are two forms with their own text boxes and their own URLs, so
a note cannot reach the customer by a wrong button, even with JavaScript off: the note's
form has no way to post to the reply URL, and the reply URL never reads the note's box.
The rules live in postdesk.desk (drafts, canned, signature) and postdesk.outbound.reply."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from postdesk.desk import canned, drafts, profile, signature
from postdesk.desk.status import Then
from postdesk.models import Message, Request
from postdesk.outbound import compose
from postdesk.outbound.reply import ReplyDraft, ReplyError, add_note, cc_line, parent_of, reply_all, reply_choice, send_reply
from postdesk.web import staleness

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # what most receiving servers accept in all

# What each send button does, and how the flash says it.
AFTER_SEND = {
    Then.OPEN: "",
    Then.PENDING: " The request is waiting on the customer.",
    Then.CLOSED: " The request is closed.",
}


@dataclass(frozen=True)
class ComposeView:
    """What the answering part of the request page shows (_compose.html)."""

    reply_text: str
    reply_cc: str
    note_text: str
    active: str  # the tab shown first: "reply" or "note"
    reply_all: str  # the Cc that "Reply all" adds, "" when there is no one
    signature: str  # the preview under the editor
    canned: list[canned.Canned]
    saved_at: str  # "12:03": when the shown draft was saved, "" if none


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
        message = send_reply(number, draft, request.user, guard=guard, then=then)
    except staleness.StalePage as stale:
        return _refuse_stale(request, number, stale, "reply")
    except ReplyError as exc:
        _keep_draft(request, number, "reply")
        flash.error(request, f"Not sent: {exc}")
        return _back_to_form(number, "reply")
    drafts.discard(request.user, number, "reply")
    flash.success(request, f"Reply queued to {_to_whom(message)}; it leaves within seconds.{AFTER_SEND[then]}")
    return redirect("postdesk_web:request", number=number)


def _to_whom(message: Message) -> str:
    return ", ".join(r["address"] for r in [*message.to, *message.cc])


@require_POST
@login_required
def note(request, number: int):
    get_object_or_404(Request, pk=number)
    try:
        add_note(number, request.POST.get("text", ""), request.user, guard=staleness.guard(staleness.read_seen(request.POST), request.user, "note"))
    except staleness.StalePage as stale:
        return _refuse_stale(request, number, stale, "note")
    except ReplyError as exc:
        _keep_draft(request, number, "note")
        flash.error(request, str(exc))
        return _back_to_form(number, "note")
    drafts.discard(request.user, number, "note")
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
    return JsonResponse({"saved": _clock(request.user, saved.updated_at) if saved else ""})


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


def _clock(user, when) -> str:
    return timezone.localtime(when, profile.time_zone_of(user)).strftime("%H:%M") if when else ""


def compose_view(request, req: Request, draft: dict, conversation: list[Message]) -> ComposeView:
    """The forms' contents: a draft being re-shown (a refused send) first, else the saved drafts."""
    user = request.user
    saved = {kind: drafts.load(user, req.pk, kind) for kind in drafts.KINDS}
    shown = draft.get("kind", "reply") if draft.get("text") or draft.get("cc") else None
    reply_draft = draft if shown == "reply" else _as_dict(saved["reply"])
    note_draft = draft if shown == "note" else _as_dict(saved["note"])
    active = shown or ("note" if note_draft["text"] and not reply_draft["text"] else "reply")
    parent = parent_of(conversation)
    others = reply_all(parent, reply_choice(parent).recipient) if parent is not None else []
    newest = max((d.updated_at for d in saved.values() if d), default=None)
    return ComposeView(
        reply_text=reply_draft["text"], reply_cc=reply_draft["cc"], note_text=note_draft["text"], active=active,
        reply_all=cc_line(others), signature=signature.signature_for(user, req.mailbox, req),
        canned=canned.filled(req, user), saved_at=_clock(user, newest),
    )


def _as_dict(saved: drafts.SavedDraft | None) -> dict:
    return {"text": saved.text, "cc": saved.cc} if saved else {"text": "", "cc": ""}
