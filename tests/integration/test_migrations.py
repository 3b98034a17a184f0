"""The migrations and the models describe the same schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.store import migrate
from engine.store.db import make_engine
from engine.store.models import Alert, AuditEvent, Base, Run, StepRecord
from engine.store.types import JSONType, UTCDateTime


def schema_differences(engine: Engine) -> list[Any]:
    """Return what autogenerate would change to bring the database to the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "target_metadata": Base.metadata,
            },
        )
        differences: list[Any] = list(compare_metadata(context, Base.metadata))
    # Autogenerate ignores index predicates: check that every partial index is still partial.
    where = f"{engine.dialect.name}_where"
    for table in Base.metadata.sorted_tables:
        reflected = {ix["name"]: ix for ix in inspect(engine).get_indexes(table.name)}
        for index in table.indexes:
            if index.dialect_options[engine.dialect.name]["where"] is None:
                continue
            found = reflected.get(index.name)
            if found is None or found.get("dialect_options", {}).get(where) is None:
                differences.append(("partial index lost its WHERE", table.name, index.name))
    return differences


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def audit_trigger_objects(engine: Engine) -> set[str]:
    """Return the names of the append-only function and triggers present on PostgreSQL."""
    with engine.connect() as connection:
        functions = connection.execute(
            text("SELECT proname FROM pg_proc WHERE proname = 'riposte_audit_append_only'")
        ).scalars()
        triggers = connection.execute(
            text(
                "SELECT tgname FROM pg_trigger "
                "WHERE NOT tgisinternal AND tgname LIKE 'audit_events%'"
            )
        ).scalars()
        return {*functions, *triggers}


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


def test_migrations_have_a_single_head() -> None:
    config = migrate.alembic_config("sqlite://")
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_upgrade_head_builds_exactly_the_models_schema(
    empty_db_url: str, empty_engine: Engine
) -> None:
    migrate.upgrade(empty_db_url)

    assert schema_differences(empty_engine) == []
    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert migrate.current(empty_db_url) == head
    assert table_names(empty_engine) == set(Base.metadata.tables) | {"alembic_version"}


def test_downgrade_base_removes_everything_and_upgrade_works_again(
    empty_db_url: str, empty_engine: Engine
) -> None:
    migrate.upgrade(empty_db_url)
    migrate.downgrade(empty_db_url)

    assert table_names(empty_engine) == {"alembic_version"}
    assert migrate.current(empty_db_url) is None
    if empty_engine.dialect.name == "postgresql":
        assert audit_trigger_objects(empty_engine) == set()

    migrate.upgrade(empty_db_url)

    assert schema_differences(empty_engine) == []
    if empty_engine.dialect.name == "postgresql":
        assert audit_trigger_objects(empty_engine) == {
            "riposte_audit_append_only",
            "audit_events_no_update_delete",
            "audit_events_no_truncate",
        }


