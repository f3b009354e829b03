"""postdesk run: the web UI and the worker together, the one command a small team starts."""

from __future__ import annotations

import signal
import threading

from postdesk.management.base import FAILED, USAGE, PostdeskCommand
from postdesk.web import server

WORKER_JOIN_SECONDS = 10.0


class Command(PostdeskCommand):
    help = "Run Postdesk: the web UI and the mail worker in one process (first start: an admin and a demo mailbox)."

    def add_arguments(self, parser):
        server.add_arguments(parser)
        parser.add_argument("--no-demo", action="store_true", help="on first start, do not add the demo mailbox")

    def handle(self, *args, **options):
        from postdesk import demo
        from postdesk.worker import Worker

        # Listen first: a port in use must not cost the first start its admin password
        # (made, and shown, only once).
        try:
            web = server.listen(options)
        except server.ListenError as exc:
            raise self.fail(str(exc), USAGE if exc.usage else FAILED) from None
        started = demo.first_start(with_demo=not options["no_demo"])

        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()
            raise KeyboardInterrupt  # ends waitress's loop in this (the main) thread

        # Before the worker starts: a SIGTERM from then on is a clean stop, never the default kill.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        worker = Worker(stop=stop)
        worker_thread = threading.Thread(target=worker.run, name="worker", daemon=True)
        try:
            worker_thread.start()
            url = server.url_of(web)
            self.stdout.write(f"Postdesk is running at {url}")
            if started.admin_password:
                self.stdout.write(f"Log in as {demo.ADMIN_USERNAME} with the password {started.admin_password}")
                self.stdout.write(f"(shown this once; change it on your account page, {url}account/, or with `postdesk changepassword admin`)")
            if started.demo_mailbox:
                self.stdout.write(f"Demo mailbox: {started.demo_mailbox} (drop .eml files into its new/ folder to see them arrive)")
            self.stdout.write("Stop with Ctrl-C.")
            self.stdout.flush()
            web.run()
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            web.close()
            if worker_thread.is_alive():
                worker_thread.join(WORKER_JOIN_SECONDS)
        self.stdout.write("Postdesk stopped")
