"""Sample payloads published by AWS and others; each test names where its sample comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent


def load(name: str) -> Any:
    """Return the parsed sample ``tests/samples/<name>.json``."""
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def names() -> list[str]:
    """Return the names of every stored sample."""
    return sorted(path.stem for path in SAMPLES.glob("*.json"))
