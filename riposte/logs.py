"""JSON-lines logging, each line carrying the alert, run and step it concerns."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_IDS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "riposte_ids", default=None
)


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Attach ids (alert_id, run_id, step_id…) to every log line written inside the block."""
    token = _IDS.set({**(_IDS.get() or {}), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _IDS.reset(token)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **(_IDS.get() or {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


ACCESS_LOGGER = "uvicorn.access"


def access_log(enabled: bool) -> None:
    """Turn uvicorn's line per HTTP request on or off (RIPOSTE_ACCESS_LOG).

    Off, a request leaves only the API's own lines, which name the alert, run or refusal.
    """
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if enabled else logging.WARNING)
