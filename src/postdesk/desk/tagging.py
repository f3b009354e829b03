"""Tags on requests ("billing", "vip"): their names and how they are put on and taken off.

Not the request tag [PD-n] in subjects: that is postdesk.tags. A tag is made on first use;
each change writes one history line, and doing it again changes nothing."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from postdesk.desk import search
from postdesk.models import Request, RequestEvent, Tag

MAX_LENGTH = 50
_SPACES = re.compile(r"\s+")
# Characters the search language and URLs use as separators; a tag is one word-ish name.
_FORBIDDEN = re.compile(r"[,;:\"'<>\\/?#&=%]")


class TagError(ValueError):
    """A name that cannot be a tag; the message says why, in words."""


@dataclass(frozen=True)
class TagChange:
    tag: str
    changed: bool  # False: it was already so


def clean_name(name: str) -> str:
    """The stored form: NFC, lower case, inner spaces as one "-", at most 50 characters."""
    cleaned = _SPACES.sub("-", unicodedata.normalize("NFC", name or "").strip().lower())
    if not cleaned:
        raise TagError("a tag needs a name")
    if _FORBIDDEN.search(cleaned):
        raise TagError(f"a tag cannot contain any of , ; : \" ' < > \\ / ? # & = %: {name!r}")
    if len(cleaned) > MAX_LENGTH:
        raise TagError(f"a tag is at most {MAX_LENGTH} characters")
    return cleaned


def add_tag(req: Request, name: str, actor=None) -> TagChange:
    tag, _ = Tag.objects.get_or_create(name=clean_name(name))
    if req.tags.filter(pk=tag.pk).exists():
        return TagChange(tag.name, False)
    req.tags.add(tag)
    search.index_request(req.pk)
    RequestEvent.objects.create(request=req, actor=actor, kind="tagged", detail=f"tag {tag.name} added")
    return TagChange(tag.name, True)


def remove_tag(req: Request, name: str, actor=None) -> TagChange:
    cleaned = clean_name(name)
    tag = req.tags.filter(name=cleaned).first()
    if tag is None:
        return TagChange(cleaned, False)
    req.tags.remove(tag)
    search.index_request(req.pk)
    RequestEvent.objects.create(request=req, actor=actor, kind="untagged", detail=f"tag {tag.name} removed")
    return TagChange(tag.name, True)


def names(req: Request) -> list[str]:
    return [t.name for t in req.tags.all()]
