"""Sources: where raw messages come from (IMAP, POP3, Maildir).

A source lists messages by *source key* (IMAP "uidvalidity/uid", the POP3
UIDL, the Maildir file name), fetches their exact bytes without changing
anything at the server, and acknowledges them per the mailbox's policy only
when told to, which the pipeline does after the bytes are committed here.

`open_source(mailbox)` is the one place a network client is made: tests that
need a misbehaving server replace it there.
"""

from __future__ import annotations

from postdesk.sources._base import Fetched, Listed, Source, SourceError, TooLarge, classify_error, where
from postdesk.sources._budget import Budget


def open_source(mailbox, password: str | None = None) -> Source:
    """Connect, log in and open the folder; raises SourceError with a clear reason.

    The source keeps to one pass's budget from here on (postdesk.sources._budget):
    the mailbox's pass deadline for the whole session, and the minimum rate."""
    from postdesk import secrets

    if password is None and mailbox.protocol != "maildir":
        password = secrets.decrypt(mailbox.secret)
    try:
        if mailbox.protocol == "imap":
            from postdesk.sources.imap import ImapSource

            return ImapSource.connect(mailbox, password, Budget.for_pass(mailbox, where(mailbox)))
        if mailbox.protocol == "pop3":
            from postdesk.sources.pop3 import Pop3Source

            return Pop3Source.connect(mailbox, password, Budget.for_pass(mailbox, where(mailbox)))
        if mailbox.protocol == "maildir":
            from postdesk.sources.maildir import MaildirSource

            return MaildirSource.open(mailbox)
    except SourceError:
        raise
    except Exception as exc:
        raise classify_error(exc, mailbox) from exc
    raise SourceError("config", f"unknown protocol {mailbox.protocol!r}")


__all__ = ["Fetched", "Listed", "Source", "SourceError", "TooLarge", "classify_error", "open_source"]
