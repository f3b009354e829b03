"""Every parse in a process we can kill, under a time limit.

A small pool of spawned parser processes (postdesk/parsejob.py), each doing
one job at a time: a message's parse and what its page will show.  Each job
has a deadline.  A parser that overruns it is killed with SIGKILL (the HTML
sanitizer's native code answers no other signal) and replaced; one that dies
(a crash, the OOM killer) likewise.  Either way only its own message is
concerned: the caller gets a typed outcome, TimedOut or Died, and decides.

    pool = shared()
    ticket = pool.submit("parse", raw, limit=30)
    pool.wait([ticket], timeout=0.5)   -> {ticket: Parsed | TimedOut | Died | Failed}

Nothing is parsed in the caller's process, whatever the batch size or the
number of cores: a one-core machine runs one parser process.

POSTDESK_PARSE_WORKERS  parser processes (default: the number of cores; at least 1)
POSTDESK_PARSE_TIMEOUT  seconds a message may take to read (default 30; 0: no limit)

Started fresh, not forked: a parser imports only postdesk.parsejob and
postdesk.mail, never Django, and shares no database connection or lock with
its parent.
"""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_any

from postdesk import parsejob
from postdesk.mail import ParsedMessage
from postdesk.parsejob import Display

DEFAULT_TIMEOUT = 30.0
# A backlog this large has the pipeline start the parsers while it fetches the
# first batch (warm_up); a single message just waits the moment they take.
POOL_THRESHOLD = 8
POLL = 0.2  # longest a waiter holds the pool at a time (other threads may share it)


# --- outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    message: ParsedMessage
    display: Display


@dataclass(frozen=True)
class TimedOut:
    limit: float  # seconds: the parser was killed when they ran out


@dataclass(frozen=True)
class Died:
    detail: str  # "killed by signal 9", "exit code 1"


@dataclass(frozen=True)
class Failed:
    detail: str  # the job raised (a bug), or its input could not be read


ParseOutcome = Parsed | TimedOut | Died | Failed


# --- knobs ---------------------------------------------------------------------------


def workers() -> int:
    configured = os.environ.get("POSTDESK_PARSE_WORKERS")
    if configured:
        return max(1, int(configured))
    return os.cpu_count() or 1


def default_timeout() -> float | None:
    """The time limit of a parse, in seconds; None: no limit (POSTDESK_PARSE_TIMEOUT=0)."""
    configured = os.environ.get("POSTDESK_PARSE_TIMEOUT")
    limit = float(configured) if configured else DEFAULT_TIMEOUT
    return limit if limit > 0 else None


def describe_limit(limit: float) -> str:
    return f"{limit:g} s"


# --- the pool ------------------------------------------------------------------------


@dataclass
class _Job:
    ticket: int
    kind: str  # parsejob.JOBS: "parse" (raw bytes) or "display" ((text, html))
    payload: object
    limit: float | None


class _Parser:
    """One parser process and our end of its pipe.

    Started as `python -c` rather than by multiprocessing's spawn, which would
    import the parent's main module in it (a test runner, a script): the
    parser imports postdesk.parsejob and what that needs, nothing else."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=_parser_env(),
            )
        self.conn = Connection(ours.detach())
        self.ready = False  # it says so once its imports are done: the deadline starts only then
        self.job: _Job | None = None
        self.deadline: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, job: _Job) -> None:
        self.conn.send((job.kind, job.payload))
        self.job = job
        self.deadline = time.monotonic() + job.limit if job.limit else None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self._reap()
        self.conn.close()

    def death(self) -> str:
        code = self._reap()
        if code is not None and code < 0:
            return f"killed by signal {-code}"
        return f"exit code {code}"

    def _reap(self) -> int | None:
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            return None


# Ctrl-C in a terminal reaches the whole process group: a parser ignores it from
# its first line and leaves stopping to its parent, which kills it.
_BOOT = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "from postdesk.parsejob import main; main(int(sys.argv[1]))")


def _parser_env() -> dict[str, str]:
    """The parent's environment, with this very postdesk package first on the path."""
    import postdesk

    here = os.path.dirname(os.path.dirname(os.path.abspath(postdesk.__file__)))
    path = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=here + (os.pathsep + path if path else ""))


