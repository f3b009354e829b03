"""No inline CSS that loads anything survives either sanitizing pass.

The corpus is generated: every CSS function that can load something, in every
spelling a browser accepts (case, escapes, comments inside the name, full-width
letters, line continuations, HTML entities), in every property that takes an
image or a URL.  Both passes are tried: parse() (the stored HTML) and
for_display() (what the frame shows, also for HTML stored by anything else).
"""

from __future__ import annotations

import html as html_module
import itertools
import re

import pytest

from postdesk.mail import for_display, parse

EVIL = "http://evil.example/x.png"

FUNCTIONS = {
    "url": [f"url({EVIL})", f'url("{EVIL}")', f"url( '{EVIL}' )"],
    "image": [f'image("{EVIL}")'],
    "image-set": [f'image-set("{EVIL}" 1x)', f"image-set(url({EVIL}) 1x)"],
    "-webkit-image-set": [f'-webkit-image-set("{EVIL}" 1x)'],
    "cross-fade": [f'cross-fade("{EVIL}", "{EVIL}", 50%)'],
    "element": ["element(#evil)"],
    "src": [f'src("{EVIL}")'],
}


def spellings(name: str) -> list[str]:
    """`name` as a browser would still read it (or nearly: the sanitizer must
    refuse the near misses too)."""
    first, rest = name[0], name[1:]
    if first == "-":  # -webkit-...: escape the first letter after the dash
        first, rest = name[:2], name[2:]
    head = first[-1]
    prefix = first[:-1]
    return [
        name,
        name.upper(),
        name.title(),
        f"{prefix}\\{ord(head):x} {rest}",  # \75 rl
        f"{prefix}\\{ord(head):06x}{rest}",  # \000075rl
        f"{prefix}\\{ord(head.upper()):X}{rest}",  # \55rl (upper case)
        f"{prefix}{head}\\{rest}",  # u\rl
        f"{prefix}{head}/**/{rest}",  # u/**/rl
        f"{prefix}{head}/* x */{rest}",
        "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name),  # full width
        f"{prefix}{head}\\\n{rest}",  # newline escape
        f"{prefix}{head}&#{ord(rest[0]) if rest else 40};{rest[1:]}",  # HTML entity (the attribute is HTML)
        name + " ",  # a space before the bracket
    ]


CONTEXTS = [
    "background", "background-image", "list-style", "list-style-image", "content", "cursor",
    "border-image", "border-image-source", "mask", "mask-image", "-webkit-mask-image", "filter",
    "shape-outside", "-webkit-border-image",
]

IMPORTS = [f'@import "{EVIL}"', f"@import url({EVIL})", f'@IMPORT "{EVIL}"', f'@\\69 mport "{EVIL}"',
           f'@im/**/port "{EVIL}"', f'\\40 import "{EVIL}"']


def corpus() -> list[str]:
    """Style attribute values (HTML-attribute text), each of which would load EVIL if it survived."""
    cases = []
    contexts = itertools.cycle(CONTEXTS)
    for name, calls in FUNCTIONS.items():
        for spelled in spellings(name):
            for call in calls:
                loading = call.replace(name, spelled, 1)
                for _ in range(3):
                    cases.append(f"{next(contexts)}: {loading}")
    for context in CONTEXTS:
        cases.append(f"color: red; {context}: url({EVIL}); font-weight: bold")
        cases.append(f"{context}:\\75\\72\\6c\\28{EVIL}\\29")  # the whole call escaped
    cases.extend(IMPORTS)
    cases.append(f"background: u\\rl({EVIL}")  # unterminated
    cases.append(f"color: red\\3b background: url({EVIL})")  # an escaped semicolon
    cases.append(f"filter: progid:DXImageTransform.Microsoft.AlphaImageLoader(src='{EVIL}')")
    cases.append(f"behavior: url({EVIL})")
    cases.append(f"-moz-binding: url({EVIL}#x)")
    cases.append(f'content: "x"; background: \\5c 75rl({EVIL})')  # an escaped backslash: no second decoding
    return cases


CORPUS = corpus()


def loads_something(style: str) -> bool:
    text = html_module.unescape(style).lower()
    return any(word in text for word in ("url(", "image", "http", "evil", "@import", "\\"))


def styles_of(html: str) -> dict[str, str]:
    """title -> style of every element in sanitized HTML."""
    found = {}
    for tag in re.finditer(r"<p\b[^>]*>", html):
        title = re.search(r'title="([^"]*)"', tag.group(0))
        style = re.search(r'style="([^"]*)"', tag.group(0))
        if title:
            found[title.group(1)] = style.group(1) if style else ""
    return found


def document() -> str:
    return "".join(f'<p title="case-{i}" style="{style}">x</p>\n' for i, style in enumerate(CORPUS))


def test_the_corpus_is_large():
    assert len(CORPUS) >= 100


def test_parse_keeps_no_loading_css():
    raw = ("From: a@example.com\r\nTo: b@example.com\r\nSubject: css\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=utf-8\r\n\r\n" + document()).encode()
    styles = styles_of(parse(raw).html)
    assert len(styles) == len(CORPUS)
    survivors = {CORPUS[int(t.split("-")[1])]: s for t, s in styles.items() if loads_something(s)}
    assert survivors == {}


def test_display_pass_keeps_no_loading_css():
    # HTML stored by anything but our parser (older versions, imports) is cleaned again on display.
    shown = for_display(document(), lambda cid: None, remote_images=True).html
    styles = styles_of(shown)
    assert len(styles) == len(CORPUS)
    survivors = {CORPUS[int(t.split("-")[1])]: s for t, s in styles.items() if loads_something(s)}
    assert survivors == {}


@pytest.mark.parametrize(("style", "kept"), [
    ("color: red; font-weight: bold", "color: red; font-weight: bold"),
    ("color: red; background: url(http://evil.example/x.png); margin: 0", "color: red; margin: 0"),
    ("background: linear-gradient(to right, #fff, rgb(0, 0, 0))", "background: linear-gradient(to right, #fff, rgb(0, 0, 0))"),
    ("width: calc((100% - 2px) / 2)", "width: calc((100% - 2px) / 2)"),
    # Chinese newsletters name their fonts by escapes: kept, decoded.
    ("font-family: \\5FAE\\8F6F\\96C5\\9ED1", "font-family: 微软雅黑"),
    ("font-family: 'ＭＳ Ｐゴシック'", "font-family: 'ＭＳ Ｐゴシック'"),
    ("color: red /* a note */", "color: red"),
])
def test_harmless_css_is_kept(style, kept):
    shown = for_display(f'<p style="{html_module.escape(style)}">x</p>', lambda cid: None, remote_images=False).html
    assert html_module.unescape(styles_of(shown.replace("<p ", '<p title="t" '))["t"]).strip() == kept


def test_a_style_left_with_nothing_is_dropped():
    shown = for_display(f'<p style="background: url({EVIL})">x</p>', lambda cid: None, remote_images=True).html
    assert shown == "<p>x</p>"
