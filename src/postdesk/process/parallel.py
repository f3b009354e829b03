"""Parsing on every core while this process writes to the database.

Parsing is pure CPU and needs no database, so a batch of claimed messages is
parsed by a pool of worker processes (spawned: they import only postdesk.mail,
never Django, and share no database connection).  A message that kills its
worker (a parser crash, memory exhaustion) costs that message only: it comes
back as an exception and is quarantined.

POSTDESK_PARSE_WORKERS: how many worker processes (default: the number of
cores; 0 parses in this process).  Small batches are parsed here: starting a
pool costs more than it saves.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor

from postdesk.mail import ParsedMessage, parse

POOL_THRESHOLD = 8  # messages in a batch before the pool is worth it

_pool: ProcessPoolExecutor | None = None


def workers() -> int:
    configured = os.environ.get("POSTDESK_PARSE_WORKERS")
    if configured is not None:
        return max(0, int(configured))
    cores = os.cpu_count() or 1
    return cores if cores > 1 else 0  # one core: a pool would only add copying


def start(claimed: list[tuple[int, int]]) -> list:
    """Begin parsing the claimed intake rows; collect with results().  Submitting the
    next batch before applying this one keeps the workers busy while we write."""
    if len(claimed) < POOL_THRESHOLD or workers() == 0:
        return [None] * len(claimed)
    from postdesk.models import Intake
    from postdesk.store import blobs

    raw_ids = dict(Intake.objects.filter(pk__in=[i for i, _ in claimed]).values_list("pk", "raw_id"))
    try:
        raws = blobs.read_many(list(raw_ids.values()))
    except Exception:  # a blob is missing: read them one by one, so only its message fails
        raws = {}
    pending: list = []
    for intake_id, _ in claimed:
        try:
            raw = raws.get(raw_ids[intake_id])
            pending.append(_submit(raw if raw is not None else blobs.read(raw_ids[intake_id])))
        except Exception as exc:  # reported for this message only
            pending.append(exc)
    return pending


def results(pending: list) -> Iterator[ParsedMessage | BaseException | None]:
    """Parsed messages in claim order (None: parse in the caller)."""
    for item in pending:
        if item is None or isinstance(item, BaseException):
            yield item
            continue
        try:
            yield item.result()
        except BrokenExecutor as exc:
            _reset_pool()
            yield RuntimeError(f"the parser's process died on this message ({exc})")
        except Exception as exc:
            yield exc


def warm_up() -> None:
    """Start the worker processes now (they take a moment to spawn), so that the
    first batch does not wait for them: called when a backlog is about to come."""
    if workers() > 0:
        _submit(b"")


def _submit(raw: bytes):
    global _pool
    if _pool is None:
        # Ctrl-C in a terminal reaches the whole process group: the parsers ignore it and
        # leave stopping to the worker (which shuts the pool down) instead of dying
        # mid-message.  The initializer is signal.signal itself: a function of this module
        # would make each spawned process import postdesk.process, hence Django's models,
        # which fails there (no django.setup()) and breaks the pool for every message.
        _pool = ProcessPoolExecutor(
            max_workers=workers(), mp_context=multiprocessing.get_context("spawn"),
            initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN),
        )
        atexit.register(_reset_pool)
    try:
        return _pool.submit(parse, raw)
    except BrokenExecutor:
        _reset_pool()
        return _submit(raw)


def shutdown() -> None:
    """Stop the parser processes (the worker's shutdown)."""
    _reset_pool()


def _reset_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
