"""A browser in words ("Firefox 128 on Linux") from its User-Agent header, for the
sessions pages and the sign-in log.

Ours rather than a library's: the pages only need a name a person recognises,
not devices or bots, and a dozen ordered rules do that without a rules file to
keep up to date (ua-parser) or an unmaintained wrapper (user-agents).  The
rules are data: the first that matches wins, so a browser that also claims to be
another (Edge says "Chrome", Chrome says "Safari", an iPhone says "Mac OS X")
comes before the one it imitates.  The header is the browser's own claim: it
helps a person recognise a session, it proves nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (name, pattern with the major version as group 1), most specific first.
BROWSER_RULES: list[tuple[str, re.Pattern]] = [
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:HeadlessChrome|Chromium|Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]*(?: Mobile/\S+)? Safari/")),
    ("curl", re.compile(r"^curl/(\d+)")),
]
# (name, pattern), most specific first.
SYSTEM_RULES: list[tuple[str, re.Pattern]] = [
    ("iPadOS", re.compile(r"\biPad\b")),
    ("iOS", re.compile(r"\biPhone\b|\biPod\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMacintosh\b|\bMac OS X\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
]
UNKNOWN = "Unknown browser"


@dataclass(frozen=True)
class Browser:
    name: str  # "" when no rule knew it
    version: str  # the major version, "" if unknown
    system: str  # "" if unknown

    @property
    def words(self) -> str:
        """What the pages show: "Firefox 128 on Linux", "Chrome on Android", "Unknown browser"."""
        name = " ".join(part for part in (self.name, self.version) if part) or UNKNOWN
        return f"{name} on {self.system}" if self.system else name


def describe(user_agent: str) -> Browser:
    """The browser and system a User-Agent header names (empty fields for what it does not)."""
    name, version = _first_browser(user_agent or "")
    system = next((label for label, pattern in SYSTEM_RULES if pattern.search(user_agent or "")), "")
    return Browser(name, version, system)


def _first_browser(user_agent: str) -> tuple[str, str]:
    for name, pattern in BROWSER_RULES:
        found = pattern.search(user_agent)
        if found:
            return name, found.group(1)
    return "", ""
