"""IMAP with IMAPClient: by UID, BODY.PEEK[] (nothing marked read before we own it)."""

from __future__ import annotations

import contextlib
import imaplib
import re
from collections.abc import Iterator
from datetime import timezone

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import DELETED, SEEN, SocketTimeout

from postdesk.sources._base import (
    HEADER_SLICE,
    Fetched,
    Listed,
    SourceError,
    TooLarge,
    login_refused,
    server_text,
    tls_context,
    where,
)
from postdesk.sources._budget import Budget, describe_size, max_message_bytes, size_limit
from postdesk.sources.credentials import Credentials, preferred_mechanism, sign_in

FETCH_SIZE_CHUNK = 1000  # UIDs per RFC822.SIZE request when listing
# Bytes a literal may exceed the size the server announced: a fixed amount, plus
# an eighth, because some servers' RFC822.SIZE is an estimate; a lie beyond
# that is cut off.  Memory stays bounded all the same: a listed size is never
# over the limit here, and each FETCH answer has its total (FETCH_BYTES).
SLACK = 4096
# One FETCH answer at most (plus one message), even when every size is a lie:
# the pipeline's batch budget (pipeline.BATCH_BYTES; a test keeps them equal).
FETCH_BYTES = 32 * 1024 * 1024
_UID_IN_FETCH = re.compile(rb"\bUID (\d+)")


