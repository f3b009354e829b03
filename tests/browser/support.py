"""Helpers for the browser tests: test bytes (a real PNG, a PDF), the mails
they travel in, a listener that stands in for a foreign host, and a record of
what the browser did (requests, dialogs, console, page errors, popups)."""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.support.mail import DEFAULT_DATE, new_message_id

ADMIN = "ada"  # the admin of the `admin_password` fixture

# --------------------------------------------------------------------------- bytes


def png(width: int = 24, height: int = 16) -> bytes:
    """A real RGB PNG (a diagonal gradient), made with zlib and struct only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00" + b"".join(bytes(((x * 255) // width, (y * 255) // height, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def pdf() -> bytes:
    """A small PDF-ish document; every byte value appears, so any re-encoding shows."""
    body = (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"stream\n" + bytes(range(256)) * 4 + b"\r\n\x00\r\nendstream\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )
    return body


# --------------------------------------------------------------------------- mails


def _headers(msg: EmailMessage, subject: str, sender: str) -> None:
    msg["From"] = sender
    msg["To"] = "Support <support@desk.example>"
    msg["Subject"] = subject
    msg["Date"] = DEFAULT_DATE
    msg["Message-ID"] = new_message_id()


def related_html_mail(subject: str, *, text: str, html: str, image: bytes, cid: str,
                      attachment: tuple[str, str, bytes] | None = None,
                      sender: str = "Alice Customer <alice@customer.example>") -> bytes:
    """multipart/mixed [ multipart/alternative [ text/plain, multipart/related [ text/html,
    image/png (Content-ID: <cid>) ] ], the attachment ]."""
    msg = EmailMessage(policy=SMTP)
    _headers(msg, subject, sender)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(image, maintype="image", subtype="png", cid=f"<{cid}>", filename="logo.png")
    if attachment is not None:
        filename, content_type, data = attachment
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def html_mail(subject: str, html: str, *, text: str | None = None,
              sender: str = "Mallory <mallory@customer.example>",
              attachment: tuple[str, str, bytes] | None = None) -> bytes:
    """text/html alone, or multipart/alternative when `text` is given (plus an attachment)."""
    msg = EmailMessage(policy=SMTP)
    _headers(msg, subject, sender)
    if text is None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        filename, content_type, data = attachment
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


# --------------------------------------------------------------------------- the foreign host


class ForeignHost:
    """An HTTP listener on another loopback address (127.0.0.2, or 127.0.0.1 on another
    port where that cannot be bound) that records every request it gets: a different
    origin from the Postdesk server, so anything reaching it has left for a foreign host."""

    GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"

    def __init__(self) -> None:
        self.hits: list[tuple[str, str]] = []  # (method, path)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                with owner._lock:
                    owner.hits.append((self.command, self.path))
                if self.path.endswith(".gif"):
                    body, kind = owner.GIF, "image/gif"
                elif self.path.endswith(".css"):
                    body, kind = b"body{background:#f00}", "text/css"
                elif self.path.endswith(".js"):
                    body, kind = b"alert('foreign script')", "text/javascript"
                else:
                    body, kind = b"<script>alert('foreign page')</script>", "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args):  # quiet
                pass

        try:
            self._server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        except OSError:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="foreign-host", daemon=True)
        self._thread.start()

    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.hits)

    def clear(self) -> None:
        with self._lock:
            self.hits.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --------------------------------------------------------------------------- what the browser did


@dataclass
class Seen:
    """Every request, dialog, console message, page error and popup of one browser context."""

    origin: str  # the Postdesk server's origin, "http://127.0.0.1:PORT"
    requests: list = field(default_factory=list)  # (method, url, resource_type, frame url)
    dialogs: list = field(default_factory=list)  # (type, message)
    console: list = field(default_factory=list)  # (type, text, url)
    page_errors: list = field(default_factory=list)
    popups: list = field(default_factory=list)  # Page objects: .url is where each is now

    def attach(self, context) -> None:
        context.on("request", self._on_request)
        context.on("page", self._on_page)
        for page in context.pages:
            self._watch(page)

    def _on_request(self, request) -> None:
        try:
            frame_url = request.frame.url
        except Exception:  # a service worker's request has no frame
            frame_url = ""
        self.requests.append((request.method, request.url, request.resource_type, frame_url))

    def _on_page(self, page) -> None:
        if page.opener() is not None:
            self.popups.append(page)
        self._watch(page)

    def _watch(self, page) -> None:
        def on_dialog(dialog):
            self.dialogs.append((dialog.type, dialog.message))
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda msg: self.console.append((msg.type, msg.text, msg.location.get("url", ""))))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def foreign_requests(self, since: int = 0) -> list:
        """Requests to anything but the Postdesk server (data: URLs never leave the browser)."""
        return [r for r in self.requests[since:] if not self.is_local(r[1])]

    def is_local(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "about", "blob"):
            return True
        return f"{parts.scheme}://{parts.netloc}" == self.origin

    def mark(self) -> int:
        return len(self.requests)

    def report(self) -> str:
        lines = ["requests:"] + [f"  {m} {u} [{t}] from {f}" for m, u, t, f in self.requests]
        lines += ["dialogs:"] + [f"  {d}" for d in self.dialogs]
        # Playwright's own clicks in a frame without allow-scripts log "Blocked script
        # execution" (its helpers are refused too): shown once each, with a count.
        counted: dict = {}
        for c in self.console:
            counted[c] = counted.get(c, 0) + 1
        lines += ["console:"] + [f"  {c}" + (f" (x{n})" if n > 1 else "") for c, n in counted.items()]
        lines += ["page errors:"] + [f"  {e}" for e in self.page_errors]
        lines += ["popups:"] + [f"  {p.url}" for p in self.popups]
        return "\n".join(lines)