def test_a_step_can_succeed_only_once_per_run(db_url: str) -> None:
    engine = make_engine(db_url)
    now = datetime.now(UTC)

    def step(status: str) -> StepRecord:
        return StepRecord(
            run_id=run.id,
            step_id="disable",
            action="aws.iam.disable_user",
            status=status,
            worker="w1",
            started_at=now,
        )

    try:
        with Session(engine) as session:
            alert = Alert(source="test", kind="k", title="t", severity=1, severity_label="low")
            session.add(alert)
            session.flush()
            run = Run(
                alert_id=alert.id,
                playbook="p",
                playbook_hash="h",
                playbook_text="",
                mode="live",
                status="running",
                state={},
                started_by="system",
            )
            session.add(run)
            session.flush()
            # Failed attempts may repeat; the partial index only covers successes.
            session.add_all([step("failed"), step("failed"), step("succeeded")])
            session.commit()

            session.add(step("succeeded"))
            with pytest.raises(IntegrityError, match="(?i)unique"):
                session.commit()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
    ids=["update", "delete", "truncate"],
)
def test_postgres_refuses_changes_to_the_audit_log(pg_url: str, statement: str) -> None:
    engine = make_engine(pg_url)
    try:
        with Session(engine) as session:
            audit.record(session, actor="system", verb="test.recorded", details={"n": 1})
            session.commit()

        with pytest.raises(DBAPIError, match="audit_events is append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))

        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1
            assert session.scalar(select(AuditEvent.actor)) == "system"
            assert audit.verify(session).ok
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# 0002: the alert artifacts leave details for columns; every run gets its alerts


_ALERTS_0001 = sa.table(
    "alerts", *map(sa.column, ["id", "source", "kind", "type", "title", "severity",
                               "severity_label", "occurrences"]),
    sa.column("resources", JSONType), sa.column("details", JSONType),
    sa.column("first_seen", UTCDateTime), sa.column("last_seen", UTCDateTime),
)
_RUNS_0001 = sa.table(
    "runs", *map(sa.column, ["id", "alert_id", "playbook", "playbook_hash", "playbook_text",
                             "mode", "status", "started_by"]),
    sa.column("state", JSONType), sa.column("created_at", UTCDateTime),
    sa.column("queued_at", UTCDateTime), sa.column("updated_at", UTCDateTime),
)
SEED_DETAILS = {
    "event_time": "2020-11-06T03:21:39Z",
    "event_name": "TerminateInstances",
    "source_ip": "180.163.251.231",
    "user_agent": "console.ec2.amazonaws.com",
    "mfa_used": False,
    "user_name": "Roboman1",
    "instance_ids": ["i-2oc7w12"],
    "raw": {"eventName": " TerminateInstances"},
}


def test_0002_moves_the_alert_artifacts_to_columns_and_back_on_downgrade(
    empty_db_url: str, empty_engine: Engine
) -> None:
    migrate.upgrade(empty_db_url, "0001")
    now = datetime.now(UTC)
    odd = {"event_time": "yesterday", "event_name": None, "raw": "x"}
    with empty_engine.begin() as connection:
        for alert_id, details in [("a-seed", SEED_DETAILS), ("a-odd", odd), ("a-none", None)]:
            connection.execute(_ALERTS_0001.insert().values(
                id=alert_id, source="cloudtrail", kind="api-call", type="", title="t",
                severity=0, severity_label="INFORMATIONAL", resources=[], details=details,
                occurrences=1, first_seen=now, last_seen=now,
            ))
        connection.execute(_RUNS_0001.insert().values(
            id="r-1", alert_id="a-seed", playbook="p", playbook_hash="h", playbook_text="",
            mode="live", status="succeeded", state={}, started_by="system", created_at=now,
            queued_at=now, updated_at=now,
        ))

    migrate.upgrade(empty_db_url, "0002")

    with Session(empty_engine) as session:
        seed, odd_row, bare = (session.get(Alert, i) for i in ("a-seed", "a-odd", "a-none"))
        assert seed is not None and odd_row is not None and bare is not None
        assert seed.event_time == datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
        assert (seed.event_name, seed.source_ip, seed.user_agent, seed.mfa_used) == (
            "TerminateInstances", "180.163.251.231", "console.ec2.amazonaws.com", False,
        )
        assert seed.details == {
            "user_name": "Roboman1", "instance_ids": ["i-2oc7w12"],
            "raw": {"eventName": " TerminateInstances"},
        }
        # Text that is no time stays where it was; a null has nothing to move.
        assert (odd_row.event_time, odd_row.details) == (None, {"event_time": "yesterday",
                                                                "raw": "x"})
        assert (bare.event_time, bare.details) == (None, None)
        links = session.execute(text("SELECT run_id, alert_id FROM run_alerts")).all()
        assert [tuple(link) for link in links] == [("r-1", "a-seed")]

    migrate.downgrade(empty_db_url, "0001")

    with empty_engine.connect() as connection:
        restored = dict(connection.execute(select(_ALERTS_0001.c.id, _ALERTS_0001.c.details)).all())
    assert restored == {"a-seed": SEED_DETAILS, "a-odd": {"event_time": "yesterday", "raw": "x"},
                        "a-none": None}
    assert "run_alerts" not in table_names(empty_engine)


# ---------------------------------------------------------------------------------------------
# 0004: the audit chain's tail moves to a one-row table


_EVENTS_0003 = sa.table(
    "audit_events", *map(sa.column, ["actor", "verb", "alert_id", "run_id", "step_id",
                                     "prev_hash", "hash"]),
    sa.column("at", UTCDateTime), sa.column("details", JSONType),
)


def _append_as_0003_did(connection: sa.Connection, prev_hash: str, verb: str) -> str:
    """Append an event the way engine.audit.record did before 0004; return its hash."""
    event = AuditEvent(at=datetime.now(UTC), actor="old", verb=verb, alert_id=None, run_id=None,
                       step_id=None, details={"n": verb}, prev_hash=prev_hash)
    event.hash = audit.row_hash(event)
    connection.execute(_EVENTS_0003.insert().values(
        at=event.at, actor=event.actor, verb=event.verb, details=event.details,
        prev_hash=event.prev_hash, hash=event.hash,
    ))
    return event.hash


def test_0004_continues_the_chain_where_the_log_ends_and_downgrades(
    empty_db_url: str, empty_engine: Engine
) -> None:
    migrate.upgrade(empty_db_url, "0003")
    with empty_engine.begin() as connection:
        first = _append_as_0003_did(connection, audit.GENESIS, "old.first")
        newest = _append_as_0003_did(connection, first, "old.second")

    migrate.upgrade(empty_db_url, "0004")

    assert _tail_at_0004(empty_engine) == (first, newest)
    migrate.upgrade(empty_db_url)  # engine.audit.record writes the head's audit_chain
    with Session(empty_engine) as session:
        audit.record(session, actor="new", verb="new.first")
        session.commit()
        events = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        assert [e.verb for e in events] == ["old.first", "old.second", "new.first"]
        assert events[-1].prev_hash == newest
        assert audit.verify(session).ok

    migrate.downgrade(empty_db_url, "0003")

    assert "audit_chain" not in table_names(empty_engine)
    if empty_engine.dialect.name == "postgresql":
        with empty_engine.connect() as connection:
            leftovers = connection.execute(text(
                "SELECT proname FROM pg_proc WHERE proname = 'riposte_audit_chain_kept'"
            )).scalars().all()
        assert leftovers == []


def test_0004_starts_an_empty_log_at_the_genesis_hash(
    empty_db_url: str, empty_engine: Engine
) -> None:
    migrate.upgrade(empty_db_url, "0004")
    assert _tail_at_0004(empty_engine) == (audit.GENESIS, audit.GENESIS)


def _tail_at_0004(engine: Engine) -> tuple[str, str]:
    """Return audit_chain's (prev_hash, hash) as revision 0004 left them (no later column)."""
    with engine.connect() as connection:
        prev_hash, tail = connection.execute(
            text("SELECT prev_hash, hash FROM audit_chain WHERE id = 1")
        ).one()
    return prev_hash, tail
