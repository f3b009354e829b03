"""Structured log lines: the message, then `key=value` fields a machine can pick out.

    2026-11-25T15:02:11Z INFO postdesk.worker request created mailbox=support request=PD-42 intake=97

Code passes the fields as `extra={"mailbox": ..., "request": ...}`; only the
names in FIELDS are printed, in that order.  POSTDESK_LOG_FORMAT=json prints one
JSON object per line instead (for log shippers).
"""

from __future__ import annotations

import json
import logging
import time

FIELDS = ("mailbox", "request", "intake", "kind", "error", "delay", "failures", "outcome", "count", "seconds", "user", "address", "wait")


def _fields(record: logging.LogRecord) -> dict:
    return {name: getattr(record, name) for name in FIELDS if getattr(record, name, None) not in (None, "")}


def _quote(value) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        head = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%SZ')} {record.levelname} {record.name} {record.getMessage()}"
        fields = " ".join(f"{k}={_quote(v)}" for k, v in _fields(record).items())
        line = f"{head} {fields}" if fields else head
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)

    converter = time.gmtime
