"""POP3 with poplib, by UIDL.

POP3 deletes happen at QUIT: a session that ends any other way rolls them back
at the server.  So acknowledge() only marks messages for deletion, and close()
reports them acknowledged only after QUIT succeeded.  A session that dies
before QUIT leaves the messages there; their UIDLs are already in our intake
table, so the next session deletes them without importing them again.

Multi-line answers (UIDL, LIST, RETR, TOP) are read here, not by poplib:
poplib collects a whole answer in memory however long it is, and refuses any
line over 2048 bytes, which real mail has.  Ours reads line pieces of any
length and stops once an answer is longer than it may be.
"""

from __future__ import annotations

import poplib
from collections.abc import Iterator

from postdesk.sources._base import (
    HEADER_SLICE,
    Fetched,
    Listed,
    SourceError,
    TooLarge,
    header_part,
    login_refused,
    server_text,
    tls_context,
    where,
)
from postdesk.sources._budget import Budget, describe_size, max_message_bytes, size_limit
from postdesk.sources.credentials import Credentials, b64, initial_response, preferred_mechanism, sign_in

PIECE = 64 * 1024  # bytes of a line read at a time: lines may be longer, they are joined
SLACK = 4096  # bytes a message may exceed the limit by (line ends, dot-stuffing) before it is cut off


class Pop3Source:
    def __init__(self, client: poplib.POP3, mailbox):
        self.client = client
        self.mailbox = mailbox
        self.limit = size_limit(mailbox)  # read now: POSTDESK_MAX_MESSAGE_MB applies from the next pass
        self._numbers: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._pending_delete: list[str] = []
        self._broken = False  # mid-answer when an error came: only closing the socket is left
        self._budget: Budget | None = None

    @classmethod
    def connect(cls, mailbox, credentials: Credentials, budget: Budget | None = None) -> Pop3Source:
        budget = budget or Budget.unmeasured(where(mailbox))
        context = tls_context(mailbox)
        port = mailbox.port or (995 if mailbox.security == "tls" else 110)
        if mailbox.security == "tls":
            client = poplib.POP3_SSL(mailbox.host, port, context=context, timeout=budget.connect_timeout())
        else:
            client = poplib.POP3(mailbox.host, port, timeout=budget.connect_timeout())
        _measure(client, budget)
        try:
            if mailbox.security == "starttls":
                # No silent fallback to plain text: the server must offer STLS.
                if "STLS" not in _capabilities(client):
                    raise SourceError("tls", f"{where(mailbox)} does not offer STLS; refusing to log in without TLS")
                client.stls(context)
                _measure(client, budget)  # poplib made a new file over the TLS socket
            try:
                sign_in(credentials, password=_password_login(client), token=_token_login(client, mailbox),
                        refused=poplib.error_proto)
            except poplib.error_proto as exc:
                raise login_refused(credentials.username, exc) from None
        except BaseException:
            _close_quietly(client)
            raise
        source = cls(client, mailbox)
        source._budget = budget
        return source

    def list(self) -> list[Listed]:
        cap = max_message_bytes()  # a listing is a line per message: far below this
        uidl_lines = self._long("UIDL", cap).splitlines()
        sizes = {}
        for line in self._long("LIST", cap).splitlines():
            number, size = line.split()[:2]
            sizes[int(number)] = int(size)
        listed = []
        for line in uidl_lines:
            number, uid = line.split()[:2]
            key = uid.decode("ascii", "replace")
            self._numbers[key] = int(number)
            self._sizes[key] = sizes.get(int(number))
            listed.append(Listed(key, sizes.get(int(number))))
        return listed

    def fetch(self, keys: list[str]) -> Iterator[Fetched | TooLarge]:
        for key in keys:
            number = self._numbers.get(key)
            if number is None:
                continue
            announced = self._sizes.get(key)
            if announced is not None and announced > self.limit:
                # Not downloaded: the header only (TOP n 0), at most HEADER_SLICE of it kept.
                try:
                    headers = self._long(f"TOP {number} 0", max_message_bytes(), keep=HEADER_SLICE)
                except poplib.error_proto:  # TOP is optional in POP3: left there without its header
                    headers = b""
                yield TooLarge(key, announced, header_part(headers))
                continue
            try:
                raw = self._long(f"RETR {number}", self.limit + SLACK)
            except _TooLong as cut:
                # Recorded as left at the source, so the next pass does not try it again.
                yield TooLarge(key, announced or cut.size, header_part(cut.start), lied=True)
                raise SourceError("too-large", f"{where(self.mailbox)} sent more than {describe_size(self.limit)} "
                                               f"for message {key} (it announced {describe_size(announced or 0)}); "
                                               "cut off (the message is left on the server)") from None
            yield Fetched(key, raw)

    def _long(self, command: str, limit: int, keep: int | None = None) -> bytes:
        """A multi-line answer with its line ends as sent and dot-stuffing undone;
        _TooLong past `limit` bytes.  With `keep`, only its first `keep` bytes are
        kept (the rest is read and dropped, to stay in step with the server)."""
        self.client._putcmd(command)
        self.client._getresp()  # error_proto on -ERR
        self._broken = True  # until the terminating line is read
        out = bytearray()
        total = 0
        at_line_start = True
        while True:
            piece = self.client.file.readline(PIECE)
            if not piece:
                raise SourceError("network", f"{where(self.mailbox)} closed the connection during {command.split()[0]}")
            if at_line_start:
                if piece in (b".\r\n", b".\n"):
                    break
                if piece.startswith(b".."):
                    piece = piece[1:]  # dot-stuffing (RFC 1939 3)
            at_line_start = piece.endswith(b"\n")
            total += len(piece)
            if keep is None or len(out) < keep:
                out += piece if keep is None else piece[: keep - len(out)]
            if total > limit:
                raise _TooLong(total, limit, bytes(out[:HEADER_SLICE]))
        self._broken = False
        return bytes(out)

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
        marked = len(self._pending_delete)
        if self._broken or (self._budget is not None and self._budget.failed):
            # Mid-answer: a QUIT now would be read as part of it.  Without QUIT the
            # server rolls back the deletions; the next pass deletes them again.
            _close_quietly(self.client)
            return []
        try:
            self.client._putcmd("QUIT")
        except OSError as exc:
            _close_quietly(self.client)
            rolled = f"; the {marked} deletions were rolled back by the server" if marked else ""
            raise SourceError("network", f"QUIT could not be sent{rolled}: {exc}") from None
        try:
            self.client._getresp()
        except (poplib.error_proto, OSError) as exc:
            _close_quietly(self.client)
            # The server had QUIT and may have deleted them: the next pass's listing tells.
            maybe = f"; the server may have deleted the {marked} messages marked for deletion" if marked else ""
            raise SourceError("network", f"no answer to QUIT{maybe} (the next pass checks): {server_text(exc)}") from None
        _close_quietly(self.client)
        done, self._pending_delete = self._pending_delete, []
        return done