class ParserPool:
    """N parser processes, a queue of jobs, and the outcome of each job by ticket.

    Thread-safe: the processing loop and a re-run started from the web page may
    share it (`postdesk run`); whoever waits pumps the pipes for everyone."""

    def __init__(self, size: int | None = None):
        self.size = size or workers()
        self._lock = threading.Lock()
        self._parsers: list[_Parser] = []
        self._queue: deque[_Job] = deque()
        self._done: dict[int, ParseOutcome | Display] = {}
        self._tickets = itertools.count(1)
        with self._lock:
            self._fill()

    def submit(self, kind: str, payload, limit: float | None, first: bool = False) -> int:
        """Queue a job; `first` puts it ahead of the queue (a retry: nothing else waits on it)."""
        with self._lock:
            job = _Job(next(self._tickets), kind, payload, limit)
            self._queue.appendleft(job) if first else self._queue.append(job)
            self._dispatch()
            return job.ticket

    def wait(self, tickets, timeout: float, every: bool = False) -> dict[int, ParseOutcome | Display]:
        """The outcomes of those `tickets` that are finished, each handed out once.

        Waits up to `timeout` seconds for at least one of them (every=True: for
        all of them); returns what there is when the time is up."""
        wanted = set(tickets)
        got: dict = {}
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                for ticket in wanted & self._done.keys():
                    got[ticket] = self._done.pop(ticket)
                wanted -= got.keys()
                remaining = end - time.monotonic()
                if not wanted or remaining <= 0 or (got and not every) or not self._knows(wanted):
                    return got
                self._pump(min(remaining, POLL))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once a parser has started (they take a moment to import): claims are
        made only then, so a row is in hand for its parse, not for a process start."""
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                if any(p.ready for p in self._parsers):
                    return
                if time.monotonic() >= end:
                    raise RuntimeError(f"no parser process started within {timeout:g} s")
                self._pump(POLL)

    def cancel(self, tickets) -> None:
        """Forget these jobs: queued ones are dropped, running ones' parsers killed and replaced."""
        tickets = set(tickets)
        with self._lock:
            self._queue = deque(job for job in self._queue if job.ticket not in tickets)
            for parser in list(self._parsers):
                if parser.job is not None and parser.job.ticket in tickets:
                    self._replace(parser)
            for ticket in tickets:
                self._done.pop(ticket, None)
            self._fill()

    def busy(self) -> dict[int, int]:
        """ticket -> pid of the parser working on it (tests kill it)."""
        with self._lock:
            return {p.job.ticket: p.pid for p in self._parsers if p.job is not None}

    def shutdown(self) -> None:
        with self._lock:
            for parser in self._parsers:
                parser.kill()
            self._parsers, self._queue = [], deque()

    # --- inside the lock ---

    def _knows(self, tickets: set[int]) -> bool:
        """Whether any of them is still queued or running (a cancelled one never finishes)."""
        running = {p.job.ticket for p in self._parsers if p.job is not None}
        return bool(tickets & running) or any(job.ticket in tickets for job in self._queue)

    def _fill(self) -> None:
        while len(self._parsers) < self.size:
            self._parsers.append(_Parser())

    def _replace(self, parser: _Parser) -> None:
        parser.kill()
        self._parsers.remove(parser)
        self._fill()

    def _dispatch(self) -> None:
        for parser in self._parsers:
            if not self._queue:
                return
            if parser.ready and parser.job is None:
                job = self._queue.popleft()
                try:
                    parser.start(job)
                except OSError:  # it died while idle: give the job to its replacement
                    self._queue.appendleft(job)
                    self._replace(parser)
                    return self._dispatch()

    def _pump(self, timeout: float) -> None:
        """Read what the parsers sent, kill those past their deadline, start queued jobs."""
        self._dispatch()
        now = time.monotonic()
        deadlines = [p.deadline for p in self._parsers if p.job is not None and p.deadline is not None]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - now))
        handles = [h for p in self._parsers if p.job is not None or not p.ready for h in (p.conn,)]
        ready = set(wait_any(handles, timeout)) if handles else set()
        if not handles:
            time.sleep(timeout)
        now = time.monotonic()
        for parser in list(self._parsers):
            if parser.conn in ready:
                self._read(parser)
            elif parser.job is not None and parser.deadline is not None and now >= parser.deadline:
                self._done[parser.job.ticket] = TimedOut(parser.job.limit)
                self._replace(parser)
        self._dispatch()

    def _read(self, parser: _Parser) -> None:
        try:
            message = parser.conn.recv() if parser.conn.poll() else None
        except (EOFError, OSError):
            message = None
        if message is None:  # the process ended (its pipe closed with it)
            if parser.job is None and not parser.ready:
                detail = parser.death()
                self._parsers.remove(parser)
                raise RuntimeError(f"a parser process did not start ({detail})")
            if parser.job is not None:
                self._done[parser.job.ticket] = Died(parser.death())
            self._replace(parser)
            return
        if message == "ready":
            parser.ready = True
            return
        status, value = message
        job, parser.job, parser.deadline = parser.job, None, None
        if status != "ok":
            self._done[job.ticket] = Failed(value)
        elif job.kind == "parse":
            self._done[job.ticket] = Parsed(*value)
        else:
            self._done[job.ticket] = value


# --- the process's pool --------------------------------------------------------------

_shared: ParserPool | None = None
_shared_lock = threading.Lock()


def shared() -> ParserPool:
    """This process's parser pool, started on first use (its processes take a moment to spawn)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ParserPool()
            atexit.register(shutdown)
        return _shared


def warm_up() -> None:
    """Start the parser processes now, so that the first batch does not wait for them."""
    shared()


def shutdown() -> None:
    """Stop the parser processes (the worker's shutdown; tests)."""
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None:
        pool.shutdown()


def display_now(texts: list[tuple[str, str | None]], limit: float | None = None) -> list[Display]:
    """The display parts of messages stored before they were computed at processing
    time (see web/views.py), under the same time limit in a pool of its own: a
    message that overruns shows unfolded (parsejob.NOTHING_FOLDED)."""
    limit = limit if limit is not None else default_timeout()
    pool = ParserPool(1)
    try:
        tickets = [pool.submit("display", text_html, limit) for text_html in texts]
        outcomes = pool.wait(tickets, timeout=float("inf"), every=True)
    finally:
        pool.shutdown()
    return [outcome if isinstance(outcome, Display) else parsejob.NOTHING_FOLDED for outcome in
            (outcomes.get(t) for t in tickets)]
