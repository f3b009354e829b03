"""Reading replies: what the customer newly wrote, apart from the quoted history
and the signature, so the request page can fold those away behind a toggle.

Detection of the reply headers ("On <date>, <name> wrote:" and Outlook
"From:/Sent:" blocks in a dozen languages, "-----Original Message-----") is
mail-parser-reply's (`mailparser_reply`, MIT): we use its compiled header
pattern only, because its own result is normalised text (every line stripped,
separator lines dropped) and we must hand back the customer's lines as written.
Around it a little glue of our own, each rule explained where it is:
`>`-quoted blocks anywhere (bottom-posting), attribution lines in languages the
library lacks, separator lines, the signature, inline replies.

The unit is the line.  `_classify` gives every line one kind - new, quoted or
signature - and both entry points build on it:

* `split_reply(text)` puts every line of the input into exactly one of
  `new_text`, `quoted_text` and `signature` (each keeps its lines in their
  original order; only blank lines at a part's ends and trailing whitespace are
  trimmed).  So together they hold every non-blank character of the input.
* `split_reply_html(html)` cuts the HTML once, at a tag boundary, into the new
  part and the folded part; the text of the two halves together is the text of
  the whole.

Both never raise: on any internal error the whole input is the new part.
Nothing is folded when folding would leave nothing new (a message that is all
quote), for a forward (the forwarded message is what the customer wants us to
read), or for an inline reply (answers between quoted paragraphs: hiding the
quotes would hide the context).
"""

from __future__ import annotations

import html as html_module
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser

from postdesk.mail._html import sanitize

NEW, QUOTED, SIGNATURE = "new", "quoted", "signature"


@dataclass(frozen=True, slots=True)
class ReplyParts:
    """Every line of the input is in exactly one of new_text, quoted_text and
    signature; `reply_text` is a convenience (the other two without the quote)."""

    new_text: str  # what the customer newly wrote, without signature
    quoted_text: str  # the quoted history ('' if none)
    signature: str  # the signature block ('' if none)
    reply_text: str  # new text and signature as written, without the quoted history

    @property
    def has_folded(self) -> bool:
        return bool(self.quoted_text or self.signature)


# Languages whose header patterns we take from mail-parser-reply.  Left out:
# "pl" (its Outlook rule fires on a single "Data:"/"Do:" line, which plain
# English text can contain) and "david" (one vendor's server).
_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "cs", "ja", "ko", "zh")

# Lines longer than this are never headers; blanking them for the pattern
# search keeps the library's lazy `.+?` patterns from going quadratic.  And the
# search stops after this many characters (about 1 ms per kB): a reply header
# further down than that is missed, a huge body stays fast.
_MAX_HEADER_LINE = 400
_MAX_HEADER_SEARCH = 100_000
# ... and after this many lines: the patterns cost about 40 us a line whatever
# its length (30,000 one-letter lines: 1.3 s).
_MAX_HEADER_LINES = 5_000
# Longer text or HTML is shown whole, nothing folded: reading it line by line
# costs about a microsecond a character, and folding is only a convenience.
MAX_SPLIT_CHARS = 1_000_000

_QUOTE_MARK = re.compile(r"^\s*>")
# An Outlook/Hotmail/Yahoo separator line: underscores, dashes or the HTML
# <hr>/border-top we turn into one (see _HTMLLines).
_SEPARATOR = re.compile(r"^\s*(?:[_\-=*]\s?){5,}\s*$")
# "Word(s): value", any script: From:, Von:, От:, Отправлено: ...
_HEADER_LINE = re.compile(r"^[*\s]*[^\W\d_][\w .'-]{0,29}\s?:[*\s]*\S", re.UNICODE)
# Signature delimiters: RFC 3676 "-- " (and the bare "--" of clients that trim it).
_SIG_DELIMITER = re.compile(r"^--\s*$")
_SIG_MAX_LINES = 12
# A forwarded message is what the customer wants us to read, not history.
_FORWARD = re.compile(
    r"^[-\s>]*(?:begin )?(?:forwarded message|weitergeleitete nachricht|anfang der weitergeleiteten|"
    r"message transf[ée]r[ée]|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|пересылаемое сообщение)",
    re.I,
)


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    from mailparser_reply.constants import MAIL_LANGUAGES
    from mailparser_reply.parser import EmailMessage

    headers = EmailMessage(text="", languages=list(_LANGUAGES)).HEADER_REGEX
    sent_from = "|".join(
        MAIL_LANGUAGES[lang]["sent_from"] for lang in _LANGUAGES if MAIL_LANGUAGES.get(lang, {}).get("sent_from")
    )
    return headers, (re.compile(rf"^(?:{sent_from})", re.I) if sent_from else None)


