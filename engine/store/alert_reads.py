"""Read stored alerts and deliveries: one alert, a page of them, a span of time, as normalized.

Storing them (deduplication, the delivery log, the runs an alert starts) is
``engine.store.alerts``; everything here only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine.alerts import NormalizedAlert
from engine.store.errors import NotFound
from engine.store.models import Alert, Delivery


def get_alert(session: Session, alert_id: str) -> Alert:
    """Return one alert or raise ``NotFound``."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}")
    return alert


def list_alerts(
    session: Session, *, limit: int = 100, before_id: str | None = None
) -> Sequence[Alert]:
    """Return alerts, newest first; ``before_id``: only those older than that alert."""
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    return session.execute(query).scalars().all()


def alerts_between(
    session: Session, *, since: datetime | None, until: datetime | None, limit: int
) -> Sequence[Alert]:
    """Return the alerts whose event time (else their first receipt) lies in [since, until),
    oldest first, at most ``limit`` (``riposte replay --database-url``)."""
    moment = func.coalesce(Alert.event_time, Alert.first_seen)
    query = select(Alert).order_by(moment, Alert.id).limit(limit)
    if since is not None:
        query = query.where(moment >= since)
    if until is not None:
        query = query.where(moment < until)
    return session.execute(query).scalars().all()


def list_deliveries(
    session: Session, *, outcome: str | None = None, limit: int = 100,
    before: tuple[datetime, str] | None = None,
) -> Sequence[Delivery]:
    """Return deliveries, newest first, optionally only those with ``outcome``.

    ``before``: only those received before that (received_at, id), the keyset of a page.
    """
    query = select(Delivery)
    if outcome is not None:
        query = query.where(Delivery.outcome == outcome)
    if before is not None:
        at, delivery_id = before
        query = query.where(or_(Delivery.received_at < at,
                                and_(Delivery.received_at == at, Delivery.id < delivery_id)))
    # Ids are time-ordered only to the millisecond: received_at breaks ties within one.
    query = query.order_by(Delivery.received_at.desc(), Delivery.id.desc())
    return session.execute(query.limit(limit)).scalars().all()


def as_normalized(alert: Alert) -> NormalizedAlert:
    """Rebuild the normalized alert from its row (what playbooks see)."""
    return NormalizedAlert.model_validate(
        {name: getattr(alert, name) for name in NormalizedAlert.model_fields}
    )
