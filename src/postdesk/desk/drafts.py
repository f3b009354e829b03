"""Drafts: what a staff member is typing on a request, saved as they type, one per
member, request and kind (a reply and a note are drafted apart), and gone once sent.

The page posts the text a moment after typing stops (compose.js); reloading the page
or opening it on another computer brings it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from postdesk.models import Draft

KINDS = ("reply", "note")
MAX_TEXT = 200_000


@dataclass(frozen=True)
class SavedDraft:
    kind: str
    text: str
    cc: str
    updated_at: datetime | None


def _saved(draft: Draft) -> SavedDraft:
    return SavedDraft(draft.kind, draft.text, draft.cc, draft.updated_at)


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"not a kind of draft: {kind!r}")


def save(staff, request_id: int, kind: str, text: str, cc: str = "") -> SavedDraft | None:
    """Keep what is typed; an emptied editor deletes the draft (None)."""
    _check(kind)
    text, cc = text[:MAX_TEXT], cc[:2000]
    if not text.strip() and not cc.strip():
        discard(staff, request_id, kind)
        return None
    key = {"staff": staff, "request_id": request_id, "kind": kind}
    try:
        with transaction.atomic():
            draft, _ = Draft.objects.update_or_create(**key, defaults={"text": text, "cc": cc})
    except IntegrityError:  # two saves at once (two tabs): the row exists now, so update it
        draft = Draft.objects.get(**key)
        draft.text, draft.cc = text, cc
        draft.save(update_fields=["text", "cc", "updated_at"])
    return _saved(draft)


def load(staff, request_id: int, kind: str) -> SavedDraft | None:
    _check(kind)
    draft = Draft.objects.filter(staff=staff, request_id=request_id, kind=kind).first()
    return _saved(draft) if draft else None


def discard(staff, request_id: int, kind: str) -> None:
    """Sent (or emptied): nothing to restore any more."""
    _check(kind)
    Draft.objects.filter(staff=staff, request_id=request_id, kind=kind).delete()
