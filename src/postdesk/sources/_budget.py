"""What one fetch pass may cost the worker: time (a deadline), patience (a minimum
rate) and memory (a byte cap for whatever the server sends in one go).

A slow server must cost only itself.  A per-read timeout alone does not do
that: a server that sends one byte a second never trips it.  So every socket
read and write of a pass gets the time left before the pass's deadline (capped
by the usual per-read timeout), and while we wait for an answer the bytes that
arrive are counted: below the minimum rate over the window, the server is cut
off as "too slow".  The window restarts with every command we send, so a
server that thinks for a while before each short answer is not mistaken for a
drip feed; only a long answer that trickles is.

`Budget.reader(sock)` gives a buffered file over the socket that applies all
of this to every recv(), which is what imaplib and poplib read through (their
`file`).  The IDLE watcher's connection is idle by design and is given
`Budget.unmeasured()`, which only keeps the per-read timeout.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass

from postdesk.sizes import describe_size  # noqa: F401  (re-exported: the sources' messages use it)
from postdesk.sources._base import COMMAND_TIMEOUT, CONNECT_TIMEOUT, SourceError

MB = 1048576
DEFAULT_MAX_MESSAGE_MB = 50.0
DEFAULT_MIN_RATE = 10 * 1024  # bytes per second, while waiting for an answer
DEFAULT_MIN_RATE_WINDOW = 60.0  # seconds of waiting the rate is averaged over
READ_CHUNK = 64 * 1024


def max_message_bytes() -> int:
    """POSTDESK_MAX_MESSAGE_MB (default 50): no mailbox's size limit goes above it.
    Read when a source opens, so a changed environment applies to the next pass."""
    try:
        value = float(os.environ.get("POSTDESK_MAX_MESSAGE_MB") or DEFAULT_MAX_MESSAGE_MB)
    except ValueError:
        value = DEFAULT_MAX_MESSAGE_MB
    return max(1, int(value * MB))


def size_limit(mailbox) -> int:
    """The largest message downloaded into memory: the mailbox's limit, capped globally."""
    return min(mailbox.size_limit, max_message_bytes())


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


@dataclass
class Budget:
    deadline: float | None  # time.monotonic() by which the pass ends; None: no deadline
    seconds: float  # the pass deadline as configured, for messages
    min_rate: float  # bytes/s; 0: not measured
    window: float  # seconds
    place: str = "the server"
    _waited: float = 0.0  # seconds spent in recv() since the last command was sent
    _received: int = 0  # bytes received in that time
    failed: bool = False  # cut off: the session is mid-answer, only closing the socket is left

    @classmethod
    def for_pass(cls, mailbox, place: str) -> Budget:
        """The budget of one fetch pass of `mailbox`, starting now."""
        seconds = float(mailbox.pass_deadline or 600)
        return cls(
            deadline=time.monotonic() + seconds,
            seconds=seconds,
            min_rate=_env_float("POSTDESK_MIN_RATE", DEFAULT_MIN_RATE),
            window=_env_float("POSTDESK_MIN_RATE_WINDOW", DEFAULT_MIN_RATE_WINDOW),
            place=place,
        )

    @classmethod
    def unmeasured(cls, place: str = "the server") -> Budget:
        """No deadline and no minimum rate (the IDLE watcher): only the per-read timeout."""
        return cls(deadline=None, seconds=0.0, min_rate=0.0, window=0.0, place=place)

    # --- time -----------------------------------------------------------------

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def timeout(self, cap: float = COMMAND_TIMEOUT) -> float:
        """Seconds the next socket operation may take; raises once the pass is out of time."""
        left = self.left()
        if left is None:
            return cap
        if left <= 0:
            raise self.out_of_time()
        return min(cap, left)

    def out_of_time(self) -> SourceError:
        self.failed = True
        return SourceError("slow", f"{self.place} is too slow: the pass did not finish within its deadline of "
                                   f"{self.seconds:g} s (what was stored stays stored; the rest waits for the next pass)")

    def timed_out(self, exc: TimeoutError) -> SourceError | TimeoutError:
        """A socket timeout: the pass's deadline when that is what cut it short."""
        left = self.left()
        return self.out_of_time() if left is not None and left <= 0.01 else exc

    def connect_timeout(self) -> float:
        return self.timeout(CONNECT_TIMEOUT)

    # --- rate -----------------------------------------------------------------

    def sending(self) -> None:
        """A new command: the next answer is measured afresh."""
        self._waited, self._received = 0.0, 0

    def received(self, nbytes: int, seconds: float) -> None:
        """`nbytes` arrived after waiting `seconds`; too slow over the window ends the pass."""
        if not self.min_rate or not self.window:
            return
        self._waited += seconds
        self._received += nbytes
        if self._waited >= self.window:
            rate = self._received / self._waited
            if rate < self.min_rate:
                self.failed = True
                raise SourceError("slow", f"{self.place} is too slow: {_rate(rate)} over {self._waited:.0f} s, "
                                          f"below the minimum of {_rate(self.min_rate)}")
            self._waited, self._received = 0.0, 0

    # --- the socket -----------------------------------------------------------

    def reader(self, sock) -> io.BufferedReader:
        """A buffered binary file over `sock` whose every recv() keeps to this budget."""
        return io.BufferedReader(_BudgetedSocket(sock, self), READ_CHUNK)

    def sendall(self, sock, data: bytes) -> None:
        self.sending()
        sock.settimeout(self.timeout())
        try:
            sock.sendall(data)
        except TimeoutError as exc:
            raise self.timed_out(exc) from None


class _BudgetedSocket(io.RawIOBase):
    """The raw side of Budget.reader(): recv_into with the time left and the rate counted."""

    def __init__(self, sock, budget: Budget):
        self._sock = sock
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._sock.settimeout(self._budget.timeout())
        began = time.monotonic()
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError as exc:
            raise self._budget.timed_out(exc) from None
        self._budget.received(count, time.monotonic() - began)
        return count


def _rate(bytes_per_second: float) -> str:
    if bytes_per_second >= 1024:
        return f"{bytes_per_second / 1024:.1f} KB/s"
    return f"{bytes_per_second:.0f} bytes/s"

