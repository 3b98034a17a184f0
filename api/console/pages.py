"""Rendering console pages: one Jinja2 environment, autoescaped, and its filters.

Templates are the package's own files; what comes from alerts, runs or playbooks enters them
only as variables, escaped on output (autoescape on for every template, nothing marked safe).
Alert text is attacker-controlled (a CloudTrail userAgent can hold ``{{ … }}`` or ``<script>``):
it is never compiled as a template and shows as the text it is.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.console.access import Viewer
from engine.modes import DRY_RUN, REHEARSAL
from engine.store.types import utcnow

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# Values longer than this (as JSON) are folded in a <details> closed by default.
FOLD_CHARS = 400


def when(stamp: datetime | str | None) -> str:
    """A time as people read it on any screen: ``2025-03-01 14:05:09 UTC``."""
    if stamp is None:
        return "—"
    if isinstance(stamp, str):
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return stamp
    else:
        moment = stamp
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def duration(seconds: float | None) -> str:
    """A span of time in words: ``3 s``, ``4 min 10 s``, ``2 h 5 min``, ``3 d 1 h``."""
    if seconds is None:
        return "—"
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {secs} s" if secs and minutes < 10 else "")
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def time_left(deadline: datetime | None, now: datetime | None = None) -> str:
    """How long until ``deadline``: ``in 41 min``, or ``passed 3 min ago``."""
    if deadline is None:
        return "—"
    left = (deadline - (now or utcnow())).total_seconds()
    return f"in {duration(left)}" if left >= 0 else f"passed {duration(-left)} ago"


def took(start: datetime | None, end: datetime | None) -> str:
    """How long something between two times took (still going: so far)."""
    if start is None:
        return "—"
    span: timedelta = (end or utcnow()) - start
    return duration(span.total_seconds()) + ("" if end is not None else " so far")


def pretty(value: Any) -> str:
    """A JSON value as indented text (shown in <pre>, escaped like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def is_long(value: Any) -> bool:
    """Whether a value is long enough to be folded."""
    return len(pretty(value)) > FOLD_CHARS or pretty(value).count("\n") > 12


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(when=when, duration=duration, time_left=time_left,
                               pretty=pretty, is_long=is_long)
    environment.globals.update(took=took, DRY_RUN=DRY_RUN, REHEARSAL=REHEARSAL)
    return environment


ENVIRONMENT = _environment()


def render(template: str, *, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """Render a template into an HTML answer (no message unless one is given)."""
    context.setdefault("message", None)
    context.setdefault("message_kind", "info")
    html = ENVIRONMENT.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def page(template: str, request: Request, viewer: Viewer, *, nav: str, status: int = 200,
         **context: Any) -> HTMLResponse:
    """Render a page for a signed-in person (the layout's navigation and sign-out form)."""
    return render(template, status=status, viewer=viewer, nav=nav, path=request.url.path,
                  **context)