class _TooLong(Exception):
    def __init__(self, size: int, allowed: int, start: bytes):
        super().__init__(f"answer over {allowed} bytes")
        self.size, self.allowed, self.start = size, allowed, start


def _measure(client: poplib.POP3, budget: Budget) -> None:
    """Every read and write of this session keeps to the pass's budget (deadline, minimum rate)."""
    if budget.deadline is None:
        return
    client.file = budget.reader(client.sock)
    client._putline = lambda line: budget.sendall(client.sock, line + b"\r\n")


def _password_login(client: poplib.POP3):
    def login(user: str, password: str) -> None:
        client.user(user)
        client.pass_(password)

    return login


def _token_login(client: poplib.POP3, mailbox):
    """AUTH with an access token (RFC 5034, the initial response on the command line).
    CAPA is asked only here, when a token is offered: a password login costs no extra round trip."""

    def login(user: str, access_token: str) -> None:
        mechanism = preferred_mechanism({m.upper() for m in _capabilities(client).get("SASL") or []})
        response = initial_response(mechanism, user, access_token, mailbox.host, mailbox.port)
        client._putcmd(f"AUTH {mechanism} {b64(response)}")
        answer, _ = client._getline()
        if answer.startswith(b"+ ") or answer == b"+":
            # A continuation instead of +OK/-ERR: the server explains its refusal (base64
            # JSON) and waits for an empty answer before its -ERR (RFC 7628 3.2.3).
            client._putcmd("")
            answer, _ = client._getline()
        if not answer.startswith(b"+OK"):
            raise poplib.error_proto(answer)

    return login


def _capabilities(client: poplib.POP3) -> dict:
    try:
        return client.capa()
    except poplib.error_proto:
        return {}


def _close_quietly(client: poplib.POP3) -> None:
    try:
        client.close()
    except Exception:  # already gone
        pass