def _matches_at_line_starts(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """pattern.finditer(text), tried only where a match can begin.  Every reply-header
    pattern of the library starts with `^` (multi-line) or a newline, and ends on a
    colon (":", "：") or names a "-----" separator on that line or the next; so only
    the line starts (and the newlines before them) of lines near such a mark are
    tried.  finditer tries two dozen alternatives at every character: 30 ms for a
    15 KB plain-text message, more than parsing it.  (A test checks the two agree.)"""
    lines = text.split("\n")
    marked = [any(mark in line for mark in _HEADER_MARKS) for line in lines] + [False]
    after, start = 0, 0  # as finditer: the next match begins where the last one ended
    for i, line in enumerate(lines):
        line_start, start = start, start + len(line) + 1
        if not (marked[i] or marked[i + 1]):
            continue
        for candidate in (line_start - 1, line_start):  # the newline before the line, then its start
            if candidate < after:
                continue
            match = pattern.match(text, candidate)
            if match is not None:
                yield match
                after = max(match.end(), candidate + 1)


_HEADER_MARKS = (":", "\uff1a", "-----")


def _classify(lines: list[str]) -> list[str] | None:
    """The kind of every line, or None when nothing should be folded."""
    norm = [line.replace("\xa0", " ").strip() for line in lines]
    n = len(norm)
    blank = [not line for line in norm]
    quoted = [bool(_QUOTE_MARK.match(line)) for line in norm]

    def next_nonblank(i: int) -> int | None:
        while i < n and blank[i]:
            i += 1
        return i if i < n else None

    if any(_FORWARD.match(line) for line in norm):
        return None  # a forward: nothing is folded
    headers, sent_from = _patterns()
    searchable, budget = [], _MAX_HEADER_SEARCH
    for line in norm:
        budget -= len(line) + 1
        if budget < 0 or len(searchable) >= _MAX_HEADER_LINES:
            break
        searchable.append(line if len(line) <= _MAX_HEADER_LINE else "")
    searchable = "\n".join(searchable)
    trailer = n  # from here on everything is quoted history
    counted, lines_before = 0, 0  # line numbers counted as the matches go (not from 0 each time)
    for match in _matches_at_line_starts(headers, searchable):
        start = match.start() + len(match.group()) - len(match.group().lstrip("\n"))
        lines_before += searchable.count("\n", counted, start)
        counted = start
        first = lines_before
        last = first + searchable.count("\n", start, max(start, match.end() - 1))
        if first >= trailer:
            break
        if quoted[first]:
            continue  # a header inside history already quoted with ">"
        after = next_nonblank(last + 1)
        if after is not None and quoted[after]:
            for i in range(first, last + 1):  # "On ... wrote:" above a ">" block
                quoted[i] = True
            continue
        # A header block whose message is not ">"-quoted (Outlook): the rest is history.
        trailer = first
        break

    # Glue: a separator line right above a header block (Outlook's underscores,
    # an <hr>, Windows Mail's border-top), in any language: cut at the separator.
    for i in range(min(trailer, n)):
        if _SEPARATOR.match(norm[i]) and not _SIG_DELIMITER.match(norm[i]):
            h1 = next_nonblank(i + 1)
            h2 = next_nonblank(h1 + 1) if h1 is not None else None
            if h2 is not None and _HEADER_LINE.match(norm[h1]) and _HEADER_LINE.match(norm[h2]):
                trailer = i
                break
    for i in range(trailer, n):
        quoted[i] = True

    # Glue: an attribution line in a language the library lacks ("... написал:",
    # "26.06.2014, 14:41, "Alexander L" <a@b>:") - it ends with ":" and names a
    # date or an address, and quoted lines follow.  A line that wrapped inside
    # the address ("... <" / "a@b> wrote:") takes its first half along.
    for i in range(n):
        if quoted[i] or not norm[i].endswith(":") or not re.search(r"[\d@]", norm[i]):
            continue
        after = next_nonblank(i + 1)
        if after is None or not quoted[after]:
            continue
        quoted[i] = True
        if i > 0 and norm[i - 1] and not quoted[i - 1] and norm[i - 1][-1] in "<(\"',":
            quoted[i - 1] = True

    kinds = [QUOTED if q else NEW for q in quoted]

    # The signature: in the last run of new lines, from a "-- " delimiter on
    # (if short enough to be a signature), else a lone closing "Sent from my
    # iPhone" line (the library's phrases).
    new_lines = [i for i in range(n) if kinds[i] == NEW and not blank[i]]
    if all(_SEPARATOR.match(norm[i]) for i in new_lines):
        return None  # nothing new (a separator line is not news): show everything
    run_end = new_lines[-1]
    run_start = run_end
    while run_start > 0 and (blank[run_start - 1] or kinds[run_start - 1] == NEW):
        run_start -= 1
    for i in range(run_start, run_end + 1):
        if _SIG_DELIMITER.match(norm[i]):
            if 0 < sum(not blank[j] for j in range(i + 1, run_end + 1)) <= _SIG_MAX_LINES:
                for j in range(i, run_end + 1):
                    kinds[j] = SIGNATURE
            break
    else:
        if sent_from is not None and sent_from.match(norm[run_end]) and len(norm[run_end]) <= 80:
            kinds[run_end] = SIGNATURE

    # Shape of the non-blank lines: new-or-signature runs separated by quotes.
    runs: list[str] = []
    for i in range(n):
        if not blank[i]:
            kind = QUOTED if kinds[i] == QUOTED else NEW
            if not runs or runs[-1] != kind:
                runs.append(kind)
    if runs.count(NEW) != 1 or all(kinds[i] != NEW for i in new_lines):
        return None  # an inline reply, or only a signature is "new": fold nothing
    if QUOTED not in runs and SIGNATURE not in kinds:
        return None

    # Blank lines go with the line above them (the first ones with the line below).
    first = next_nonblank(0)
    for i in range(n):
        if blank[i]:
            kinds[i] = kinds[i - 1] if i > 0 else kinds[first]
    return kinds


def _trim(text: str) -> str:
    """Drop whitespace-only lines at the start and trailing whitespace at the end."""
    return re.sub(r"\A(?:[ \t\f\v\xa0]*(?:\r\n|\r|\n))+", "", text).rstrip()


def split_reply(text: str) -> ReplyParts:
    """Split a plain-text reply into new text, quoted history and signature."""
    try:
        lines = text.splitlines(keepends=True) if len(text) <= MAX_SPLIT_CHARS else [text]
        kinds = _classify(lines) if len(text) <= MAX_SPLIT_CHARS else None
        if kinds is None:
            whole = _trim(text)
            return ReplyParts(whole, "", "", whole)

        def part(*wanted: str) -> str:
            return _trim("".join(line for line, kind in zip(lines, kinds) if kind in wanted))

        return ReplyParts(part(NEW), part(QUOTED), part(SIGNATURE), part(NEW, SIGNATURE))
    except Exception:  # never raise: the whole text is what the customer wrote
        return ReplyParts(text, "", "", text)


def split_reply_html(html: str) -> tuple[str, str]:
    """(new part, folded part) of an HTML body that went through `sanitize()`.

    The folded part is the quoted history and the signature when one cut can
    take both (the signature stands between the new text and the quote, or ends
    a message without one); a signature below a bottom-posted reply stays in the
    new part.  A bottom-posted reply's folded part comes first in the original.  Each half is rebuilt from a cut at
    a tag boundary (the quoted half re-opens the elements the cut was inside) and
    sanitized again.  When there is nothing to fold: (html, "")."""
    try:
        if len(html) > MAX_SPLIT_CHARS:
            return html, ""
        reader = _HTMLLines(html)
        kinds = _classify([line.text for line in reader.lines])
        if kinds is None:
            return html, ""
        # Fold the signature with the quote when one cut can (it stands between
        # the new text and the quote); else (below a bottom-posted reply) keep it.
        for folded in ([kind != NEW for kind in kinds], [kind == QUOTED for kind in kinds]):
            cuts = [i for i in range(1, len(folded)) if folded[i] != folded[i - 1]]
            if len(cuts) == 1:
                break
        else:
            return html, ""
        line = reader.lines[cuts[0]]
        head = sanitize(html[: line.offset]).strip()
        tail = sanitize("".join(line.open_tags) + html[line.offset :]).strip()
        return (tail, head) if folded[0] else (head, tail)
    except Exception:  # never raise: show everything
        return html, ""


# Elements that end a line of text (as a browser lays them out).
_BLOCKS = {
    "address", "article", "aside", "blockquote", "br", "center", "dd", "details", "dialog", "dir", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul", "caption", "body", "html",
}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_INVISIBLE = {"head", "style", "script", "title", "template", "noscript"}
_BORDER_TOP = re.compile(r"border-top[^;]*solid|border-top-style\s*:\s*solid", re.I)


def _quote_marks(depth: int) -> str:
    """"> " per enclosing <blockquote>, a few at most: _classify only asks
    whether a line is quoted, and thousands of levels made every line long."""
    return "> " * min(depth, 8)


@dataclass(frozen=True, slots=True)
class _Open:
    """The elements open at a point: a linked stack, shared by every line that
    begins under it (a tuple per line was quadratic in the nesting depth)."""

    tag: str
    raw: str  # its start tag as written
    parent: _Open | None


@dataclass(frozen=True, slots=True)
class _Line:
    text: str  # with "> " per enclosing <blockquote>
    offset: int  # where in the HTML the line begins (a tag boundary)
    open: _Open | None  # the elements open at `offset`, innermost first

    @property
    def open_tags(self) -> tuple[str, ...]:
        """Start tags of the elements open at `offset`, outermost first."""
        tags = []
        node = self.open
        while node is not None:
            tags.append(node.raw)
            node = node.parent
        return tuple(reversed(tags))


class _HTMLLines(HTMLParser):
    """The lines of text an HTML body shows, each with where it begins.

    Quoting becomes what `_classify` reads in plain text: `<blockquote>` content
    gets "> ", and an <hr> or an element with a solid top border (how Outlook and
    Windows Mail draw the line above a quoted header) becomes a separator line."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=False)
        self.html = html
        self._line_offsets = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", html)]
        self.lines: list[_Line] = []
        self._open: _Open | None = None
        self._counts: dict[str, int] = {}  # open elements by tag, for end tags and hidden text
        self._hidden = 0  # open elements whose text is not shown
        self._depth = 0
        self._text: list[str] = []
        self._start: tuple[int, _Open | None, int] | None = None  # offset, open tags, depth
        self._next: tuple[int, _Open | None] = (0, None)
        self.feed(html)
        self.close()
        self._flush()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_offsets[line - 1] + column

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._text)).strip()
        if text and self._start is not None:
            offset, open_tags, depth = self._start
            self.lines.append(_Line(_quote_marks(depth) + text, offset, open_tags))
        self._text, self._start = [], None

    def _add_text(self, text: str) -> None:
        if self._hidden:
            return
        if self._start is None and text.strip():
            self._start = (*self._next, self._depth)
        self._text.append(text)

    def _push(self, tag: str, raw: str) -> None:
        self._open = _Open(tag, raw, self._open)
        self._counts[tag] = self._counts.get(tag, 0) + 1
        if tag in _INVISIBLE:
            self._hidden += 1

    def _pop(self) -> str:
        node = self._open
        assert node is not None
        self._open = node.parent
        self._counts[node.tag] -= 1
        if node.tag in _INVISIBLE:
            self._hidden -= 1
        return node.tag

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        offset, raw = self._offset(), self.get_starttag_text() or ""
        if tag in _BLOCKS:
            self._flush()
            # The next line begins at this tag (a <br> ends the line: after it).
            self._next = (offset + len(raw), self._open) if tag == "br" else (offset, self._open)
        if tag == "hr" or _BORDER_TOP.search(dict(attrs).get("style") or ""):
            self._flush()
            self.lines.append(_Line(_quote_marks(self._depth) + "_" * 32, offset, self._open))
        if tag == "blockquote":
            self._depth += 1
        if tag not in _VOID:
            self._push(tag, raw)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and self._open is not None and self._open.tag == tag:
            self._pop()

    def handle_endtag(self, tag: str) -> None:
        offset = self._offset()
        end = self.html.find(">", offset)
        end = len(self.html) if end < 0 else end + 1
        if self._counts.get(tag):
            while self._open is not None:
                if self._pop() == tag:
                    break
        if tag in _BLOCKS:
            self._flush()
            self._next = (end, self._open)
        if tag == "blockquote" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._counts.get("pre"):
            self._add_text(data)
            return
        offset = self._offset()  # in <pre> a newline ends a line
        for piece in re.split(r"(\r\n|\r|\n)", data):
            if piece in ("\r\n", "\r", "\n"):
                offset += len(piece)
                self._flush()
                self._next = (offset, self._open)
            else:
                self._add_text(piece)
                offset += len(piece)

    def handle_entityref(self, name: str) -> None:
        self._add_text(html_module.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self._add_text(html_module.unescape(f"&#{name};"))
