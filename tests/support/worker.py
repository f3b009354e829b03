"""`postdesk worker` (and `postdesk run`) as a real process of a test installation.

    with WorkerProcess(installation, env={"POSTDESK_WORKER_RELOAD": "0.5"}) as worker:
        worker.wait_for_log(r"request created .*mailbox=support")
        code, seconds = worker.stop()          # SIGTERM to its own pid, timed

Its output (the structured log lines on stderr, anything on stdout) is read by
a thread as it comes, kept in `lines` and copied to a file beside the
installation, so a test waits for a line instead of sleeping.  The process is
only ever signalled by its own pid; parser-pool children it leaves behind on
SIGKILL are found by pid (/proc) and reaped the same way.

`wait_for(predicate, timeout)` is the one way tests here wait for anything.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.servers.sockets import closed_port
from tests.support.installation import Installation

START_TIMEOUT = 30.0  # seconds until "worker started" (Django setup; migrations ran earlier)
STOP_TIMEOUT = 15.0  # seconds we wait for an exit after SIGTERM before SIGKILL (a failure anyway)
CHILD_TIMEOUT = 5.0  # seconds for children to follow a killed parent before they are killed too

# Loopback only: no proxy from the environment.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_runs = itertools.count(1)


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str | Callable[[], str] = "") -> object:
    """Call `predicate` until it returns something true (returned) or `timeout` seconds passed (fails the test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = what() if callable(what) else what
            raise WaitTimeout(f"not true after {timeout} s: {detail or predicate}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a GET; an HTTP error status is returned, not raised."""
    try:
        with _http.open(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def parse_metrics(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text -> {(sample name, sorted label items): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


class PostdeskProcess:
    """`python -m postdesk ARGS` in the background, its output collected line by line."""

    ready = r""  # a log line that says the process is up

    def __init__(self, installation: Installation, *args, env: dict[str, str] | None = None):
        self.installation = installation
        self.args = [str(a) for a in args]
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = installation.root / f"{self.args[0]}-{next(_runs)}.log"
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.started_at = 0.0

    # --- life cycle ---------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT, wait: bool = True):
        """Start; with `wait`, return once the `ready` line is there."""
        argv = [sys.executable, "-m", "postdesk", *self.args]
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", bufsize=1, cwd=self.installation.work_dir, env=self.installation.env(self.extra_env),
        )
        self._reader = threading.Thread(target=self._read, name=f"output:{self.proc.pid}", daemon=True)
        self._reader.start()
        if wait and self.ready:
            self.wait_for_log(self.ready, timeout=timeout)
        return self

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.running:
            try:
                self.stop()
            except BaseException:
                self.kill()
                raise

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        """SIGTERM to our pid; (exit status, seconds until it exited).  Killed (and failing) after `timeout`."""
        assert self.proc is not None
        began = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"postdesk {self.args[0]} still running {timeout} s after SIGTERM\n{self.output()}") from None
        seconds = time.monotonic() - began
        self._finish_reading()
        return code, seconds

    def kill(self) -> int:
        """SIGKILL to our pid (a crash), then the same for any child it left behind; its exit status."""
        assert self.proc is not None
        children = _descendants(self.proc.pid)
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait()
        _reap(children)
        self._finish_reading()
        return code

    # --- output -------------------------------------------------------------

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def output(self, last: int = 80) -> str:
        lines = self.lines
        return f"--- postdesk {' '.join(self.args)} (pid {self.proc.pid if self.proc else '-'}), last {last} of {len(lines)} lines\n" + "\n".join(lines[-last:])

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [line for line in self.lines if regex.search(line)]

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        """The lines matching `pattern` once there are `count` of them; fails when the process exits first."""

        def enough():
            found = self.matching(pattern)
            if len(found) >= count:
                return found
            if not self.running:
                self._finish_reading()
                found = self.matching(pattern)
                if len(found) >= count:
                    return found
                raise AssertionError(f"postdesk {self.args[0]} exited {self.returncode} before logging "
                                     f"{count} x {pattern!r}\n{self.output()}")
            return None

        return wait_for(enough, timeout, what=lambda: f"{count} x {pattern!r} in the output\n{self.output()}")

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log_path, "a", encoding="utf-8") as copy:
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                with self._lock:
                    self._lines.append(line)
                copy.write(line + "\n")
                copy.flush()

    def _finish_reading(self) -> None:
        if self._reader is not None:
            self._reader.join(5)


class WorkerProcess(PostdeskProcess):
    """`postdesk worker --metrics-port P` (a free loopback port): up once it logged "worker started"."""

    ready = r"\bworker started\b"

    def __init__(self, installation: Installation, *args, env: dict[str, str] | None = None, metrics: bool = True):
        self.metrics_port = closed_port() if metrics else None
        extra = ["--metrics-port", str(self.metrics_port)] if metrics else []
        super().__init__(installation, "worker", *extra, *args, env=env)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        assert self.metrics_port is not None, "started without metrics"
        status, text = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        assert status == 200, (status, text)
        return parse_metrics(text)


class RunProcess(PostdeskProcess):
    """`postdesk run --port 0 ...`: up once it printed its URL."""

    ready = r"Postdesk is running at http://"

    def __init__(self, installation: Installation, *args, env: dict[str, str] | None = None):
        super().__init__(installation, "run", "--port", "0", *args, env=env)

    @property
    def url(self) -> str:
        (line,) = self.matching(self.ready)
        return re.search(r"http://\S+/", line).group(0)


# --- children left by a killed process ------------------------------------------


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` now (Linux /proc), deepest last."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop(0)
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.append(child)
                    queue.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _reap(pids: list[int]) -> None:
    """Children of a killed process exit on their own when their pipes close; any that do
    not within CHILD_TIMEOUT are killed, by pid.  (Pids are checked right before the
    signal; they were ours a moment ago.)"""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
