"""IMAP with IMAPClient: by UID, BODY.PEEK[] (nothing marked read before we own it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timezone

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import DELETED, SEEN, SocketTimeout

from postdesk.sources._base import COMMAND_TIMEOUT, CONNECT_TIMEOUT, Fetched, Listed, SourceError, tls_context, where

FETCH_SIZE_CHUNK = 1000  # UIDs per RFC822.SIZE request when listing


class ImapSource:
    def __init__(self, client: IMAPClient, mailbox, uidvalidity: int):
        self.client = client
        self.mailbox = mailbox
        self.uidvalidity = uidvalidity

    @classmethod
    def connect(cls, mailbox, password: str) -> ImapSource:
        context = tls_context(mailbox)
        client = IMAPClient(
            mailbox.host,
            port=mailbox.port or (993 if mailbox.security == "tls" else 143),
            ssl=mailbox.security == "tls",
            ssl_context=context,
            timeout=SocketTimeout(connect=CONNECT_TIMEOUT, read=COMMAND_TIMEOUT),
        )
        client.normalise_times = False  # keep INTERNALDATE's zone: aware datetimes
        try:
            if mailbox.security == "starttls":
                # No silent fallback: a server that does not offer STARTTLS is an error.
                if not client.has_capability("STARTTLS"):
                    raise SourceError("tls", f"{where(mailbox)} does not offer STARTTLS; refusing to log in without TLS")
                client.starttls(context)
            try:
                client.login(mailbox.username, password)
            except LoginError as exc:
                raise SourceError("login", f"login as {mailbox.username!r} refused: {_text(exc)}") from None
            uidvalidity = cls._select(client, mailbox)
        except BaseException:
            _logout_quietly(client)
            raise
        return cls(client, mailbox, uidvalidity)

    @staticmethod
    def _select(client: IMAPClient, mailbox) -> int:
        try:
            info = client.select_folder(mailbox.folder)
        except IMAPClientError as exc:
            raise SourceError("folder", f"folder {mailbox.folder!r} cannot be opened: {_text(exc)}") from None
        return int(info[b"UIDVALIDITY"])

    def key(self, uid: int) -> str:
        return f"{self.uidvalidity}/{uid}"

    def _uid(self, key: str) -> int:
        return int(key.split("/", 1)[1])

    def list(self) -> list[Listed]:
        uids = sorted(self.client.search("ALL"))
        listed: list[Listed] = []
        for start in range(0, len(uids), FETCH_SIZE_CHUNK):
            chunk = uids[start : start + FETCH_SIZE_CHUNK]
            for uid, data in sorted(self.client.fetch(chunk, ["RFC822.SIZE", "INTERNALDATE"]).items()):
                listed.append(Listed(self.key(uid), data.get(b"RFC822.SIZE"), _aware(data.get(b"INTERNALDATE"))))
        return listed

    def fetch(self, keys: list[str]) -> Iterator[Fetched]:
        by_uid = {self._uid(k): k for k in keys}
        if not by_uid:
            return
        response = self.client.fetch(sorted(by_uid), ["BODY.PEEK[]", "INTERNALDATE"])
        for uid in sorted(response):
            data = response[uid]
            raw = data.get(b"BODY[]")
            if raw is None or uid not in by_uid:
                continue  # expunged by someone else meanwhile: it will not be acknowledged
            yield Fetched(by_uid[uid], bytes(raw), _aware(data.get(b"INTERNALDATE")))

    def acknowledge(self, keys: list[str]) -> list[str]:
        uids = [self._uid(k) for k in keys]
        if not uids:
            return []
        policy = self.mailbox.after_import
        if policy == "seen":
            self.client.add_flags(uids, [SEEN], silent=True)
        elif policy == "move":
            self._ensure_folder(self.mailbox.move_folder)
            if self.client.has_capability("MOVE"):
                self.client.move(uids, self.mailbox.move_folder)
            else:
                self.client.copy(uids, self.mailbox.move_folder)
                self._expunge(uids)
        elif policy == "delete":
            self._expunge(uids)
        return list(keys)

    def _expunge(self, uids: list[int]) -> None:
        self.client.add_flags(uids, [DELETED], silent=True)
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge(uids)  # only ours, not what someone else flagged
        else:
            self.client.expunge()

    def _ensure_folder(self, folder: str) -> None:
        if not self.client.folder_exists(folder):
            try:
                self.client.create_folder(folder)
            except IMAPClientError:
                if not self.client.folder_exists(folder):  # created meanwhile by another worker
                    raise

    def count(self) -> int:
        return len(self.client.search("ALL"))

    def message_ids(self, keys: list[str]) -> dict[str, str]:
        """{key: Message-ID without <>}: a header fetch of a few bytes each, to recognise
        messages we hold under an older UIDVALIDITY without downloading them (postdesk.identity)."""
        from postdesk.identity import header_message_id

        by_uid = {self._uid(k): k for k in keys}
        found: dict[str, str] = {}
        uids = sorted(by_uid)
        for start in range(0, len(uids), FETCH_SIZE_CHUNK):
            response = self.client.fetch(uids[start : start + FETCH_SIZE_CHUNK], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for uid, data in response.items():
                header = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), None)
                if uid in by_uid and header:
                    found[by_uid[uid]] = header_message_id(bytes(header))
        return found

    def close(self) -> list[str]:
        _logout_quietly(self.client)
        return []


def _aware(value):
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _text(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = _SERVER_TIMING.sub("", " ".join(str(text).split()))
    return text[:200]


# Dovecot appends its own timing, "(0.001 + 0.000 secs)": the same error should
# read the same on every attempt.
_SERVER_TIMING = re.compile(r"\s*\([0-9.]+ \+ [0-9.]+(?: \+ [0-9.]+)? secs\)\.?")


def _logout_quietly(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the connection may already be gone; nothing to save
        try:
            client.shutdown()
        except Exception:
            pass
