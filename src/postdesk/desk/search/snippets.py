"""The matching passage of each found request, for the queue's rows: a few words around the
first message text that holds a searched word, those words in <mark>.

Made in Python from the stored text (not FTS5's snippet() or ts_headline, which would show
the folded index words and differ by database), with everything escaped: mail can never put
HTML on the page.
"""

from __future__ import annotations

import re

from django.db.models.functions import Substr
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from postdesk.desk.search import normalise
from postdesk.desk.search.query import ParsedQuery
from postdesk.models import Message

SCAN = 10_000  # characters of each message looked at: a snippet shows where a mail begins to match
BEFORE, AFTER = 60, 140  # characters of context around the first match
_WORD = re.compile(r"[^\W_]+")


def snippets(request_ids: list[int], parsed: ParsedQuery) -> dict[int, SafeString]:
    """request id -> its snippet, for those with a matching message text."""
    wanted = _wanted(parsed)
    if not wanted or not request_ids:
        return {}
    found: dict[int, SafeString] = {}
    seen: dict[str, bool] = {}  # word -> hit, across the page's messages: mail repeats its words
    rows = (Message.objects.filter(request_id__in=request_ids).order_by("request_id", "created_at", "id")
            .annotate(start=Substr("text", 1, SCAN)).values_list("request_id", "start"))
    for request_id, text in rows.iterator(chunk_size=200):
        if request_id not in found and (snippet := snippet_of(text or "", wanted, seen)):
            found[request_id] = snippet
    return found


def _wanted(parsed: ParsedQuery) -> dict[str, bool]:
    """Index words to mark -> whether a longer word beginning with it counts."""
    wanted: dict[str, bool] = {}
    for term in parsed.terms:
        for phrase in term.spellings:
            for i, word in enumerate(phrase):
                wanted[word] = wanted.get(word, False) or (term.prefix and i == len(phrase) - 1)
    return wanted


def _hit(word: str, wanted: dict[str, bool], seen: dict[str, bool]) -> bool:
    if word not in seen:
        seen[word] = _matches(word, wanted)
    return seen[word]


def _matches(word: str, wanted: dict[str, bool]) -> bool:
    for index_word in normalise.tokens(word):
        for w, prefix in wanted.items():
            if index_word == w or (prefix and index_word.startswith(w)):
                return True
    return False


def snippet_of(text: str, wanted: dict[str, bool], seen: dict[str, bool] | None = None) -> SafeString | None:
    seen = {} if seen is None else seen
    first = next((m for m in _WORD.finditer(text) if _hit(m.group(), wanted, seen)), None)
    if first is None:
        return None
    start = _boundary(text, max(0, first.start() - BEFORE), backwards=True)
    end = _boundary(text, min(len(text), first.end() + AFTER), backwards=False)
    hits = [m for m in _WORD.finditer(text, start, end) if _hit(m.group(), wanted, seen)]
    parts, at = ["…" if start > 0 else ""], start
    for m in (h for h in hits if h.start() >= start and h.end() <= end):
        parts += [escape(text[at:m.start()]), "<mark>", escape(m.group()), "</mark>"]
        at = m.end()
    parts += [escape(text[at:end]), "…" if end < len(text) else ""]
    return mark_safe(" ".join("".join(parts).split()))  # noqa: S308 (every piece of text is escaped)


def _boundary(text: str, at: int, *, backwards: bool) -> int:
    """`at` moved to the nearest space, so no word is cut in half (within 20 characters)."""
    step = -1 if backwards else 1
    for i in range(20):
        j = at + step * i
        if j <= 0 or j >= len(text):
            return max(0, min(j, len(text)))
        if text[j].isspace():
            return j
    return at
