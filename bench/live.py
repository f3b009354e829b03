#!/usr/bin/env python
"""Short polling under load: do 200 open pages starve other requests?

    python bench/live.py [--pages 200] [--seconds 20] [--threads 8]

Starts `postdesk serve` (waitress, --threads request threads) on an isolated
installation (SQLite, or PostgreSQL with POSTDESK_DATABASE_URL) with one request,
signs in once, then runs PAGES simulated open pages for SECONDS: half poll the queue
(GET ?live=1), half the request page (POST /requests/N/live/ with a heartbeat every
10 s), each every 1.5 s as static/postdesk/live.js does.  Meanwhile one "other" client
loads the General queue page every 0.5 s.  Prints the latency of the polls and of
that page, against the page alone before the load (no timed assertion anywhere:
figures only).  The server is ended by its own pid.
"""

from __future__ import annotations

import argparse
import http.client
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.support.installation import Installation  # noqa: E402
from tests.support.mail import make_message  # noqa: E402

POLL_S = 1.5
BEAT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Session:
    """A signed-in browser: cookies by hand over one keep-alive connection."""

    def __init__(self, port: int, cookies: dict[str, str]):
        self.port, self.cookies = port, dict(cookies)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), "Host": f"127.0.0.1:{self.port}"}
        data = None
        if body is not None:
            data = urlencode(body)
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": self.cookies.get("csrftoken", ""),
                            "Referer": f"http://127.0.0.1:{self.port}/", "Origin": f"http://127.0.0.1:{self.port}"})
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return 0, b"", time.perf_counter() - started
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, content, time.perf_counter() - started


def sign_in(port: int, username: str, password: str) -> dict[str, str]:
    s = Session(port, {})
    _, page, _ = s.request("GET", "/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    status, _, _ = s.request("POST", "/login/", {"csrfmiddlewaretoken": token, "username": username, "password": password})
    assert status == 302 and "sessionid" in s.cookies, f"sign-in failed ({status})"
    return s.cookies


def page_fields(session: Session, number: int) -> dict[str, str]:
    _, html, _ = session.request("GET", f"/requests/{number}/")
    return {name: re.search(rf'name="{name}" value="([^"]*)"'.encode(), html).group(1).decode()
            for name in ("seen_message", "seen_assignee", "seen_status")}


def open_page(port, cookies, number, fields, on_queue: bool, stop: threading.Event, times: list, errors: list) -> None:
    session, last_beat = Session(port, cookies), 0.0
    time.sleep(secrets.randbelow(1500) / 1000)  # pages were opened at different moments
    while not stop.is_set():
        if on_queue:
            status, _, took = session.request("GET", "/queue/general/?live=1&since=x")
        else:
            body = dict(fields)
            if time.monotonic() - last_beat >= BEAT_S:
                body.update(beat="1", replying="0")
                last_beat = time.monotonic()
            status, _, took = session.request("POST", f"/requests/{number}/live/", body)
        (times if status == 200 else errors).append(took)
        stop.wait(POLL_S)


def measure_page(port, cookies, stop: threading.Event, times: list) -> None:
    session = Session(port, cookies)
    while not stop.is_set():
        status, _, took = session.request("GET", "/queue/general/")
        if status == 200:
            times.append(took)
        stop.wait(0.5)


def figures(name: str, times: list[float]) -> str:
    if not times:
        return f"{name:<28} no answers"
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1] if len(ordered) > 1 else ordered[0]
    return (f"{name:<28} n={len(times):>6}  p50 {statistics.median(times) * 1000:7.1f} ms  "
            f"p95 {p95 * 1000:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms")


def run(pages: int, seconds: float, threads: int) -> None:
    inst = Installation(Path(tempfile.mkdtemp(prefix="postdesk-live-")) / "installation")
    server = None
    try:
        password = secrets.token_urlsafe(12)
        inst.run("staff", "add", "phil", "--email", "phil@bench.example", "--password-env", "PW", env={"PW": password})
        maildir = inst.root / "maildir"
        for sub in ("new", "cur", "tmp"):
            (maildir / sub).mkdir(parents=True)
        (maildir / "new" / "1.bench").write_bytes(make_message(subject="Bench request", message_id="<bench-1@customer.example>"))
        inst.run("mailbox", "add", "bench", "--protocol", "maildir", "--path", str(maildir))
        inst.run("fetch")
        number = inst.requests()[0]["number"]
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "postdesk", "serve", "--host", "127.0.0.1", "--port", str(port),
                                   "--threads", str(threads)], cwd=inst.work_dir, env=inst.env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        cookies = sign_in(port, "phil", password)
        fields = page_fields(Session(port, cookies), number)

        alone: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=measure_page, args=(port, cookies, stop, alone))
        probe.start()
        time.sleep(min(5.0, seconds / 2))
        stop.set()
        probe.join()

        stop = threading.Event()
        polls: list[float] = []
        errors: list[float] = []
        loaded: list[float] = []
        workers = [threading.Thread(target=open_page, args=(port, cookies, number, fields, i % 2 == 0, stop, polls, errors), daemon=True)
                   for i in range(pages)]
        for w in workers:
            w.start()
        time.sleep(2)  # all pages polling
        probe = threading.Thread(target=measure_page, args=(port, cookies, stop, loaded))
        probe.start()
        time.sleep(seconds)
        stop.set()
        probe.join()
        for w in workers:
            w.join(timeout=35)
        print(f"postdesk serve --threads {threads}, {inst.backend}, {pages} open pages polling every {POLL_S} s for {seconds:.0f} s")
        print(figures("polls (queue + request)", polls))
        print(f"{'failed polls':<28} {len(errors)}")
        print(figures("queue page, no load", alone))
        print(figures("queue page, under the load", loaded))
        print(f"{'polls per second':<28} {len(polls) / (seconds + 2):.0f}")
    finally:
        if server is not None:
            server.terminate()  # exactly our child
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        inst.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args()
    run(options.pages, options.seconds, options.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
