"""A browser in words from its User-Agent header (postdesk.signin.browsers): real
headers of the browsers staff use, and what is left when a header says little."""

from __future__ import annotations

import pytest

from postdesk.signin.browsers import describe

HEADERS = {
    "Firefox 128 on Linux": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Firefox 127 on Windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Chrome 126 on macOS": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/126.0.0.0 Safari/537.36",
    "Chrome 120 on Linux": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "HeadlessChrome/120.0.6099.224 Safari/537.36",
    "Edge 126 on Windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
    "Opera 111 on Windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                            "Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
    "Safari 17 on macOS": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                          "Version/17.5 Safari/605.1.15",
    "Safari 17 on iOS": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Chrome 126 on iOS": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                         "(KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
    "Safari 17 on iPadOS": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                           "Version/17.5 Mobile/15E148 Safari/604.1",
    "Chrome 126 on Android": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                             "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Samsung Internet 25 on Android": "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
                                      "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Chrome 125 on ChromeOS": "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
                              "Chrome/125.0.0.0 Safari/537.36",
    "curl 8": "curl/8.5.0",
}


@pytest.mark.parametrize("words", HEADERS)
def test_real_headers_in_words(words):
    assert describe(HEADERS[words]).words == words


@pytest.mark.parametrize("header, words", [
    ("", "Unknown browser"),
    ("python-requests/2.32", "Unknown browser"),
    ("Mozilla/5.0 (Windows NT 10.0) SomethingNew/3", "Unknown browser on Windows"),
])
def test_what_is_not_known_is_said_plainly(header, words):
    assert describe(header).words == words


def test_the_parts_are_kept_apart():
    found = describe(HEADERS["Firefox 128 on Linux"])
    assert (found.name, found.version, found.system) == ("Firefox", "128", "Linux")
