#!/usr/bin/env python3
"""A server that changes UIDVALIDITY every session: what a poll costs.

    .venv/bin/python bench/uidvalidity.py [N]        (default N=1000)

Seeds N messages (bench/parse.py's corpus) into a private Dovecot, fetches them
once with after-import "keep" (`postdesk fetch --intake-only`: download, store,
one intake row each), then changes UIDVALIDITY (doveadm) before each of three
more passes, as a broken server does every session.  Prints, per pass, the
seconds, the messages downloaded and the intake rows in the database.

Before postdesk.identity each such pass was a full first pass again (every
message downloaded, an intake row added per message); now the held messages
are recognised by RFC822.SIZE, INTERNALDATE and a Message-ID header fetch.
A last pass with no change shows the cost of an ordinary poll (fetch lease
included).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=1000)
    n = parser.parse_args().n

    from parse import generate_corpus  # bench/parse.py

    from tests.servers.dovecot import Dovecot

    work = Path(tempfile.mkdtemp(prefix="postdesk-bench-uidvalidity-"))
    server = Dovecot.create()
    server.start()
    try:
        user = server.new_user("bench")
        with server.imap(user) as client:
            for _kind, raw in generate_corpus(n):
                client.append("INBOX", raw)
        data_dir = work / "data"
        env = dict(os.environ, POSTDESK_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT / "src"), BENCH_PASSWORD=user.password)
        env.pop("POSTDESK_DATABASE_URL", None)

        def postdesk(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "postdesk", *args], check=True, env=env, capture_output=True, text=True)

        postdesk("mailbox", "add", "bench", "--protocol", "imap", "--host", server.host, "--port", str(server.ports.imap),
                 "--security", "none", "--username", user.username, "--password-env", "BENCH_PASSWORD", "--after", "keep")

        def timed_pass(label: str) -> None:
            started = time.perf_counter()
            (report,) = json.loads(postdesk("fetch", "--intake-only", "--json").stdout)
            seconds = time.perf_counter() - started
            with sqlite3.connect(data_dir / "postdesk.sqlite3") as db:
                (rows,) = db.execute("SELECT count(*) FROM postdesk_intake").fetchone()
            print(f"{label:<34} {seconds:6.2f} s   downloaded {report['fetched']:5d}   intake rows {rows:5d}", flush=True)

        print(f"{n} messages, after-import keep, SQLite", flush=True)
        timed_pass("first pass (everything new)")
        for change in range(1, 4):
            with server.imap(user) as client:
                old = client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
            subprocess.run([server.doveadm, "-c", server.config_file, "mailbox", "update", "-u", user.username,
                            "--uid-validity", str(old + 1000), "INBOX"], check=True, capture_output=True, timeout=30)
            timed_pass(f"after UIDVALIDITY change {change}")
        timed_pass("no change (an ordinary poll)")
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
