"""Near-push for Maildir: a delivery renames a file into `new/`, which changes
that directory's modification time; looking at it once a second costs one
stat() and needs no inotify library."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("postdesk.worker")

LOOK_EVERY = 1.0  # seconds


class MaildirWatcher(threading.Thread):
    def __init__(self, path: str, name: str, on_new_mail: Callable[[], None], stop: threading.Event):
        super().__init__(name=f"maildir:{name}", daemon=True)
        self.new_dir = os.path.join(path, "new")
        self.on_new_mail = on_new_mail
        self.stop = stop
        self.unsupported = False
        self.active = threading.Event()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.new_dir)
            return st.st_mtime_ns, st.st_ino
        except OSError:
            return None

    def run(self) -> None:
        last = self._stamp()
        self.active.set()
        # The runner starts us after its pass: a delivery between that pass's read of
        # new/ and the stamp above would wait a whole poll interval.  One more pass
        # closes the gap (a listing of new/, nothing when nothing came).
        self.on_new_mail()
        try:
            while not self.stop.wait(LOOK_EVERY):
                now = self._stamp()
                if now != last:
                    last = now
                    self.on_new_mail()
        finally:
            self.active.clear()
