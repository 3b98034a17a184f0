"""Store the alerts of one delivery for any endpoint: a 2xx means they are committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread
from fastapi import Response
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from api.deps import BodyDigest, Runtime
from api.errors import ApiError, unavailable
from core.logs import bound
from core.settings import variable
from engine.alerts import NormalizedAlert
from engine.metrics import ALERTS_RECEIVED
from engine.store.alerts import IngestResult, ingest_delivery

log = logging.getLogger("riposte.api")

# The source is chosen by the sender: only known ones become label values, so a sender cannot
# grow the metric without bound.
_METRIC_SOURCES = frozenset(
    {"generic", "sns", "cloudwatch", "eventbridge", "securityhub", "guardduty", "cloudtrail"}
)


T = TypeVar("T")


async def in_ingest_thread(runtime: Runtime, work: Callable[..., T], /, *args: Any,
                           **kwargs: Any) -> T:
    """Run ``work`` in a worker thread, at most RIPOSTE_INGEST_THREADS of them at once.

    ``work`` parses, normalizes and stores one delivery; further deliveries wait their turn on
    the event loop, holding no thread. The work is mostly Python holding the GIL: dozens of
    threads taking turns at it cost more CPU per delivery and a longer wait for each, and the
    database only needs a few at once.
    """
    return await to_thread.run_sync(partial(work, *args, **kwargs),
                                    limiter=runtime.ingest_threads)


def refuse_too_many_events(count: int, *, runtime: Runtime) -> None:
    """Answer 413 to a delivery of more events than RIPOSTE_MAX_EVENTS_PER_DELIVERY."""
    limit = runtime.settings.max_events_per_delivery
    if count > limit:
        raise ApiError(413, f"the delivery carries {count} events, over the limit of {limit} "
                            f"({variable('max_events_per_delivery')}): send at most {limit} per "
                            "request (split the array or the log file)", code="too_many_events")


def events_in(document: Any) -> int:
    """Count the events of a parsed body before normalizing it: an array's items, a log file's
    ``Records``, else one (findings inside an event are counted once normalized)."""
    if isinstance(document, list):
        return len(document)
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        return len(document["Records"])
    return 1


def store_delivery(
    *,
    session: Session,
    alerts: Sequence[NormalizedAlert],
    runtime: Runtime,
    endpoint: str,
    digest: BodyDigest,
    actor: str,
    response: Response,
) -> list[IngestResult]:
    """Commit the alerts and their runs, or answer 503 so the sender delivers again.

    Sets the answer's status: 202 when anything new was stored, else 200 (repeats, ignored).
    More alerts than RIPOSTE_MAX_EVENTS_PER_DELIVERY answer 413 and store nothing.
    """
    refuse_too_many_events(len(alerts), runtime=runtime)
    sources = [a.source if a.source in _METRIC_SOURCES else "other" for a in alerts]
    try:
        results = ingest_delivery(
            session=session,
            alerts=alerts,
            playbooks=runtime.library.current(),
            endpoint=endpoint,
            body_sha256=digest.sha256,
            body_bytes=digest.size,
            actor=actor,
            is_production=runtime.settings.is_production,
            default_mode=runtime.settings.default_mode,
        )
    except DataError:
        raise  # a value the database refuses: retrying would not help (400)
    except (DBAPIError, PoolTimeout) as exc:
        for source in sources:
            ALERTS_RECEIVED.labels(source, "unavailable").inc()
        log.warning("delivery to %s from %s not stored: %s", endpoint, actor, type(exc).__name__)
        # A large delivery may have had batches committed: delivered again, they are repeats.
        raise unavailable("the delivery was not (wholly) stored: the database is unavailable; "
                          "retry later") from None
    for source, result in zip(sources, results, strict=True):
        outcome = "ignored" if result.ignored else (
            "duplicate" if result.duplicate else "accepted")
        ALERTS_RECEIVED.labels(source, outcome).inc()
        with bound(alert_id=result.alert_id):
            if result.ignored:
                log.info("finding from %s ignored: last updated by Riposte", actor)
            elif result.duplicate:
                log.info("repeat of alert %s from %s", result.alert_id, actor)
            else:
                log.info("alert %s from %s queued %d runs, joined %d", result.alert_id, actor,
                         len(result.run_ids), len(result.joined_run_ids))
    # 202 only when something new was stored (and may have queued runs).
    response.status_code = 202 if any(not (r.duplicate or r.ignored) for r in results) else 200
    return results
