"""postdesk worker: fetch every enabled mailbox on its own schedule (IMAP IDLE where offered) until stopped."""

from __future__ import annotations

import signal
import threading

from postdesk.management.base import PostdeskCommand


class Command(PostdeskCommand):
    help = "Fetch and process mail until stopped: each mailbox on its own schedule, IMAP IDLE where offered."

    def add_arguments(self, parser):
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="also serve Prometheus metrics on 127.0.0.1:PORT (the web UI's /metrics shows database gauges only)")
        parser.add_argument("--metrics-host", default="127.0.0.1")

    def handle(self, *args, **options):
        from postdesk.worker import Worker

        stop = threading.Event()
        install_stop_signals(stop)
        if options["metrics_port"] is not None:
            from prometheus_client import start_http_server

            from postdesk.metrics import REGISTRY, DatabaseCollector

            DatabaseCollector.close_connection_after = True
            start_http_server(options["metrics_port"], addr=options["metrics_host"], registry=REGISTRY)
        Worker(stop=stop).run()


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`; a second one exits at once (someone means it)."""

    def handler(signum, frame):
        if stop.is_set():
            raise SystemExit(128 + signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
