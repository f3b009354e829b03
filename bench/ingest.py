#!/usr/bin/env python3
"""Mail intake benchmark: Postdesk against the limits of the network and the parser.

    .venv/bin/python bench/ingest.py [N]          (default N=2000)

Seeds N generated messages (bench/parse.py's corpus: median about 20 KB, one
in a hundred of 2-6 MB, legacy charsets; one in ten made a reply to an earlier
one) into a private Dovecot (tests/servers/dovecot.py) and, on the same corpus,
prints messages per second and peak RSS for:

  raw fetch limit     one IMAP connection, UID FETCH BODY.PEEK[] in batches,
                      each message written to disk with fsync
  raw parse limit     bare email.message_from_bytes(policy=policy.default),
                      walking and decoding every part, one process
  Postdesk intake     `postdesk fetch --intake-only`: fetch, durable store,
                      acknowledge (after: keep)
  Postdesk end to end `postdesk fetch` from an empty database until every
                      request exists, three times in the same run:
    before            the code before every parse ran in a killable parser
                      process under a time limit (--before REV; default: the
                      parent of the commit that added postdesk/parsejob.py),
                      checked out with `git archive` into the work dir
    after             this checkout, as shipped (30 s limit per message, the
                      killable pool for every batch, display parts computed)
    after, no limit   this checkout with POSTDESK_PARSE_TIMEOUT=0 (no deadline)
    after, no display this checkout with the display parts left uncomputed, by a
                      sitecustomize.py on the bench's own PYTHONPATH (bench only,
                      nothing in the product): the cost of the killable pool and
                      the time limits alone, apart from the display parts that
                      moved from every page view to processing

Targets (2-core machine, N=2000): intake >= 0.5x the raw fetch limit; end to
end >= 0.75x the raw parse limit; the time limits and the separate parser
lane cost < 10% of end-to-end throughput (after vs before).  Each measurement
runs in a fresh process; peak RSS is that process tree's high-water mark.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BATCH = 100
E2E_BEFORE = "end to end before"
E2E_AFTER = "end to end after"
E2E_NO_LIMIT = "end to end, no limit"
E2E_NO_DISPLAY = "end to end, no display"

# Loaded first by every Python process of the run, parsers included (they inherit
# PYTHONPATH): replaces the display parts with "nothing folded".
_NO_DISPLAY = """
import postdesk.parsejob as job
job.display_of = lambda text, html: job.NOTHING_FOLDED
"""


def _before_pool() -> str:
    """The parent of the commit that added the killable parser pool (postdesk/parsejob.py)."""
    added = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--", "src/postdesk/parsejob.py"],
                           capture_output=True, text=True, check=True).stdout.split()
    if not added:
        raise SystemExit("cannot find the commit that added src/postdesk/parsejob.py: pass --before REV")
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", f"{added[-1]}^"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _checkout(rev: str, into: Path) -> Path:
    """`src/` of revision `rev`, extracted into `into` (the working tree is not touched)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def corpus(n: int) -> list[bytes]:
    from parse import generate_corpus  # bench/parse.py

    messages = [raw for _kind, raw in generate_corpus(n)]
    rng = random.Random(7)
    ids = [_message_id(raw) for raw in messages]
    for i in range(1, n):
        if i % 10 == 0 and ids[i - 1]:
            target = ids[rng.randrange(0, i)]
            if target:  # a reply: threads into an earlier request
                messages[i] = f"In-Reply-To: <{target}>\r\nReferences: <{target}>\r\n".encode() + messages[i]
    return messages


def _message_id(raw: bytes) -> str | None:
    match = re.search(rb"(?im)^message-id:\s*<([^>]+)>", raw[:8192])
    return match.group(1).decode("ascii", "replace") if match else None


# --- the four measurements, each in a child process ----------------------------------


def child_raw_fetch(host: str, port: int, user: str, password: str, out_dir: str) -> dict:
    from imapclient import IMAPClient

    started = time.perf_counter()
    count = 0
    client = IMAPClient(host, port=port, ssl=False)
    client.login(user, password)
    client.select_folder("INBOX", readonly=True)
    uids = sorted(client.search("ALL"))
    for start in range(0, len(uids), BATCH):
        for uid, data in client.fetch(uids[start : start + BATCH], ["BODY.PEEK[]"]).items():
            path = os.path.join(out_dir, str(uid))
            with open(path, "wb") as fh:
                fh.write(data[b"BODY[]"])
                fh.flush()
                os.fsync(fh.fileno())
            count += 1
    client.logout()
    return {"count": count, "seconds": time.perf_counter() - started}


