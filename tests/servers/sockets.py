"""Misbehaving network peers for timeout and connection-error tests."""

from __future__ import annotations

import socket
import threading

HOST = "127.0.0.1"


class SilentServer:
    """Accepts TCP connections on a free loopback port and never sends a byte.

    Connections are accepted by a thread (not just left in the listen backlog),
    so any number of clients get connected and then wait for a greeting, a TLS
    handshake or a reply that never comes.  They stay open until close().
    """

    def __init__(self) -> None:
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)  # so the thread notices close() promptly
        self.host, self.port = self._listener.getsockname()[:2]
        self._accepted: list[socket.socket] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept_forever, name="silent-server", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def connection_count(self) -> int:
        return len(self._accepted)

    def close(self) -> None:
        self._closing.set()
        self._thread.join()
        self._listener.close()
        for conn in self._accepted:
            conn.close()

    def _accept_forever(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._accepted.append(conn)


def closed_port() -> int:
    """A loopback port with nothing listening: connecting is refused at once.

    The kernel picked it as free, and it is released again; only another
    process binding it in the next moment could change that.
    """
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
