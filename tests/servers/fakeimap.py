"""A small fake IMAP server for what Dovecot will not do: misbehave on purpose.

    with FakeImap([raw1, raw2], drip={2}) as server:     # message UID 2 drips, a byte a second
        ... mailbox at server.host:server.port, user server.username / server.password ...

It speaks just enough IMAP4rev1 for Postdesk's fetching (CAPABILITY, LOGIN,
SELECT with UIDVALIDITY, UID SEARCH, UID FETCH with RFC822.SIZE, INTERNALDATE,
BODY.PEEK[] and a partial BODY.PEEK[HEADER]<0.N>, UID STORE, NOOP, LOGOUT) and
never offers STARTTLS.  Messages have UIDs 1, 2, ... in the order given.  The
misbehaviour is chosen per message UID:

    drip      its BODY[] answer comes one byte every `drip_seconds`
    lie       {uid: size}: RFC822.SIZE says this, the literal is the real message
    endless   its BODY[] literal announces ENDLESS bytes and streams for ever
    kill      the connection is closed in the middle of its BODY[] answer

and `refuse_login` answers every LOGIN with NO [AUTHENTICATIONFAILED].

The server runs an asyncio loop in a thread of the test process, on a free
loopback port; close() (or leaving the `with`) stops that loop and closes the
connections it accepted, nothing else.  `commands` lists every command line
received, so a test can check that nothing was stored, moved or deleted.
"""

from __future__ import annotations

import asyncio
import re
import threading

HOST = "127.0.0.1"
ENDLESS = 10**12  # bytes an endless literal announces (about a terabyte)
INTERNALDATE = '"02-Jun-2025 10:00:00 +0000"'
_CHUNK = 64 * 1024


class FakeImap:
    def __init__(
        self,
        messages: list[bytes] = (),
        *,
        drip: set[int] = frozenset(),
        drip_seconds: float = 1.0,
        lie: dict[int, int] | None = None,
        endless: set[int] = frozenset(),
        kill: set[int] = frozenset(),
        refuse_login: bool = False,
        uidvalidity: int = 4242,
    ):
        self.messages = {uid: raw for uid, raw in enumerate(messages, start=1)}
        self.drip, self.drip_seconds = set(drip), drip_seconds
        self.lie = dict(lie or {})
        self.endless, self.kill = set(endless), set(kill)
        self.refuse_login = refuse_login
        self.uidvalidity = uidvalidity
        self.username, self.password = "fake", "fake-password"
        self.commands: list[str] = []
        self.streamed = 0  # bytes of endless literals sent so far
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="fake-imap", daemon=True)
        self._thread.start()
        started.wait(10)
        assert self._server is not None, "the fake IMAP server did not start"
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    # --- life cycle ------------------------------------------------------------

    def __enter__(self) -> FakeImap:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._session, HOST, 0))
        started.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- a session -------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            writer.write(b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] fake server ready\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                self.commands.append(text)
                tag, _, rest = text.partition(" ")
                if not await self._answer(tag, rest, writer):
                    return
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, tag: str, rest: str, writer: asyncio.StreamWriter) -> bool:
        """Answer one command; False ends the session."""
        words = rest.split()
        command = " ".join(words[:2]).upper() if words and words[0].upper() == "UID" else (words[0].upper() if words else "")
        ok = f"{tag} OK {command.lower() or 'done'} completed\r\n".encode()
        if command == "CAPABILITY":
            writer.write(b"* CAPABILITY IMAP4rev1 UIDPLUS\r\n" + ok)
        elif command == "LOGIN":
            user, password = [w.strip('"') for w in words[1:3]]
            if self.refuse_login or (user, password) != (self.username, self.password):
                writer.write(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".encode())
            else:
                writer.write(ok)
        elif command in ("SELECT", "EXAMINE"):
            writer.write((f"* FLAGS (\\Seen \\Deleted)\r\n* {len(self.messages)} EXISTS\r\n"
                          f"* OK [UIDVALIDITY {self.uidvalidity}] UIDs valid\r\n"
                          f"* OK [UIDNEXT {len(self.messages) + 1}] next\r\n"
                          f"{tag} OK [READ-WRITE] select completed\r\n").encode())
        elif command == "UID SEARCH":
            writer.write(f"* SEARCH {' '.join(map(str, self.messages))}\r\n".encode() + ok)
        elif command == "UID FETCH":
            if not await self._fetch(words[2], " ".join(words[3:]).upper(), writer):
                return False
            writer.write(ok)
        elif command == "LOGOUT":
            writer.write(b"* BYE fake server logging out\r\n" + ok)
            await writer.drain()
            return False
        else:  # NOOP, UID STORE, ...: recorded in `commands`, otherwise ignored
            writer.write(ok)
        return True

    async def _fetch(self, uid_set: str, items: str, writer: asyncio.StreamWriter) -> bool:
        for uid in _uids(uid_set, max(self.messages, default=0)):
            raw = self.messages.get(uid)
            if raw is None:
                continue
            parts = [f"UID {uid}"]
            if "RFC822.SIZE" in items:
                parts.append(f"RFC822.SIZE {self.lie.get(uid, len(raw))}")
            if "INTERNALDATE" in items:
                parts.append(f"INTERNALDATE {INTERNALDATE}")
            head = f"* {uid} FETCH ({' '.join(parts)}".encode()
            header = re.search(r"BODY\.PEEK\[HEADER\]<0\.(\d+)>", items)
            if header:
                cut = raw.find(b"\r\n\r\n")
                data = raw[: cut + 4 if cut >= 0 else len(raw)][: int(header.group(1))]
                writer.write(head + f" BODY[HEADER]<0> {{{len(data)}}}\r\n".encode() + data + b")\r\n")
            elif "BODY.PEEK[]" in items:
                if uid in self.endless:
                    writer.write(head + f" BODY[] {{{ENDLESS}}}\r\n".encode())
                    await self._stream_for_ever(writer)
                    return False
                answer = head + f" BODY[] {{{len(raw)}}}\r\n".encode() + raw + b")\r\n"
                if uid in self.kill:
                    writer.write(answer[: len(answer) // 2])
                    await writer.drain()
                    return False  # the session ends: the server was "killed"
                if uid in self.drip:
                    await self._drip(answer, writer)
                    continue
                writer.write(answer)
            else:
                writer.write(head + b")\r\n")
            await writer.drain()
        return True

    async def _drip(self, data: bytes, writer: asyncio.StreamWriter) -> None:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(self.drip_seconds)

    async def _stream_for_ever(self, writer: asyncio.StreamWriter) -> None:
        chunk = b"X" * (_CHUNK - 2) + b"\r\n"
        while True:
            writer.write(chunk)
            await writer.drain()  # as fast as the client reads, and no faster
            self.streamed += len(chunk)


def _uids(uid_set: str, largest: int) -> list[int]:
    """"1,3:5,7:*" -> [1, 3, 4, 5, 7, ...]."""
    found: list[int] = []
    for part in uid_set.split(","):
        first, _, last = part.partition(":")
        low = largest if first == "*" else int(first)
        high = low if not last else (largest if last == "*" else int(last))
        found.extend(range(min(low, high), max(low, high) + 1))
    return found
