"""POP3 with poplib, by UIDL.

POP3 deletes happen at QUIT: a session that ends any other way rolls them back
at the server.  So acknowledge() only marks messages for deletion, and close()
reports them acknowledged only after QUIT succeeded.  A session that dies
before QUIT leaves the messages there; their UIDLs are already in our intake
table, so the next session deletes them without importing them again.
"""

from __future__ import annotations

import poplib
from collections.abc import Iterator

from postdesk.sources._base import COMMAND_TIMEOUT, CONNECT_TIMEOUT, Fetched, Listed, SourceError, tls_context, where


class Pop3Source:
    def __init__(self, client: poplib.POP3, mailbox):
        self.client = client
        self.mailbox = mailbox
        self._numbers: dict[str, int] = {}
        self._pending_delete: list[str] = []

    @classmethod
    def connect(cls, mailbox, password: str) -> Pop3Source:
        context = tls_context(mailbox)
        port = mailbox.port or (995 if mailbox.security == "tls" else 110)
        if mailbox.security == "tls":
            client = poplib.POP3_SSL(mailbox.host, port, context=context, timeout=CONNECT_TIMEOUT)
        else:
            client = poplib.POP3(mailbox.host, port, timeout=CONNECT_TIMEOUT)
        client.sock.settimeout(COMMAND_TIMEOUT)
        try:
            if mailbox.security == "starttls":
                # No silent fallback to plain text: the server must offer STLS.
                if "STLS" not in _capabilities(client):
                    raise SourceError("tls", f"{where(mailbox)} does not offer STLS; refusing to log in without TLS")
                client.stls(context)
            try:
                client.user(mailbox.username)
                client.pass_(password)
            except poplib.error_proto as exc:
                raise SourceError("login", f"login as {mailbox.username!r} refused: {_text(exc)}") from None
        except BaseException:
            _close_quietly(client)
            raise
        return cls(client, mailbox)

    def list(self) -> list[Listed]:
        _, uidl_lines, _ = self.client.uidl()
        _, list_lines, _ = self.client.list()
        sizes = {}
        for line in list_lines:
            number, size = line.split()[:2]
            sizes[int(number)] = int(size)
        listed = []
        for line in uidl_lines:
            number, uid = line.split()[:2]
            key = uid.decode("ascii", "replace")
            self._numbers[key] = int(number)
            listed.append(Listed(key, sizes.get(int(number))))
        return listed

    def fetch(self, keys: list[str]) -> Iterator[Fetched]:
        for key in keys:
            number = self._numbers.get(key)
            if number is None:
                continue
            _, lines, _ = self.client.retr(number)
            # poplib strips the line ends and undoes dot-stuffing; put CRLF back.
            yield Fetched(key, b"\r\n".join(lines) + b"\r\n")

    def acknowledge(self, keys: list[str]) -> list[str]:
        if self.mailbox.after_import != "delete":
            return list(keys)  # keep: our intake table remembers what was imported
        for key in keys:
            number = self._numbers.get(key)
            if number is not None:
                self.client.dele(number)
                self._pending_delete.append(key)
        return []  # final only after QUIT

    def count(self) -> int:
        return self.client.stat()[0]

    def close(self) -> list[str]:
        try:
            self.client.quit()
        except (poplib.error_proto, OSError) as exc:
            _close_quietly(self.client)
            raise SourceError("network", f"QUIT failed, deletions rolled back by the server: {exc}") from None
        done, self._pending_delete = self._pending_delete, []
        return done


def _capabilities(client: poplib.POP3) -> dict:
    try:
        return client.capa()
    except poplib.error_proto:
        return {}


def _text(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:200]


def _close_quietly(client: poplib.POP3) -> None:
    try:
        client.close()
    except Exception:  # already gone
        pass