class ImapSource:
    def __init__(self, client: IMAPClient, mailbox, uidvalidity: int, guard: _Guard):
        self.client = client
        self.mailbox = mailbox
        self.uidvalidity = uidvalidity
        self.guard = guard
        self.limit = size_limit(mailbox)  # read now: POSTDESK_MAX_MESSAGE_MB applies from the next pass
        self._sizes: dict[str, int] = {}  # announced RFC822.SIZE by key, from list()
        self._dates: dict[str, object] = {}

    @classmethod
    def connect(cls, mailbox, credentials: Credentials, budget: Budget | None = None) -> ImapSource:
        """Log in and select.  `budget` (a fetch pass's deadline and minimum rate)
        measures every read; without one (the IDLE watcher) only the per-read
        timeout and the literal guard apply."""
        budget = budget or Budget.unmeasured(where(mailbox))
        context = tls_context(mailbox)
        client = IMAPClient(
            mailbox.host,
            port=mailbox.port or (993 if mailbox.security == "tls" else 143),
            ssl=mailbox.security == "tls",
            ssl_context=context,
            timeout=SocketTimeout(connect=budget.connect_timeout(), read=budget.timeout()),
        )
        client.normalise_times = False  # keep INTERNALDATE's zone: aware datetimes
        guard = _Guard(client._imap, budget, mailbox)
        try:
            if mailbox.security == "starttls":
                # No silent fallback: a server that does not offer STARTTLS is an error.
                if not client.has_capability("STARTTLS"):
                    raise SourceError("tls", f"{where(mailbox)} does not offer STARTTLS; refusing to log in without TLS")
                client.starttls(context)
                guard.reinstall()  # imaplib made a new file over the TLS socket
            try:
                sign_in(credentials, password=client.login, token=_token_login(client), refused=LoginError)
            except LoginError as exc:
                raise login_refused(credentials.username, exc) from None
            uidvalidity = cls._select(client, mailbox)
        except BaseException:
            _logout_quietly(client)
            raise
        return cls(client, mailbox, uidvalidity, guard)

    def append_copy(self, folder: str, raw: bytes) -> None:
        """APPEND `raw` to `folder`, marked \\Seen, creating the folder if needed (the Sent copy)."""
        self._ensure_folder(folder)
        self.client.append(folder, raw, flags=[SEEN])

    @staticmethod
    def _select(client: IMAPClient, mailbox) -> int:
        try:
            info = client.select_folder(mailbox.folder)
        except IMAPClientError as exc:
            raise SourceError("folder", f"folder {mailbox.folder!r} cannot be opened: {server_text(exc)}") from None
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
                item = Listed(self.key(uid), data.get(b"RFC822.SIZE"), _aware(data.get(b"INTERNALDATE")))
                self._sizes[item.key] = item.size
                self._dates[item.key] = item.server_date
                listed.append(item)
        return listed

    def fetch(self, keys: list[str]) -> Iterator[Fetched | TooLarge]:
        """The messages' exact bytes; one announced over the size limit is not
        downloaded: only a slice of its header, as TooLarge."""
        wanted = [k for k in keys if k.partition("/")[0] == str(self.uidvalidity)]
        too_large = {k for k in wanted if (self._sizes.get(k) or 0) > self.limit}
        normal = [k for k in wanted if k not in too_large]
        for chunk in self._chunks(normal):
            yield from self._fetch_whole(chunk)
        if too_large:
            yield from self._fetch_headers(sorted(too_large, key=self._uid))

    def _chunks(self, keys: list[str]) -> Iterator[list[str]]:
        """Keys in groups whose announced sizes (each plus the slack a literal is
        allowed) fit one FETCH response into FETCH_BYTES, so a server lying about
        every size still cannot make one response hold more than that."""
        chunk: list[str] = []
        total = 0
        for key in keys:
            cost = self._allowed(key)
            if chunk and total + cost > FETCH_BYTES:
                yield chunk
                chunk, total = [], 0
            chunk.append(key)
            total += cost
        if chunk:
            yield chunk

    def _allowed(self, key: str) -> int:
        """The most bytes a message's literal may have: what the server announced
        (the size limit when it announced nothing), plus the slack."""
        announced = self._sizes.get(key)
        size = announced if announced is not None else self.limit
        return size + SLACK + size // 8

    def _fetch_whole(self, keys: list[str]) -> Iterator[Fetched | TooLarge]:
        by_uid = {self._uid(k): k for k in keys}
        allowed = [self._allowed(k) for k in keys]
        try:
            with self.guard.allowing(max(allowed), sum(allowed)):
                response = self.client.fetch(sorted(by_uid), ["BODY.PEEK[]", "INTERNALDATE"])
        except _Refused as refused:
            key = by_uid.get(refused.uid) if refused.uid is not None else (keys[0] if len(keys) == 1 else None)
            if key is not None:
                # Recorded as left at the source, so the next pass does not try it again.
                yield TooLarge(key, self._sizes.get(key) or 0, b"", self._dates.get(key), lied=True)
            raise refused.error(key) from None
        for uid in sorted(response):
            data = response[uid]
            raw = data.get(b"BODY[]")
            if raw is None or uid not in by_uid:
                continue  # expunged by someone else meanwhile: it will not be acknowledged
            yield Fetched(by_uid[uid], bytes(raw), _aware(data.get(b"INTERNALDATE")))

    def _fetch_headers(self, keys: list[str]) -> Iterator[TooLarge]:
        """A bounded slice of each too-large message's header: who sent what."""
        by_uid = {self._uid(k): k for k in keys}
        try:
            with self.guard.allowing(HEADER_SLICE + SLACK, len(keys) * (HEADER_SLICE + SLACK)):
                response = self.client.fetch(sorted(by_uid), [f"BODY.PEEK[HEADER]<0.{HEADER_SLICE}>"])
        except _Refused as refused:
            # Even the header slice is more than asked for: record them all without one.
            for key in keys:
                yield TooLarge(key, self._sizes.get(key) or 0, b"", self._dates.get(key))
            raise refused.error(None) from None
        for uid, key in sorted(by_uid.items()):
            data = response.get(uid, {})
            headers = next((bytes(v) for k, v in data.items() if k.startswith(b"BODY[HEADER]") and v), b"")
            yield TooLarge(key, self._sizes.get(key) or 0, headers[:HEADER_SLICE], self._dates.get(key))

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

    def message_id_headers(self, keys: list[str]) -> dict[str, bytes]:
        """{key: its Message-ID header field, raw}: a header fetch of a few bytes each, so
        messages held under an older UIDVALIDITY are recognised without downloading them
        (postdesk.identity reads the field)."""
        by_uid = {self._uid(k): k for k in keys}
        found: dict[str, bytes] = {}
        uids = sorted(by_uid)
        for start in range(0, len(uids), FETCH_SIZE_CHUNK):
            response = self.client.fetch(uids[start : start + FETCH_SIZE_CHUNK], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for uid, data in response.items():
                header = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), None)
                if uid in by_uid and header:
                    found[by_uid[uid]] = bytes(header)
        return found

    def close(self) -> list[str]:
        if self.guard.broken:
            # Cut off mid-answer (too large, too slow): a LOGOUT would only wait
            # behind the rest of that answer.  The socket is closed instead.
            _shutdown_quietly(self.client)
        else:
            _logout_quietly(self.client)
        return []


