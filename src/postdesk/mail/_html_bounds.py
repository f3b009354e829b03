"""A linear pre-pass that keeps hostile HTML away from the slow paths of the
HTML parsers behind it (html5ever inside nh3, libxml2 inside inscriptis).

Those parsers are native code: no signal interrupts them, so a slow input
holds a worker until it is killed.  What makes them slow, measured:

- nesting depth: html5ever looks through the stack of open elements at most
  start and end tags ("is there a <p> in button scope?"), so 1 MB of `<div>`
  took about 300 s; nested lists and tables the same.  libxml2 gives up at
  depth 256 and inscriptis then returns no text at all;
- attributes: html5ever checks each new attribute against the tag's others
  (40,000 attributes: 0.5 s; libxml2 12 s);
- a long run of text with some Latin-1 symbols (U+00A0 no-break space, the
  copyright sign, ...) in one piece: quadratic in html5ever's tokenizer.

So, in one pass over the tokens (a regex per token, a small model of the tree
builder's stack with its implicit closing rules):

- start tags deeper than MAX_DEPTH are dropped, with their end tags (their
  text stays where it was; a defect is recorded);
- a tag longer than MAX_TAG_CHARS keeps only the first of each attribute the
  sanitizer allows (it would drop the others anyway);
- an empty comment is put into text runs longer than MAX_TEXT_RUN: both
  parsers join the text around it and the sanitizer drops comments, so the
  output is the same, made in linear time.

The model need not match the HTML5 tree builder exactly: it errs toward
counting too deep, and the sanitizer after it decides what is safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_DEPTH = 160  # open elements; libxml2 stops at 256, real mail stays far below
MAX_FORMATTING = 24  # formatting elements (<b>, <font>, ...) the parser keeps to re-open
# Elements the parser may re-open ("reconstruct") in all: each costs an element
# in its output, so a few thousand misnested <b> made it grow quadratically.
MAX_REOPENED = 5_000
MAX_LISTS = 24  # nested lists and items: HTML-to-text indents each level (quadratic text)
MAX_TAG_CHARS = 2048
MAX_TEXT_RUN = 2048
MAX_KEPT_ATTRIBUTES = 64

_WS = "\t\n\f\r "
_ATTRIBUTES = rf"""(?:[{_WS}/]++|[^{_WS}/>][^{_WS}/>=]*+(?:[{_WS}]*+=[{_WS}]*+(?:"[^"]*+"|'[^']*+'|[^{_WS}>]++))?)*+"""
# The next piece of markup: a start or end tag (1 "/", 2 name, 3 attributes),
# tokenized as the HTML tokenizer does (attribute names may begin with "=" or
# hold quotes; values quoted or not); 4 a comment; 5 a bogus comment ("<!x",
# "<?x", "</ x"); 6 a tag that never ends.  Possessive quantifiers: no
# backtracking, so a tag without its ">" costs one scan, once.
_TOKEN = re.compile(rf"<(?:(/?)([A-Za-z][^{_WS}/>]*+)({_ATTRIBUTES})>|(!--)|([!?/])|()(?=[A-Za-z]))")
_ATTRIBUTE = re.compile(rf"""([^{_WS}/>][^{_WS}/>=]*+)(?:[{_WS}]*+=[{_WS}]*+("[^"]*+"|'[^']*+'|[^{_WS}>]++))?""")
_COMMENT_END = re.compile(r"--!?>")
_EMPTY_COMMENT = "<!---->"

_VOID = {
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
}  # fmt: skip
# Their content is not markup: skipped whole (the sanitizer drops most of them
# with their content).  <plaintext> makes the rest of the document text.
_RAW_TEXT = {"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title"}
_SPECIAL = {
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound", "blockquote", "body", "br",
    "button", "caption", "center", "col", "colgroup", "dd", "details", "dir", "div", "dl", "dt", "embed",
    "fieldset", "figcaption", "figure", "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6",
    "head", "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link", "listing", "main",
    "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript", "object", "ol", "p", "param",
    "plaintext", "pre", "script", "search", "section", "select", "source", "style", "summary", "table", "tbody",
    "td", "template", "textarea", "tfoot", "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp",
    "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc",
}  # fmt: skip
_SCOPE = {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template",
          "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc", "title"}  # fmt: skip
# Start tags that close an open <p> (in button scope).
_CLOSES_P = {
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "fieldset",
    "figcaption", "figure", "footer", "header", "hgroup", "main", "menu", "nav", "ol", "p", "search", "section",
    "summary", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "listing", "form", "li", "dd", "dt", "plaintext",
    "table", "hr", "xmp",
}  # fmt: skip
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_FORMATTING = {"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"}
_MARKERS = {"applet", "object", "marquee", "template", "td", "th", "caption"}
_IMPLIES_CLOSE = _CLOSES_P | set(_HEADINGS) | {
    "li", "dd", "dt", "td", "th", "tr", "tbody", "thead", "tfoot", "option", "optgroup", "a", "button", "nobr",
}  # fmt: skip
_BLOCK_LIKE = _SPECIAL - {"br", "img", "wbr"}
_LISTS = {"ul", "ol", "dl", "menu", "dir", "li", "dd", "dt"}
# Start tags before which the parser re-opens formatting elements closed early.
_NO_REOPEN = (_SPECIAL - {"applet", "marquee", "object", "area", "br", "embed", "img", "keygen", "wbr", "input"}) | {"dialog", "search"}

# Walking down the stack for an element stops at one of these ("in scope").
_BARRIERS = {
    "default": _SCOPE,
    "button": _SCOPE | {"button"},
    "list": _SCOPE | {"ol", "ul"},
    "table": {"html", "table", "template"},
    "li": _SPECIAL - {"address", "div", "p"},
    "special": _SPECIAL,
}
_BARRIER_CLASSES: dict[str, tuple[str, ...]] = {}
for _cls, _tags in _BARRIERS.items():
    for _tag in _tags:
        _BARRIER_CLASSES[_tag] = _BARRIER_CLASSES.get(_tag, ()) + (_cls,)


@dataclass
class Bounded:
    html: str
    defects: list[str] = field(default_factory=list)


def bound_html(html: str, allowed_attributes: Mapping[str, set[str]]) -> Bounded:
    """`html` with nesting, tag length and text runs bounded; the same string
    when nothing needed bounding (and then without a pass when it is short)."""
    if len(html) <= MAX_TEXT_RUN and html.count("<") <= MAX_FORMATTING:
        return Bounded(html)
    return _Bounder(html, allowed_attributes).run()


def _has_many_attributes(attributes: str) -> bool:
    """More attributes than a tag would keep (a long tag may be one data: URL)."""
    count = 0
    for _ in _ATTRIBUTE.finditer(attributes):
        count += 1
        if count > MAX_KEPT_ATTRIBUTES:
            return True
    return False


class _Entry:
    """An entry in the parser's list of active formatting elements."""

    __slots__ = ("name", "key", "open")

    def __init__(self, name: str, key: str) -> None:
        self.name, self.key, self.open = name, key, True


class _Bounder:
    def __init__(self, html: str, allowed_attributes: Mapping[str, set[str]]) -> None:
        self.html = html
        self.allowed = allowed_attributes
        self.out: list[str] = []
        self.copied = 0  # html[:copied] is in `out` (or was replaced there)
        self.stack: list[str] = []
        self.entries: list[_Entry | None] = []  # per stack element: its formatting entry
        self.where: dict[str, list[int]] = {}  # tag -> its indices in the stack
        self.barriers: dict[str, list[int]] = {cls: [] for cls in _BARRIERS}
        # The list of active formatting elements; None is a marker (a cell, ...).
        self.formatting: list[_Entry | None] = []
        self.formatting_count = 0
        self.closed_entries = 0  # entries whose element was closed: to be re-opened
        self.reopened = 0
        self.dropped: dict[str, int] = {}  # start tags left out and not yet ended
        self.foreign = 0  # open <svg>/<math>: "/>" closes an element there
        self.lists = 0
        self.dropped_total = 0
        self.closed_early = 0
        self.cut_tags = 0

    def run(self) -> Bounded:
        html, n, pos = self.html, len(self.html), 0
        search = _TOKEN.search
        stack = self.stack
        while pos < n:
            m = search(html, pos)
            start = m.start() if m else n
            if start > pos:
                if self.closed_entries:
                    self.reopen(pos)
                if start - pos > MAX_TEXT_RUN:
                    self.text(pos, start)
            if m is None:
                break
            name = m.group(2)
            if name is None:
                pos = self.other_markup(m)
                continue
            name = name.lower()
            if m.group(1):
                self.end_tag(name, m)
                pos = m.end()
                continue
            # A start tag; the common cases inline (this loop is the cost of the pass).
            if m.end() - start > MAX_TAG_CHARS and _has_many_attributes(m.group(3)):
                self.replace(start, m.end(), self.cut_attributes(name, m))
            pos = m.end()
            if name in _VOID or name in _RAW_TEXT or name == "plaintext" or name in _FORMATTING or self.foreign:
                pos = self.special_start_tag(name, m)
                continue
            if name in _IMPLIES_CLOSE:
                self.close_implied(name)
            if self.closed_entries and name not in _NO_REOPEN:
                self.reopen(start)
            if len(stack) >= MAX_DEPTH or (name in _LISTS and self.lists >= MAX_LISTS):
                self.drop_start(m, name)
            else:
                self.push(name, None)
        if not self.out:
            return Bounded(html)
        self.out.append(html[self.copied :])
        return Bounded("".join(self.out), self.defects())

    def defects(self) -> list[str]:
        found = []
        if self.dropped_total:
            found.append(
                f"HTML nested too deeply (over {MAX_DEPTH} elements or {MAX_LISTS} lists): "
                f"{self.dropped_total} tags dropped, their text kept"
            )
        if self.closed_early:
            found.append(f"HTML: {self.closed_early} misnested formatting elements closed early")
        if self.cut_tags:
            found.append(f"HTML: {self.cut_tags} tags with over {MAX_KEPT_ATTRIBUTES} attributes; only the known ones kept")
        return found

    # --- output -----------------------------------------------------------------

    def replace(self, start: int, end: int, text: str) -> None:
        self.out.append(self.html[self.copied : start])
        self.out.append(text)
        self.copied = end

    def drop_start(self, m: re.Match, name: str) -> None:
        self.dropped[name] = self.dropped.get(name, 0) + 1
        self.drop(m, name)

    def drop(self, m: re.Match, name: str) -> None:
        """Leave a tag out; a block's one keeps the words apart (as a space)."""
        self.dropped_total += 1
        replacement = " " if name in _BLOCK_LIKE else ""
        if self.copied > m.start():  # its attributes were cut already: replace that
            self.out[-1] = replacement
        else:
            self.replace(m.start(), m.end(), replacement)

    def text(self, start: int, end: int) -> None:
        """Break a long run of text with empty comments (see the module's docstring)."""
        html = self.html
        cut = start + MAX_TEXT_RUN
        while cut < end:
            # Never inside a character reference ("&nbsp;"): after its ";" or before its "&".
            amp = html.rfind("&", cut - 40, cut)
            if amp >= 0 and html.find(";", amp, cut) < 0:
                cut = amp
            if html[cut - 1] == "\r":  # CRLF is one line break: not between them
                cut += 1
            if cut <= start or cut >= end:
                break
            self.replace(cut, cut, _EMPTY_COMMENT)
            start = cut
            cut = start + MAX_TEXT_RUN

    # --- tokens -------------------------------------------------------------------

    def other_markup(self, m: re.Match) -> int:
        """Comments and bogus comments (skipped whole), a tag that never ends."""
        html, pos = self.html, m.start()
        if m.group(4):  # <!--
            if html.startswith(">", pos + 4) or html.startswith("->", pos + 4):  # <!--> and <!--->
                return html.index(">", pos + 4) + 1
            end = _COMMENT_END.search(html, pos + 4)
            return end.end() if end else len(html)  # an unclosed comment runs to the end
        if m.group(5):
            if html.startswith("</>", pos):
                return pos + 3
            end = html.find(">", pos)
            if end >= 0:
                return end + 1
        # "<a ..." without its ">": the rest is inside a tag the parser drops at
        # the end; left out here, since its tokenizer would still read (and
        # compare) every attribute in it.
        self.replace(pos, len(html), "")
        return len(html)

    def special_start_tag(self, name: str, m: re.Match) -> int:
        """Void, raw-text and formatting elements, and anything inside <svg>/<math>."""
        if name in _VOID or (self.foreign and m.group(0).endswith("/>")):
            if self.closed_entries and name not in _NO_REOPEN:
                self.reopen(m.start())
            return m.end()
        if name in _RAW_TEXT:
            end = re.compile(rf"</{name}[{_WS}/>]", re.I).search(self.html, m.end())
            return end.start() if end else len(self.html)
        if name == "plaintext":
            return len(self.html)
        if name in _IMPLIES_CLOSE:
            self.close_implied(name)
        if self.closed_entries and name not in _NO_REOPEN:
            self.reopen(m.start())
        if len(self.stack) >= MAX_DEPTH:
            self.drop_start(m, name)
        elif name not in _FORMATTING:
            self.push(name, None)
        else:
            entry = self.add_formatting(name, m.group(3))
            if entry is None:
                self.drop_start(m, name)
            else:
                self.push(name, entry)
        return m.end()

    def end_tag(self, name: str, m: re.Match) -> None:
        if m.end() - m.start() > MAX_TAG_CHARS and _has_many_attributes(m.group(3)):  # an end tag needs none
            self.cut_tags += 1
            self.replace(m.start(), m.end(), f"</{m.group(2)}>")
        if self.dropped.get(name):
            self.dropped[name] -= 1
            self.drop(m, name)
        elif name in _FORMATTING:
            self.end_formatting(name)
        elif name == "p" or name == "button":
            self.close_in_scope(name, "button" if name == "p" else "default")
        elif name == "li":
            self.close_in_scope("li", "list")
        elif name == "dd" or name == "dt":
            self.close_in_scope(self.innermost("dd", "dt"), "default")
        elif name in _HEADINGS:
            self.close_in_scope(self.innermost(*_HEADINGS), "default")
        elif name in ("table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption"):
            self.close_in_scope(name, "table")
        elif name in _SCOPE:
            self.close_in_scope(name, "default")
        elif name != "br":
            self.close_in_scope(name, "special")

    def close_implied(self, name: str) -> None:
        """The start tags that close open elements first (HTML5 "in body" rules)."""
        if name in _CLOSES_P:
            self.close_in_scope("p", "button")
        if name == "li":
            self.close_in_scope("li", "li")
        elif name == "dd" or name == "dt":
            self.close_in_scope(self.innermost("dd", "dt"), "li")
        elif name in _HEADINGS:
            if self.stack and self.stack[-1] in _HEADINGS:
                self.pop_to(len(self.stack) - 1)
        elif name == "td" or name == "th":
            self.close_in_scope(self.innermost("td", "th"), "table")
        elif name == "tr":
            self.close_in_scope("tr", "table")
        elif name in ("tbody", "thead", "tfoot"):
            self.close_in_scope(self.innermost("tbody", "thead", "tfoot"), "table")
        elif name == "option" or name == "optgroup":
            if self.stack and self.stack[-1] == "option":
                self.pop_to(len(self.stack) - 1)
            if name == "optgroup" and self.stack and self.stack[-1] == "optgroup":
                self.pop_to(len(self.stack) - 1)
        elif name == "a":
            self.end_formatting("a")
        elif name == "button" or name == "nobr":
            self.close_in_scope(name, "default")

    # --- the stack of open elements ---------------------------------------------------

    def push(self, name: str, entry: _Entry | None) -> None:
        index = len(self.stack)
        self.stack.append(name)
        self.entries.append(entry)
        where = self.where.get(name)
        if where is None:
            self.where[name] = [index]
        else:
            where.append(index)
        for cls in _BARRIER_CLASSES.get(name, ()):
            self.barriers[cls].append(index)
        if name in _MARKERS:
            self.formatting.append(None)
        elif name == "svg" or name == "math":
            self.foreign += 1
        elif name in _LISTS:
            self.lists += 1

    def pop_to(self, index: int) -> None:
        """Close the element at `index` and everything inside it."""
        stack = self.stack
        while len(stack) > index:
            name = stack.pop()
            entry = self.entries.pop()
            if entry is not None and entry.open:
                entry.open = False
                self.closed_entries += 1
            self.where[name].pop()
            for cls in _BARRIER_CLASSES.get(name, ()):
                self.barriers[cls].pop()
            if name in _MARKERS:
                self.clear_to_marker()
            elif name == "svg" or name == "math":
                self.foreign -= 1
            elif name in _LISTS:
                self.lists -= 1
        if self.dropped:  # closing an element closes whatever was dropped inside it
            self.dropped.clear()

    def innermost(self, *names: str) -> str:
        return max(names, key=lambda n: self.where[n][-1] if self.where.get(n) else -1)

    def in_scope(self, name: str, scope: str) -> int:
        """The stack index of the innermost `name` when it is in `scope`, else -1."""
        where = self.where.get(name)
        if not where:
            return -1
        barriers = self.barriers[scope]
        return where[-1] if not barriers or where[-1] >= barriers[-1] else -1

    def close_in_scope(self, name: str, scope: str) -> None:
        index = self.in_scope(name, scope)
        if index >= 0:
            self.pop_to(index)

    # --- the list of active formatting elements ---------------------------------------

    def add_formatting(self, name: str, attributes: str) -> _Entry | None:
        """A new entry, or None when too many are kept (the tag is then dropped)."""
        if self.formatting_count >= MAX_FORMATTING:
            return None
        key = attributes.strip()
        alike = []
        for i in range(len(self.formatting) - 1, -1, -1):
            item = self.formatting[i]
            if item is None:
                break
            if item.name == name and item.key == key:
                alike.append(i)
        if len(alike) >= 3:  # the "Noah's Ark" clause: three alike at most
            self.remove_entry(alike[-1])
        entry = _Entry(name, key)
        self.formatting.append(entry)
        self.formatting_count += 1
        return entry

    def remove_entry(self, i: int) -> None:
        entry = self.formatting.pop(i)
        if entry is not None:
            self.formatting_count -= 1
            if not entry.open:
                self.closed_entries -= 1
            entry.open = False  # off the list: closing its element leaves nothing to re-open

    def end_formatting(self, name: str) -> None:
        """The adoption agency, roughly: the element and its entry go when in scope."""
        for i in range(len(self.formatting) - 1, -1, -1):
            item = self.formatting[i]
            if item is None:
                break
            if item.name == name:
                if not item.open:
                    self.remove_entry(i)
                    return
                index = self.in_scope(name, "default")
                if index >= 0:
                    self.remove_entry(i)
                    self.pop_to(index)
                return
        self.close_in_scope(name, "special")

    def clear_to_marker(self) -> None:
        while self.formatting:
            item = self.formatting[-1]
            self.remove_entry(len(self.formatting) - 1)
            if item is None:
                break

    def reopen(self, pos: int) -> None:
        """The parser re-opens the formatting elements closed early (before text
        and most tags).  Past MAX_REOPENED, or at the depth limit, their end
        tags are put in here instead, which takes them off its list."""
        first = len(self.formatting)
        while first > 0 and self.formatting[first - 1] is not None and not self.formatting[first - 1].open:
            first -= 1
        closed = self.formatting[first:]
        if not closed:
            return
        if self.reopened + len(closed) <= MAX_REOPENED and len(self.stack) + len(closed) <= MAX_DEPTH:
            self.reopened += len(closed)
            for entry in closed:
                entry.open = True
                self.closed_entries -= 1
                self.push(entry.name, entry)
            return
        self.replace(pos, pos, "".join(f"</{entry.name}>" for entry in reversed(closed)))
        self.closed_early += len(closed)
        for _ in closed:
            self.remove_entry(len(self.formatting) - 1)

    # --- attributes -------------------------------------------------------------------

    def cut_attributes(self, name: str, m: re.Match) -> str:
        """The tag with the first of each attribute the sanitizer allows, no others."""
        allowed = self.allowed.get("*", set()) | self.allowed.get(name, set())
        kept: dict[str, str] = {}
        for attr in _ATTRIBUTE.finditer(m.group(3)):
            attr_name = attr.group(1).lower()
            if attr_name in allowed and attr_name not in kept:
                kept[attr_name] = attr.group(0)
                if len(kept) >= MAX_KEPT_ATTRIBUTES:
                    break
        self.cut_tags += 1
        return f"<{m.group(1)}{m.group(2)}{''.join(' ' + a for a in kept.values())}>"
