"""The request tag, `[PD-12]`: the one home of its prefix, its format and how it is found.

The tag carries a request's number in the subjects of the mail we send, so a
reply finds its request even when a mail program drops References.  A tag
alone proves nothing about the sender: process/thread.py decides who may join
a request by it.  The prefix is POSTDESK_TAG_PREFIX ("PD"), read at each call,
so two help desks (or two test installations) with different prefixes never
claim each other's numbers.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.conf import settings

# A number beyond a 64-bit integer is no request of ours (and would upset the database).
MAX_DIGITS = 18


def prefix() -> str:
    return settings.POSTDESK_TAG_PREFIX


def label(number: int) -> str:
    """`PD-12`: the request in log lines and searches."""
    return f"{prefix()}-{number}"


def tag(number: int) -> str:
    """`[PD-12]`: the request in a subject."""
    return f"[{label(number)}]"


def tagged_subject(subject: str, number: int, reply: bool = True) -> str:
    """`Re: <subject> [PD-n]`: the tag lets a reply thread even if References are lost."""
    subject = " ".join(subject.split()) or "(no subject)"
    marker = tag(number)
    if marker.lower() not in subject.lower():
        subject = f"{subject} {marker}"
    if reply and not re.match(r"(?i)^\s*re\s*:", subject):
        subject = f"Re: {subject}"
    return subject


def in_subject(subject: str | None) -> int | None:
    """The number of the first of our tags in a subject ("Re: AW: [PD-12] Printer"), if any."""
    numbers = all_in_subject(subject, limit=1)
    return numbers[0] if numbers else None


def all_in_subject(subject: str | None, limit: int = 5) -> list[int]:
    """The numbers of our tags in a subject, in order, each once, at most `limit` (a
    subject can name two requests: "Re: [PD-12] Printer [PD-13]", when a message that
    named #12 opened #13 and we answered it)."""
    numbers: list[int] = []
    for match in _subject_pattern(prefix()).finditer(subject or ""):
        number = int(match.group(1))
        if number not in numbers:
            numbers.append(number)
            if len(numbers) >= limit:
                break
    return numbers


def in_query(query: str) -> int | None:
    """The request number a search names: "123", "#123", "PD-123" or "[PD-123]" (any case)."""
    match = _query_pattern(prefix()).fullmatch(query.strip())
    return int(match.group(1) or match.group(2)) if match else None


@lru_cache(maxsize=8)
def _subject_pattern(tag_prefix: str) -> re.Pattern:
    return re.compile(rf"\[{re.escape(tag_prefix)}-(\d{{1,{MAX_DIGITS}}})\]", re.IGNORECASE)


@lru_cache(maxsize=8)
def _query_pattern(tag_prefix: str) -> re.Pattern:
    p, digits = re.escape(tag_prefix), rf"(\d{{1,{MAX_DIGITS}}})"
    return re.compile(rf"(?:#|{p}-)?\s*{digits}|\[{p}-{digits}\]", re.IGNORECASE)