def child_raw_parse(corpus_dir: str) -> dict:
    from parse import baseline  # bench/parse.py: the same bare walk the parse benchmark uses

    raws = [f.read_bytes() for f in sorted(Path(corpus_dir).iterdir())]
    started = time.perf_counter()
    for raw in raws:
        baseline(raw)
    return {"count": len(raws), "seconds": time.perf_counter() - started}


def child_display(corpus_dir: str) -> dict:
    """What computing the display parts at processing time costs per message (one
    process): the reply split, the HTML split and the remote image count, which
    the request page ran on every view before."""
    sys.path.insert(0, str(ROOT / "src"))
    from postdesk.mail import parse
    from postdesk.parsejob import display_of

    parsed = [parse(f.read_bytes()) for f in sorted(Path(corpus_dir).iterdir())]
    started = time.perf_counter()
    for message in parsed:
        display_of(message.text, message.html)
    return {"count": len(parsed), "seconds": time.perf_counter() - started}


def run_child(name: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", name, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_postdesk(data_dir: Path, args: list[str], env: dict) -> dict:
    """`postdesk ...` in a fresh process tree; its peak RSS through a wrapper child."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", "postdesk", *args], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"postdesk {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds_total"] = seconds
    return result


# Each child runs under a launcher whose RUSAGE_CHILDREN holds that one process: ours
# is the largest child ever reaped, so a second run would report the first's peak.
_LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)")


def child_postdesk(args: list[str]) -> dict:
    started = time.perf_counter()
    argv = [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "postdesk", *args]
    proc = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    *stderr, peak_kb = proc.stderr.rstrip("\n").split("\n")
    if proc.returncode != 0:
        sys.stderr.write("\n".join(stderr))
        raise SystemExit(proc.returncode)
    return {"seconds": seconds, "peak_rss_mb": int(peak_kb) / 1024, "stdout": proc.stdout[-2000:]}


# --- main ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=2000)
    parser.add_argument("--before", help="the revision to compare with (default: before the killable parser pool)")
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.child:
        name, rest = args.child[0], args.child[1:]
        result = {"raw_fetch": lambda: child_raw_fetch(rest[0], int(rest[1]), rest[2], rest[3], rest[4]),
                  "raw_parse": lambda: child_raw_parse(rest[0]),
                  "display": lambda: child_display(rest[0]),
                  "postdesk": lambda: child_postdesk(rest)}[name]()
        result.setdefault("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))
        return 0

    from tests.servers.dovecot import Dovecot

    n = args.n
    work = Path(tempfile.mkdtemp(prefix="postdesk-bench-"))
    server = Dovecot.create()
    server.start()
    try:
        print(f"generating {n} messages ...", flush=True)
        messages = corpus(n)
        sizes = sorted(len(m) for m in messages)
        corpus_dir = work / "corpus"
        corpus_dir.mkdir()
        for i, raw in enumerate(messages):
            (corpus_dir / f"{i:06d}.eml").write_bytes(raw)
        print(f"corpus: {n} messages, median {sizes[n // 2] / 1024:.1f} KB, total {sum(sizes) / 1048576:.1f} MB, "
              f"largest {sizes[-1] / 1048576:.1f} MB", flush=True)
        user = server.new_user("bench")
        started = time.perf_counter()
        with server.imap(user) as client:
            for raw in messages:
                client.append("INBOX", raw)
        print(f"seeded Dovecot in {time.perf_counter() - started:.1f} s", flush=True)

        results = {}
        fetch_dir = work / "raw-fetch"
        fetch_dir.mkdir()
        results["raw fetch limit"] = run_child("raw_fetch", server.host, str(server.ports.imap), user.username, user.password, str(fetch_dir))
        first_parse = run_child("raw_parse", str(corpus_dir))

        before_rev = args.before or _before_pool()
        before_src = _checkout(before_rev, work / "before")
        variants = (
            ("Postdesk intake", ["--intake-only"], ROOT / "src", {}),
            (E2E_BEFORE, [], before_src, {}),
            (E2E_AFTER, [], ROOT / "src", {}),
            (E2E_NO_LIMIT, [], ROOT / "src", {"POSTDESK_PARSE_TIMEOUT": "0"}),
            (E2E_NO_DISPLAY, [], ROOT / "src", {}),
        )
        no_display = work / "no-display"
        no_display.mkdir()
        (no_display / "sitecustomize.py").write_text(_NO_DISPLAY)
        for label, extra, src, knobs in variants:
            data_dir = work / label.replace(" ", "-").replace(",", "")
            path = f"{no_display}{os.pathsep}{src}" if label == E2E_NO_DISPLAY else str(src)
            env = dict(os.environ, POSTDESK_DATA_DIR=str(data_dir), PYTHONPATH=path, **knobs)
            env.pop("POSTDESK_DATABASE_URL", None) if "POSTDESK_BENCH_DATABASE_URL" not in os.environ else env.update(
                POSTDESK_DATABASE_URL=os.environ["POSTDESK_BENCH_DATABASE_URL"])
            setup = [
                ["migrate", "--noinput"],
                ["mailbox", "add", "bench", "--protocol", "imap", "--host", server.host, "--port", str(server.ports.imap),
                 "--security", "none", "--username", user.username, "--password-env", "BENCH_PASSWORD", "--after", "keep"],
            ]
            env["BENCH_PASSWORD"] = user.password
            for cmd in setup:
                subprocess.run([sys.executable, "-m", "postdesk", *cmd], check=True, env=env, capture_output=True)
            result = run_postdesk(data_dir, ["fetch", *extra], env)
            result["count"] = n
            results[label] = result
            print(f"  {label}: {result['stdout'].strip()}", flush=True)

        # The machine's speed drifts during a run (shared host): the parse limit is
        # measured before and after the Postdesk runs, and the mean taken.
        second_parse = run_child("raw_parse", str(corpus_dir))
        results["raw parse limit"] = {
            "count": n,
            "seconds": (first_parse["seconds"] + second_parse["seconds"]) / 2,
            "peak_rss_mb": max(first_parse["peak_rss_mb"], second_parse["peak_rss_mb"]),
        }
        print(f"  raw parse limit: {n / first_parse['seconds']:.1f} msg/s before, {n / second_parse['seconds']:.1f} after")
        display = run_child("display", str(corpus_dir))
        results["display parts only"] = display
        print()
        print(f"{'measurement':<22} {'msg/s':>9} {'seconds':>9} {'peak RSS':>10}")
        rates = {}
        for label, r in results.items():
            rates[label] = r["count"] / r["seconds"]
            print(f"{label:<22} {rates[label]:>9.1f} {r['seconds']:>9.2f} {r['peak_rss_mb']:>8.0f} MB")
        intake_ratio = rates["Postdesk intake"] / rates["raw fetch limit"]
        e2e_ratio = rates[E2E_AFTER] / rates["raw parse limit"]
        cost = 1 - rates[E2E_AFTER] / rates[E2E_BEFORE]
        deadline_cost = 1 - rates[E2E_AFTER] / rates[E2E_NO_LIMIT]
        pool_cost = 1 - rates[E2E_NO_DISPLAY] / rates[E2E_BEFORE]
        print()
        print(f"before = {before_rev[:12]}")
        print(f"intake / raw fetch limit:     {intake_ratio:.2f}  target >= 0.5  {'PASS' if intake_ratio >= 0.5 else 'FAIL'}")
        print(f"end to end / raw parse limit: {e2e_ratio:.2f}  target >= 0.75 {'PASS' if e2e_ratio >= 0.75 else 'FAIL'}")
        print(f"cost of the time limits and the separate parser lane (after vs before): {cost:+.1%}  "
              f"target < 10% {'PASS' if cost < 0.10 else 'FAIL'}")
        print(f"  the deadlines themselves (after vs after, no limit):                  {deadline_cost:+.1%}")
        print(f"  the pool and the limits without the display parts (no display vs before): {pool_cost:+.1%}  "
              f"target < 10% {'PASS' if pool_cost < 0.10 else 'FAIL'}")
        print(f"display parts, now computed once per message at processing (one core): "
              f"{1000 * display['seconds'] / n:.1f} ms/message, vs parsing {1000 * results['raw parse limit']['seconds'] / n:.1f}")
    finally:
        server.stop()
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
