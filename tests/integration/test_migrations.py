"""The migrations and the models describe the same schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
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
    assert migrate.current(empty_db_url) == "0001"
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
