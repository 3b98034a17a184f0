"""Alerts and deliveries: store an alert and queue the playbooks it triggers, in one go."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.alerts import NormalizedAlert, ProductionCheck, updated_by_riposte
from engine.playbooks import LoadedPlaybook
from engine.store.errors import NotFound
from engine.store.models import Alert, Delivery
from engine.store.triggers import apply_triggers
from engine.store.types import utcnow


@dataclass
class IngestResult:
    """The stored alert, the runs it queued or joined, and whether it was a repeat or ignored.

    ``joined_run_ids``: open runs of correlating playbooks, and fired threshold runs, that the
    alert joined instead of starting one.
    """

    alert_id: str | None
    run_ids: list[str] = field(default_factory=list)
    joined_run_ids: list[str] = field(default_factory=list)
    duplicate: bool = False
    ignored: bool = False


def ingest_alert(
    *,
    session: Session,
    alert: NormalizedAlert,
    playbooks: Mapping[str, LoadedPlaybook],
    endpoint: str,
    body_sha256: str,
    body_bytes: int,
    actor: str,
    is_production: ProductionCheck | None = None,
) -> IngestResult:
    """Store an alert with its delivery and start, join or count it for every matching trigger.

    A repeat (same ``dedup_key``) only counts on the alert it repeats. ``is_production`` is
    ``Settings.is_production``; None (benchmarks, tests without settings) takes every instance
    for possible production.
    """
    if updated_by_riposte(alert):
        # Riposte's own note on a finding comes back as an update: never a reason to act again.
        _delivery(session, endpoint, alert.source, "ignored", None, body_sha256, body_bytes,
                  "finding last updated by Riposte")
        return IngestResult(alert_id=None, ignored=True)
    existing = None
    if alert.dedup_key:
        existing = session.execute(
            select(Alert).where(Alert.dedup_key == alert.dedup_key).with_for_update()
        ).scalars().first()
    if existing is not None:
        existing.occurrences += 1
        existing.last_seen = utcnow()
        _delivery(session, endpoint, alert.source, "duplicate", existing.id, body_sha256,
                  body_bytes)
        audit.record(session, actor=actor, verb="alert.repeated", alert_id=existing.id,
                     details={"occurrences": existing.occurrences})
        return IngestResult(alert_id=existing.id, duplicate=True)
    received = utcnow()
    row = Alert(
        source=alert.source,
        kind=alert.kind,
        type=alert.type,
        title=alert.title,
        severity=alert.severity,
        severity_label=alert.severity_label,
        account=alert.account,
        region=alert.region,
        principal=alert.principal.model_dump(mode="json") if alert.principal else None,
        resources=[r.model_dump(mode="json") for r in alert.resources],
        event_time=alert.event_time,
        event_name=alert.event_name,
        source_ip=alert.source_ip,
        user_agent=alert.user_agent,
        mfa_used=alert.mfa_used,
        details=alert.details,
        dedup_key=alert.dedup_key,
        first_seen=received,
        last_seen=received,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent delivery of the same alert committed first: this one is its repeat.
        return ingest_alert(session=session, alert=alert, playbooks=playbooks,
                            endpoint=endpoint, body_sha256=body_sha256, body_bytes=body_bytes,
                            actor=actor, is_production=is_production)
    _delivery(session, endpoint, alert.source, "accepted", row.id, body_sha256, body_bytes)
    audit.record(session, actor=actor, verb="alert.received", alert_id=row.id,
                 details={"source": alert.source, "kind": alert.kind, "title": alert.title})
    triggered = apply_triggers(session=session, alert_id=row.id, alert=alert,
                               received_at=received, playbooks=playbooks,
                               is_production=is_production)
    return IngestResult(alert_id=row.id, run_ids=triggered.started,
                        joined_run_ids=triggered.joined)


def ingest_alerts(
    *,
    session: Session,
    alerts: Sequence[NormalizedAlert],
    playbooks: Mapping[str, LoadedPlaybook],
    endpoint: str,
    body_sha256: str,
    body_bytes: int,
    actor: str,
    is_production: ProductionCheck | None = None,
) -> list[IngestResult]:
    """Store every alert of one delivery, in the caller's transaction: all of them or none.

    Each alert keeps its own delivery row (same body digest); a repeat inside the same body
    counts on the alert stored just before it.
    """
    return [
        ingest_alert(session=session, alert=alert, playbooks=playbooks, endpoint=endpoint,
                     body_sha256=body_sha256, body_bytes=body_bytes, actor=actor,
                     is_production=is_production)
        for alert in alerts
    ]


def record_delivery(
    *, session: Session, endpoint: str, source: str, outcome: str, reason: str,
    body_sha256: str, body_bytes: int,
) -> None:
    """Keep a trace of a delivery that made no alert (an SNS subscription message)."""
    _delivery(session, endpoint, source, outcome, None, body_sha256, body_bytes, reason)


def record_rejected_delivery(
    *, session: Session, endpoint: str, source: str, reason: str, body_sha256: str,
    body_bytes: int,
) -> None:
    """Keep a trace of a delivery that was refused, and why."""
    _delivery(session, endpoint, source, "rejected", None, body_sha256, body_bytes, reason)


def get_alert(session: Session, alert_id: str) -> Alert:
    """Return one alert or raise ``NotFound``."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}")
    return alert


def list_alerts(session: Session, *, limit: int = 100, offset: int = 0) -> Sequence[Alert]:
    """Return alerts, newest first."""
    query = select(Alert).order_by(Alert.id.desc()).limit(limit).offset(offset)
    return session.execute(query).scalars().all()


def list_deliveries(
    session: Session, *, outcome: str | None = None, limit: int = 100, offset: int = 0
) -> Sequence[Delivery]:
    """Return deliveries, newest first, optionally only those with ``outcome``."""
    query = select(Delivery)
    if outcome is not None:
        query = query.where(Delivery.outcome == outcome)
    # Ids are time-ordered only to the millisecond: received_at breaks ties within one.
    query = query.order_by(Delivery.received_at.desc(), Delivery.id.desc())
    return session.execute(query.limit(limit).offset(offset)).scalars().all()


def as_normalized(alert: Alert) -> NormalizedAlert:
    """Rebuild the normalized alert from its row (what playbooks see)."""
    return NormalizedAlert.model_validate(
        {
            "source": alert.source,
            "kind": alert.kind,
            "type": alert.type,
            "title": alert.title,
            "severity": alert.severity,
            "severity_label": alert.severity_label,
            "account": alert.account,
            "region": alert.region,
            "principal": alert.principal,
            "resources": alert.resources,
            "event_time": alert.event_time,
            "event_name": alert.event_name,
            "source_ip": alert.source_ip,
            "user_agent": alert.user_agent,
            "mfa_used": alert.mfa_used,
            "details": alert.details,
            "dedup_key": alert.dedup_key,
        }
    )


def _delivery(
    session: Session,
    endpoint: str,
    source: str,
    outcome: str,
    alert_id: str | None,
    body_sha256: str,
    body_bytes: int,
    reason: str = "",
) -> None:
    session.add(
        Delivery(
            endpoint=endpoint,
            source=source,
            outcome=outcome,
            alert_id=alert_id,
            reason=reason[:1024],
            body_sha256=body_sha256,
            body_bytes=body_bytes,
        )
    )
