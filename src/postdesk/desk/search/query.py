"""The search language, parsed into a typed query; no database here.

    words              every word must occur (AND), anywhere: subjects, bodies, notes, names,
                       addresses, To/Cc, tags, the request number; a word also finds longer
                       words it begins ("licen" finds "licences")
    "a phrase"         these words in this order
    from:WORD          a sender's name or address          to:WORD   a To or Cc name or address
    status:new|open|waiting|pending|closed                  tag:NAME
    assignee:me|none|NAME                                   mailbox:NAME
    priority:low|normal|high|urgent                         has:attachment
    before:YYYY-MM-DD  opened before that day  after:YYYY-MM-DD  opened on or after that day
                       (days in the member's time zone)
    123, #123, PD-123, [PD-123]   that request (a lone number also finds it in the text)
An unknown operator, or a known one with a value it cannot take, is searched as words:
a search never fails on what someone types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from postdesk import tags
from postdesk.desk.search import normalise

STATUSES = {"new": "new", "open": "open", "waiting": "pending", "pending": "pending", "closed": "closed"}
PRIORITIES = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
# One piece of a query: op:"quoted value", op:value, "a phrase" (closed or not), or a word.
_PIECE = re.compile(r'(?:(?P<op>[A-Za-z]+):(?=\S))?(?:"(?P<quoted>[^"]*)"?|(?P<word>\S+))')
# Short words as prefixes would match half the index; from three characters on they help.
_PREFIX_FROM = 3
MAX_TERMS = 32  # beyond this, words are ignored: a search is not a document


@dataclass(frozen=True)
class Term:
    """Words to find: `spellings` are alternatives (each a phrase of index words: "Jürgen"
    is ("jurgen",) or ("juergen",)); `field` is "any", "from" or "to"."""

    spellings: tuple[tuple[str, ...], ...]
    prefix: bool = False
    field: str = "any"


@dataclass(frozen=True)
class ParsedQuery:
    terms: tuple[Term, ...] = ()
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()  # "me", "none" or a name
    mailboxes: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    has_attachment: bool = False
    before: date | None = None
    after: date | None = None
    numbers: tuple[int, ...] = ()  # [PD-3], #3: that request
    number_or_text: int | None = None  # a query that is only a number: that request, or the text
    ignored: tuple[str, ...] = field(default=())  # pieces with no searchable word ("!!!")

    @property
    def empty(self) -> bool:
        return self == ParsedQuery(ignored=self.ignored)


def parse(text: str) -> ParsedQuery:
    text = (text or "").strip()
    number = tags.in_query(text) if text else None
    if number is not None and not text.startswith("["):
        return ParsedQuery(number_or_text=number, terms=_words(str(number), quoted=False))
    parts: dict[str, list] = {"terms": [], "statuses": [], "tags": [], "assignees": [], "mailboxes": [],
                              "priorities": [], "numbers": [], "ignored": []}
    flags: dict[str, object] = {}
    for piece in _PIECE.finditer(text):
        _take(piece, parts, flags)
    parts["terms"] = parts["terms"][:MAX_TERMS]
    return ParsedQuery(**{k: tuple(v) for k, v in parts.items()}, **flags)


def _take(piece: re.Match, parts: dict, flags: dict) -> None:
    op = (piece.group("op") or "").lower()
    value = piece.group("quoted") if piece.group("quoted") is not None else piece.group("word")
    quoted = piece.group("quoted") is not None
    if op and _operator(op, value, quoted, parts, flags):
        return
    if not op and not quoted and (number := _tagged_number(value)) is not None:
        parts["numbers"].append(number)
        return
    whole = f"{op}:{value}" if op else value
    found = _words(whole, quoted=quoted and not op)
    parts["terms"].extend(found) if found else parts["ignored"].append(whole)


def _operator(op: str, value: str, quoted: bool, parts: dict, flags: dict) -> bool:
    """Take op:value into `parts`/`flags`; False: not an operator we know with a value it takes."""
    lowered = value.strip().lower()
    if op in ("from", "to"):
        found = _words(value, quoted=True, field=op)
        parts["terms"].extend(found)
        return bool(found)
    if op == "status" and lowered in STATUSES:
        parts["statuses"].append(STATUSES[lowered])
    elif op == "priority" and lowered in PRIORITIES:
        parts["priorities"].append(PRIORITIES[lowered])
    elif op == "tag" and lowered:
        parts["tags"].append(lowered)
    elif op == "assignee" and lowered:
        parts["assignees"].append(lowered)
    elif op == "mailbox" and lowered:
        parts["mailboxes"].append(lowered)
    elif op == "has" and lowered in ("attachment", "attachments"):
        flags["has_attachment"] = True
    elif op in ("before", "after") and (day := _day(lowered)) is not None:
        flags[op] = day
    else:
        return False
    return True


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


def _tagged_number(value: str) -> int | None:
    """[PD-3], PD-3 or #3 inside a longer query; a bare number there stays a word."""
    if value.isdigit():
        return None
    return tags.in_query(value)


def _words(value: str, *, quoted: bool, field: str = "any") -> list[Term]:
    """The terms of a piece: a quoted one (or an operator's value) is one phrase; a bare
    piece that splits into several words ("e-mail", "東京都", an address) is one phrase too,
    as the reader sees one word."""
    pairs = normalise.words(value)
    if not pairs:
        return []
    if quoted or len(pairs) > 1 or field != "any":
        phrase = tuple(word for word, _ in pairs)
        return [Term((phrase,), prefix=False, field=field)]
    word, original = pairs[0]
    spellings = [(word,)]
    if (variant := normalise.german(original)) and variant != word:
        spellings.append((variant,))
    # A lone CJK character is the start of the bigrams that hold it.
    prefix = len(word) >= _PREFIX_FROM or (len(word) == 1 and normalise.is_cjk(word))
    return [Term(tuple(spellings), prefix=prefix, field=field)]
