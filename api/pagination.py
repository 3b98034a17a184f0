"""One way to page every list: ``limit``, an opaque ``cursor``, and a ``next`` link.

A cursor is the sort key of the last item of a page, so the next page starts right after it
whatever was added meanwhile (keyset pagination: no item is skipped or shown twice as new ones
arrive). ``next`` is the relative URL of the next page, the request's own filters kept; null on
the last page.

Clients pass cursors back as given. Each list's cursor has a pattern, in the schema and in the
server alike, and every string of that pattern is a position in the list (a cursor no page
gave is still a place to start from): so the server refuses exactly the cursors the schema
refuses (422), and none other. Hence plain spellings of the keys rather than encoded JSON,
whose validity no pattern could state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import Query, Request

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT,
                             description=f"Most items to return (default {DEFAULT_LIMIT}, at "
                                         f"most {MAX_LIMIT}).")]

_ABOUT = ("Where the page starts: the cursor in the previous page's `next` link (opaque: pass "
          "it back as given; leave it out for the first page).")
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Microseconds since 1970 in UTC: 16 digits reach past the year 2200.
_MICROS = "[0-9]{1,16}"

# Lists in the order of the ids the API gives (alerts, runs, approvals, tokens).
IdCursor = Annotated[str | None, Query(pattern=f"^{_UUID}$", description=_ABOUT)]
# Lists in the order of a time, ties broken by id (deliveries).
TimeIdCursor = Annotated[str | None, Query(pattern=rf"^{_MICROS}\.{_UUID}$", description=_ABOUT)]
# Lists in the order of a time, ties broken by a name of any text (workers: an id of at most
# 128 characters, so at most 512 bytes of UTF-8, spelt in hex).
TimeNameCursor = Annotated[str | None, Query(pattern=rf"^{_MICROS}\.([0-9a-f]{{2}}){{1,512}}$",
                                             description=_ABOUT)]
# Lists in the order of a serial number (audit events).
SerialCursor = Annotated[str | None, Query(pattern="^[0-9]{1,18}$", description=_ABOUT)]
# Lists in the order of playbook names (engine.spec's pattern of ids).
PlaybookCursor = Annotated[str | None, Query(pattern="^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$",
                                             description=_ABOUT)]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Row = TypeVar("Row")


def time_and_id(moment: datetime, key: str) -> str:
    """Return the cursor of a row sorted by a time, then an id."""
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{key}"


def time_and_name(moment: datetime, name: str) -> str:
    """Return the cursor of a row sorted by a time, then a name of any text."""
    return time_and_id(moment, name.encode("utf-8").hex())


def read_time_and_id(cursor: str) -> tuple[datetime, str]:
    """Return the time and id of a cursor of ``TimeIdCursor``'s pattern."""
    micros, _, key = cursor.partition(".")
    return _EPOCH + timedelta(microseconds=int(micros)), key


def read_time_and_name(cursor: str) -> tuple[datetime, str]:
    """Return the time and name of a cursor of ``TimeNameCursor``'s pattern."""
    moment, hexed = read_time_and_id(cursor)
    # Any hex spells some bytes; a cursor no page gave is read as the text nearest to them.
    return moment, bytes.fromhex(hexed).decode("utf-8", "replace").replace("\x00", "")


def page(
    request: Request, rows: Sequence[Row], *, limit: int, cursor: Callable[[Row], str]
) -> tuple[Sequence[Row], str | None]:
    """Split ``rows`` (fetched with ``limit + 1``) into the page and the next page's link."""
    if len(rows) <= limit:
        return rows, None
    shown = rows[:limit]
    query = [(name, value) for name, value in request.query_params.multi_items()
             if name not in ("cursor", "limit")]
    query += [("limit", str(limit)), ("cursor", cursor(shown[-1]))]
    return shown, f"{request.url.path}?{urlencode(query)}"
