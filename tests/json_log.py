"""Read the log lines a test captured with the ``json_log`` fixture (tests/conftest.py)."""

from __future__ import annotations

import io
import json
from typing import Any


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Return the captured JSON log lines as objects, in the order they were written."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]