def _aware(value):
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _token_login(client: IMAPClient):
    """Sign in with an access token by the mechanism the server offers (read only when a
    token is offered: a password login asks nothing more)."""

    def login(user: str, access_token: str):
        offered = {c.decode("ascii", "replace").upper()[5:] for c in client.capabilities() if c.upper().startswith(b"AUTH=")}
        if preferred_mechanism(offered) == "OAUTHBEARER":
            return client.oauthbearer_login(user, access_token)
        return client.oauth2_login(user, access_token)

    return login


def _logout_quietly(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the connection may already be gone; nothing to save
        _shutdown_quietly(client)


def _shutdown_quietly(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:
        pass


class _Refused(SourceError):
    """The literal guard said no: the connection is mid-answer and unusable now.
    Outside a fetch (a listing, a login) it ends the pass as it is; a fetch
    names the message with error()."""

    def __init__(self, place: str, size: int, allowed: int, line: bytes, whole: bool):
        self.place, self.size, self.allowed, self.whole = place, size, allowed, whole
        found = _UID_IN_FETCH.search(line or b"")
        self.uid = int(found.group(1)) if found else None
        error = self.error(None)
        super().__init__(error.kind, error.message)

    def error(self, key: str | None) -> SourceError:
        which = f" for message {key}" if key else ""
        what = f"a literal of {describe_size(self.size)}" if not self.whole else "more than its answer may hold"
        return SourceError("too-large", f"{self.place} sent {what}{which}, over the {describe_size(self.allowed)} "
                                        "allowed; cut off (the message is left on the server)")


class _Guard:
    """Bounds what imaplib may read into memory, in the one place the client is made.

    imaplib reads a literal {N} with one read(N): a server that announces a
    10 GB literal would get 10 GB of our memory.  So read() refuses a literal
    larger than currently allowed (the announced size of what is being fetched
    plus SLACK; the global cap otherwise), and every byte read since our last
    command counts toward a total per answer (so endless untagged responses are
    cut off too).  With a measured budget, the socket is read through it
    (deadline, minimum rate); the IDLE watcher's socket is left as imaplib made it."""

    def __init__(self, imap, budget: Budget, mailbox):
        self.imap = imap
        self.budget = budget
        self.place = where(mailbox)
        self.cap = max_message_bytes() + SLACK
        self.literal_limit = self.answer_limit = self.cap
        self._answer = 0
        self._line = b""
        self.refused = False
        imap.read = self.read
        imap.readline = self.readline
        imap.send = self.send
        self.reinstall()

    @property
    def broken(self) -> bool:
        """Cut off in the middle of an answer: the session cannot go on."""
        return self.refused or self.budget.failed

    def reinstall(self) -> None:
        if self.budget.deadline is not None:
            self.imap.file = self.budget.reader(self.imap.sock)

    @contextlib.contextmanager
    def allowing(self, literal: int, answer: int):
        self.literal_limit, self.answer_limit = literal, max(answer, literal)
        try:
            yield
        finally:
            self.literal_limit = self.answer_limit = self.cap

    def send(self, data: bytes) -> None:
        self._answer = 0
        if self.budget.deadline is not None:
            self.budget.sendall(self.imap.sock, data)
        else:
            self.imap.sock.sendall(data)

    def read(self, size: int) -> bytes:
        if size > self.literal_limit:
            self.refused = True
            raise _Refused(self.place, size, self.literal_limit, self._line, whole=False)
        self._count(size)
        return self.imap.file.read(size)

    def readline(self) -> bytes:
        line = self.imap.file.readline(imaplib._MAXLINE + 1)
        if len(line) > imaplib._MAXLINE:
            raise self.imap.error(f"got more than {imaplib._MAXLINE} bytes")
        self._count(len(line))
        self._line = line
        return line

    def _count(self, size: int) -> None:
        self._answer += size
        if self._answer > self.answer_limit:
            self.refused = True
            raise _Refused(self.place, self._answer, self.answer_limit, self._line, whole=True)
