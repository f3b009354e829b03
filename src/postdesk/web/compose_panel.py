"""What the answering part of the request page shows (_compose.html): the drafts, the
reply-all Cc, the signature preview and the canned replies. The page (views.request_page)
reads it; the answering views are web/replies.py."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from postdesk.desk import canned, drafts, profile, signature
from postdesk.models import Message, Request
from postdesk.outbound.reply import cc_line, parent_of, reply_all, reply_choice


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


def clock(user, when) -> str:
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
        canned=canned.filled(req, user), saved_at=clock(user, newest),
    )


def _as_dict(saved: drafts.SavedDraft | None) -> dict:
    return {"text": saved.text, "cc": saved.cc} if saved else {"text": "", "cc": ""}
