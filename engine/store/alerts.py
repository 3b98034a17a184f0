"""Alerts and deliveries: store an alert and queue the playbooks it triggers, in one go.

Reading them back is ``engine.store.alert_reads``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Executable,
    String,
    Table,
    bindparam,
    case,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from engine import audit
from engine.alerts import (
    NormalizedAlert,
    ProductionCheck,
    matching_trigger,
    updated_by_riposte,
)
from engine.playbooks import LoadedPlaybook
from engine.store.models import Alert, Delivery
from engine.store.triggers import apply_triggers
from engine.store.types import new_id, utcnow

log = logging.getLogger("riposte.store")

# The most alerts of one delivery stored in one transaction (see ingest_delivery). A batch of
# 20 took ~50 ms on PostgreSQL, nearly all of it holding the audit chain's lock: a write beside
# a large delivery waited 30 ms at the median (bench/ingest_lock.py). Batches of 10 to 100
# stored a delivery as fast as one transaction did; larger ones make the others wait longer.
ALERTS_PER_TRANSACTION = 20


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
    default_mode: str = "live",
) -> IngestResult:
    """Store an alert with its delivery and start, join or count it for every matching trigger.

    A repeat (same ``dedup_key``) only counts on the alert it repeats. ``is_production`` is
    ``Settings.is_production``; None (benchmarks, tests without settings) takes every instance
    for possible production. ``default_mode`` (``Settings.default_mode``): the mode of the runs
    it starts when their playbook gives none.
    """
    connection = session.connection()
    received = utcnow()
    delivery = _delivery_row(endpoint, alert.source, body_sha256, body_bytes, received)
    if updated_by_riposte(alert):
        # Riposte's own note on a finding comes back as an update: never a reason to act again.
        _insert_delivery(connection, delivery, "ignored", None, "finding last updated by Riposte")
        return IngestResult(alert_id=None, ignored=True)
    row = _alert_row(alert, received)
    alert_id, occurrences = _store_alert(connection, row, delivery)
    if alert_id != row["id"]:
        audit.record(session, actor=actor, verb="alert.repeated", alert_id=alert_id,
                     details={"occurrences": occurrences})
        return IngestResult(alert_id=alert_id, duplicate=True)
    audit.record(session, actor=actor, verb="alert.received", alert_id=alert_id,
                 details={"source": alert.source, "kind": alert.kind, "title": alert.title})
    triggered = apply_triggers(session=session, alert_id=alert_id, alert=alert,
                               received_at=received, playbooks=playbooks,
                               is_production=is_production, default_mode=default_mode)
    return IngestResult(alert_id=alert_id, run_ids=triggered.started,
                        joined_run_ids=triggered.joined)


def _alert_row(alert: NormalizedAlert, received: datetime) -> dict[str, Any]:
    # Every field of the normalized alert is a column of the same name (see
    # engine.store.alert_reads.as_normalized).
    return {**alert.model_dump(), "id": new_id(), "occurrences": 1, "first_seen": received,
            "last_seen": received}


def _delivery_row(
    endpoint: str, source: str, body_sha256: str, body_bytes: int, received: datetime
) -> dict[str, Any]:
    """A delivery row but its outcome, alert and reason."""
    return {
        "id": new_id(),
        "received_at": received,
        "endpoint": endpoint,
        "source": source,
        "body_sha256": body_sha256,
        "body_bytes": body_bytes,
    }


# The statements below bind each table's values as ``<table>_<column>``: one statement writes
# several tables, and SQLAlchemy would take a parameter named like a column of an UPDATE's
# table (the audit chain's ``id``) for a value to SET.
_ALERTS = cast(Table, Alert.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)
_DELIVERY_GIVEN = ["id", "received_at", "endpoint", "source", "body_sha256", "body_bytes"]
# Constants are written into the SQL, not bound: a CTE that a statement names twice would
# otherwise bind them twice, which SQLAlchemy's statement cache does not expect.
_ACCEPTED: ColumnElement[str] = literal_column("'accepted'", String())


def _bound(table: Table, columns: Sequence[str]) -> dict[str, BindParameter[Any]]:
    return {name: bindparam(f"{table.name}_{name}", type_=table.c[name].type) for name in columns}


def _parameters(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{table.name}_{name}": value for name, value in row.items()}


def _upsert(statement: postgresql.Insert | sqlite.Insert) -> ReturningInsert[tuple[str, int]]:
    """``INSERT … ON CONFLICT (dedup_key) DO UPDATE`` counting the repeat, in one statement.

    On PostgreSQL a concurrent insert of the same key waits for the first to commit, then
    counts on its row: no savepoint, no retry, never two alerts. An alert without a key never
    conflicts (NULLs are distinct).
    """
    return statement.values(_bound(_ALERTS, _ALERTS.c.keys())).on_conflict_do_update(
        index_elements=[_ALERTS.c.dedup_key],
        set_={"occurrences": _ALERTS.c.occurrences + 1,
              "last_seen": statement.excluded.last_seen},
    ).returning(_ALERTS.c.id, _ALERTS.c.occurrences)


def _upsert_with_delivery() -> Executable:
    """PostgreSQL: the alert upsert and its delivery row (accepted or duplicate), one statement.

    WITH stored AS (INSERT INTO alerts … ON CONFLICT … RETURNING id, occurrences),
         delivery AS (INSERT INTO deliveries … SELECT …, CASE WHEN stored.id = :alerts_id
                      THEN 'accepted' ELSE 'duplicate' END, stored.id, … FROM stored)
    SELECT id, occurrences FROM stored
    """
    stored = _upsert(postgresql.insert(_ALERTS)).cte("stored")
    outcome = case((stored.c.id == bindparam("alerts_id"), _ACCEPTED),
                   else_=literal_column("'duplicate'", String()))
    return select(stored.c.id, stored.c.occurrences).add_cte(_delivery_of(stored, outcome))


def _new_alert_with_delivery() -> CTE:
    """PostgreSQL: insert the alert unless its key is stored, then its accepted delivery.

    WITH stored AS (INSERT INTO alerts … ON CONFLICT (dedup_key) DO NOTHING RETURNING id),
         delivery AS (INSERT INTO deliveries … SELECT … FROM stored RETURNING id)

    A repeat inserts neither (on PostgreSQL a concurrent insert of the same key is waited for
    first): ``delivery`` then yields no row.
    """
    stored = (
        postgresql.insert(_ALERTS).values(_bound(_ALERTS, _ALERTS.c.keys()))
        .on_conflict_do_nothing(index_elements=[_ALERTS.c.dedup_key])
        .returning(_ALERTS.c.id).cte("stored")
    )
    return _delivery_of(stored, _ACCEPTED)


def _delivery_of(stored: CTE, outcome: ColumnElement[str]) -> CTE:
    given = _bound(_DELIVERIES, _DELIVERY_GIVEN)
    return insert(_DELIVERIES).from_select(
        [*given, "outcome", "alert_id", "reason"],
        select(*given.values(), outcome, stored.c.id, literal_column("''")),
    ).returning(_DELIVERIES.c.id).cte("delivery")


# Plain Core on the session's connection: no ORM flush or identity map on the ingest path.
_UPSERT_ALERT_AND_DELIVERY = _upsert_with_delivery()
_NEW_ALERT_AUDITED = audit.joined_to(_new_alert_with_delivery())
_UPSERT_ALERT = _upsert(sqlite.insert(_ALERTS))
_INSERT_DELIVERY = insert(_DELIVERIES).values(_bound(_DELIVERIES, _DELIVERIES.c.keys()))


def _store_alert(
    connection: Connection, row: dict[str, Any], delivery: dict[str, Any]
) -> tuple[str, int]:
    """Insert the alert, or count it on the stored alert with its key, and its delivery.

    Returns the alert's id and occurrences: the id is ``row["id"]`` exactly when it is new.
    """
    if connection.dialect.name == "postgresql":
        parameters = {**_parameters(_ALERTS, row), **_parameters(_DELIVERIES, delivery)}
        stored = connection.execute(_UPSERT_ALERT_AND_DELIVERY, parameters).one()
    else:
        stored = connection.execute(_UPSERT_ALERT, _parameters(_ALERTS, row)).one()
        outcome = "accepted" if stored.id == row["id"] else "duplicate"
        _insert_delivery(connection, delivery, outcome, stored.id)
    return stored.id, stored.occurrences


def ingest_delivery(
    *,
    session: Session,
    alerts: Sequence[NormalizedAlert],
    playbooks: Mapping[str, LoadedPlaybook],
    endpoint: str,
    body_sha256: str,
    body_bytes: int,
    actor: str,
    is_production: ProductionCheck | None = None,
    default_mode: str = "live",
) -> list[IngestResult]:
    """Store and commit every alert of one delivery, or raise.

    With each alert go its delivery row, its audit event and the runs it queues. ``session``
    must have no transaction open. Returning means every alert is committed.

    On PostgreSQL the commonest delivery, one new alert that no playbook's trigger matches, is
    stored by a single statement that commits by itself: the alert, its delivery row and its
    audit event (``engine.audit.record`` chains it in that statement). The audit chain's lock
    is then held only inside the database, never across a round trip. Anything else (a repeat,
    several alerts, a trigger that matches, SQLite) takes a transaction per
    ``ALERTS_PER_TRANSACTION`` alerts, ``ingest_alert`` for each: each keeps its own delivery
    row (same body digest), and a repeat inside the same body counts on the alert stored just
    before it.

    The audit chain's tail is locked from a transaction's first event to its COMMIT, and every
    other write in the system waits for it: no delivery, however large, holds it for more than
    one batch. A delivery of up to ``ALERTS_PER_TRANSACTION`` alerts is all or nothing; a
    larger one may fail after some batches committed. The error reaches the caller, who answers
    5xx, and the sender delivers the same body again: what was committed is then found by its
    key and counted as a repeat, never stored or run twice. An alert with no key of its own is
    keyed by the body's digest and its place in it (``delivery:<sha256>:<index>``) so that it
    too is found again.
    """
    if len(alerts) == 1 and _alone_suffices(session, alerts[0], playbooks, is_production):
        result = _ingest_new_alert_alone(session=session, alert=alerts[0], endpoint=endpoint,
                                         body_sha256=body_sha256, body_bytes=body_bytes,
                                         actor=actor)
        if result is not None:
            return [result]
    if len(alerts) > ALERTS_PER_TRANSACTION:
        alerts = [_keyed_by_place(alert, body_sha256, index) for index, alert in enumerate(alerts)]
    results: list[IngestResult] = []
    for start in range(0, len(alerts), ALERTS_PER_TRANSACTION):
        try:
            with session.begin():
                batch = [
                    ingest_alert(session=session, alert=alert, playbooks=playbooks,
                                 endpoint=endpoint, body_sha256=body_sha256,
                                 body_bytes=body_bytes, actor=actor,
                                 is_production=is_production, default_mode=default_mode)
                    for alert in alerts[start:start + ALERTS_PER_TRANSACTION]
                ]
        except Exception:
            if start:
                log.warning("delivery to %s from %s interrupted after %d of its %d alerts were "
                            "committed; its sender should deliver it again", endpoint, actor,
                            start, len(alerts))
            raise
        results += batch
    return results


def _keyed_by_place(alert: NormalizedAlert, body_sha256: str, index: int) -> NormalizedAlert:
    if alert.dedup_key is not None:
        return alert
    return alert.model_copy(update={"dedup_key": f"delivery:{body_sha256}:{index}"})


def _alone_suffices(
    session: Session,
    alert: NormalizedAlert,
    playbooks: Mapping[str, LoadedPlaybook],
    is_production: ProductionCheck | None,
) -> bool:
    """Tell whether a new ``alert`` would write nothing but itself, its delivery and its event.

    Only for a session on a PostgreSQL engine: one bound to a connection (a caller's outer
    transaction) keeps every write in that transaction.
    """
    bind = session.get_bind()
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return False
    if updated_by_riposte(alert):
        return False
    return not any(
        matching_trigger(playbook.spec.triggers, alert, is_production=is_production)
        for playbook in playbooks.values()
    )


def _ingest_new_alert_alone(
    *,
    session: Session,
    alert: NormalizedAlert,
    endpoint: str,
    body_sha256: str,
    body_bytes: int,
    actor: str,
) -> IngestResult | None:
    """Store a new alert, its delivery and its audit event in one self-committing statement.

    Returns None, having written nothing, when the alert's key is stored already.
    """
    received = utcnow()
    row = _alert_row(alert, received)
    delivery = _delivery_row(endpoint, alert.source, body_sha256, body_bytes, received)
    # A connection of the session's engine, not the session: there is no transaction to keep.
    engine = session.get_bind()
    assert isinstance(engine, Engine)  # _alone_suffices
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        event_id = audit.record(
            connection, actor=actor, verb="alert.received", alert_id=row["id"],
            details={"source": alert.source, "kind": alert.kind, "title": alert.title},
            joined=(_NEW_ALERT_AUDITED,
                    {**_parameters(_ALERTS, row), **_parameters(_DELIVERIES, delivery)}),
        )
    return None if event_id is None else IngestResult(alert_id=row["id"])


def record_delivery(
    *, session: Session, endpoint: str, source: str, outcome: str, reason: str,
    body_sha256: str, body_bytes: int,
) -> None:
    """Keep a trace of a delivery that made no alert (an SNS subscription message)."""
    delivery = _delivery_row(endpoint, source, body_sha256, body_bytes, utcnow())
    _insert_delivery(session.connection(), delivery, outcome, None, reason)


def record_rejected_delivery(
    *, session: Session, endpoint: str, source: str, reason: str, body_sha256: str,
    body_bytes: int,
) -> None:
    """Keep a trace of a delivery that was refused, and why."""
    delivery = _delivery_row(endpoint, source, body_sha256, body_bytes, utcnow())
    _insert_delivery(session.connection(), delivery, "rejected", None, reason)


def _insert_delivery(
    connection: Connection, delivery: dict[str, Any], outcome: str, alert_id: str | None,
    reason: str = "",
) -> None:
    row = {**delivery, "outcome": outcome, "alert_id": alert_id, "reason": reason[:1024]}
    connection.execute(_INSERT_DELIVERY, _parameters(_DELIVERIES, row))
