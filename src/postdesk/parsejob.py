"""What a parser process does (process/parallel.py starts them): read one message.

A job is the parse and everything the request page will show of the message
(the reply split, the new part of an HTML reply, the remote images left out),
so that all the work hostile input can make slow runs here, in a process that
can be killed when it overruns, and never again per view.

This module runs in spawned processes: it imports only the standard library
and postdesk.mail, never Django (which is not set up there).
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass

from postdesk.mail import ParsedMessage, for_display, parse, split_reply, split_reply_html


@dataclass(frozen=True)
class Display:
    """What the request page shows, computed once (stored on Message)."""

    text_parts: dict  # {} when nothing is folded (or it has HTML); else new_text, quoted_text, signature
    html_new: str | None  # the new part of an HTML reply; None when nothing is folded
    remote_images: int  # remote images the frame leaves out until the reader asks


# What a message whose display could not be computed in time shows: all of it, unfolded.
NOTHING_FOLDED = Display({}, None, 0)


def display_of(text: str, html: str | None) -> Display:
    """Only what the page shows: a message with HTML is shown in the frame (its text
    only as the unfolded "text version"), so its text is not split."""
    if not html:
        parts = split_reply(text)
        text_parts = {"new_text": parts.new_text, "quoted_text": parts.quoted_text, "signature": parts.signature} \
            if parts.has_folded else {}
        return Display(text_parts, None, 0)
    new, folded = split_reply_html(html)
    remote = for_display(html, lambda cid: None, remote_images=False).remote_blocked
    return Display({}, new if folded else None, remote)


def parse_job(raw: bytes) -> tuple[ParsedMessage, Display]:
    _test_hook(raw)
    parsed = parse(raw)
    return parsed, display_of(parsed.text, parsed.html)


def display_job(payload: tuple[str, str | None]) -> Display:
    return display_of(*payload)


JOBS = {"parse": parse_job, "display": display_job}


def main(fd: int) -> None:
    """The parser process's entry point (process/parallel.py starts it): the pipe is fd."""
    from multiprocessing.connection import Connection

    serve(Connection(fd))


def serve(conn) -> None:
    """The parser process's loop: a job in, its result out, until the pipe closes.

    Ctrl-C in a terminal reaches the whole process group: a parser ignores it
    and leaves stopping to its parent (which kills it) instead of dying
    mid-message and being counted as a death of that message.  If the parent is
    killed, a parser ends at its next read or write of the pipe (no death signal
    from the kernel: that one fires when the starting *thread* ends)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send("ready")  # imports done: a job's deadline starts when it is sent
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = ("ok", JOBS[kind](payload))
        except Exception as exc:  # parse() never raises; this is a bug in the display part
            result = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(result)
        except OSError:  # the parent is gone
            return


# --- tests only ---------------------------------------------------------------------

_TEST_HEADER = re.compile(rb"(?im)^X-Postdesk-Test-Parse:[ \t]*(sleep[ \t]+([0-9.]+)|die)[ \t]*\r?$")


def _test_hook(raw: bytes) -> None:
    """With POSTDESK_TEST_PARSE_HOOKS=1 (tests only), a message whose header says
    `X-Postdesk-Test-Parse: sleep N` takes N seconds to read, and one that says
    `die` kills its parser: stand-ins for hostile input the parser may meet
    (native code that answers no signal, memory exhaustion).  Without the
    variable the header means nothing."""
    if os.environ.get("POSTDESK_TEST_PARSE_HOOKS") != "1":
        return
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _TEST_HEADER.search(head)
    if match is None:
        return
    if match.group(2) is not None:
        time.sleep(float(match.group(2)))
    else:
        os.kill(os.getpid(), signal.SIGKILL)
