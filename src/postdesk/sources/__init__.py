"""Sources: where raw messages come from (IMAP, POP3, Maildir).

A source lists messages by *source key* (IMAP "uidvalidity/uid", the POP3
UIDL, the Maildir file name), fetches their exact bytes without changing
anything at the server, and acknowledges them per the mailbox's policy only
when told to, which the pipeline does after the bytes are committed here.

Sources are the only code that speaks IMAP, POP3 and SMTP (sources.smtp), and
credentials.py the only code that turns a mailbox into a way to sign in
(a password, an OAuth2 token).  `open_source(mailbox)` is the one place a
fetching client is made: tests that need a misbehaving server replace it there.
"""

from __future__ import annotations

from postdesk.sources._base import Fetched, Listed, Source, SourceError, TooLarge, classify_error, where
from postdesk.sources._budget import Budget
from postdesk.sources.credentials import FETCH, SEND, Credentials, credentials_for


def open_source(mailbox) -> Source:
    """Connect, log in and open the folder; raises SourceError with a clear reason.

    The source keeps to one pass's budget from here on (postdesk.sources._budget):
    the mailbox's pass deadline for the whole session, and the minimum rate."""
    if mailbox.protocol == "maildir":
        from postdesk.sources.maildir import MaildirSource

        return MaildirSource.open(mailbox)
    return _connect(mailbox, Budget.for_pass(mailbox, where(mailbox)))


def open_watch(mailbox) -> Source:
    """An IMAP session for the IDLE watcher: no pass deadline (it idles for minutes),
    only the per-read timeout and the literal guard."""
    return _connect(mailbox, None)


def save_sent_copy(mailbox, folder: str, raw: bytes) -> None:
    """Keep a copy of what we sent in the mailbox's IMAP `folder` (created if missing)."""
    source = open_source(mailbox)
    try:
        source.append_copy(folder, raw)
    finally:
        source.close()


def _connect(mailbox, budget: Budget | None) -> Source:
    credentials = credentials_for(mailbox, FETCH)
    credentials.check()
    try:
        if mailbox.protocol == "imap":
            from postdesk.sources.imap import ImapSource

            return ImapSource.connect(mailbox, credentials, budget)
        if mailbox.protocol == "pop3":
            from postdesk.sources.pop3 import Pop3Source

            return Pop3Source.connect(mailbox, credentials, budget)
    except SourceError:
        raise
    except Exception as exc:
        raise classify_error(exc, mailbox) from exc
    raise SourceError("config", f"unknown protocol {mailbox.protocol!r}")


__all__ = ["FETCH", "SEND", "Credentials", "Fetched", "Listed", "Source", "SourceError", "TooLarge", "classify_error",
           "credentials_for", "open_source", "open_watch", "save_sent_copy"]
