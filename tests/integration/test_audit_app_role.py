"""The application's database role can only append to the audit log (PostgreSQL).

Issue 12, item 3: the application's role owned the tables, so it could ``ALTER TABLE …
DISABLE TRIGGER`` and then rewrite the log. Now the owner runs the migrations and
``riposte db grant-app-role``; the role the API and workers use inserts and reads audit rows,
moves the tail row forward (its trigger allows nothing else), and does all its other work.
Also here: migration 0008, which gives the tail row its event count and that trigger.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, make_url, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine import audit
from engine.store import migrate
from engine.store.alerts import ingest_delivery
from engine.store.app_role import AppRoleRefused, app_role_grants, grant_app_role
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import AuditChain, AuditEvent
from engine.store.tokens import create_token
from engine.store.triggers import prune_threshold_events
from engine.store.types import JSONType, UTCDateTime
from riposte.cli import app
from tests.integration.engine_helpers import make_alert


@pytest.fixture
def owner(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def new_role(owner: Engine) -> Iterator[str]:
    """A fresh login role, dropped afterwards with whatever it was granted."""
    role = f"riposte_app_{uuid.uuid4().hex[:12]}"
    with owner.begin() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        with owner.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
            connection.exec_driver_sql(f'DROP ROLE "{role}"')


@pytest.fixture
def as_app(pg_url: str, owner: Engine, new_role: str) -> Iterator[Engine]:
    """An engine connected as the application's role, granted by the owner."""
    with owner.begin() as connection:
        grant_app_role(connection, new_role)
    url = make_url(pg_url).set(username=new_role, password=None)
    engine = make_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def test_the_app_role_does_the_applications_work_and_the_chain_holds(as_app: Engine) -> None:
    sessions = make_sessionmaker(as_app)
    with sessions() as session:  # one alert alone: alert, delivery and event in one statement
        ingest_delivery(session=session, alerts=[make_alert(dedup_key="k")], playbooks={},
                        endpoint="test", body_sha256="0" * 64, body_bytes=0, actor="sensor")
    with sessions.begin() as session:
        create_token(session=session, name="laptop", role="responder")
        audit.record(session, actor="system", verb="test.recorded")
        prune_threshold_events(session=session, batch=10)  # a DELETE elsewhere is allowed
    with sessions() as session:
        report = audit.verify(session)
        verbs = session.execute(select(AuditEvent.verb).order_by(AuditEvent.id)).scalars().all()
    assert report.ok and report.checked == 3
    assert verbs == ["alert.received", "token.created", "test.recorded"]


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE audit_events SET actor = 'mallory'", "permission denied for table audit_events"),
        ("DELETE FROM audit_events", "permission denied for table audit_events"),
        ("TRUNCATE audit_events", "permission denied for table audit_events"),
        ("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete",
         "must be owner of table audit_events"),
        ("ALTER TABLE audit_events DISABLE TRIGGER ALL", "must be owner of table audit_events"),
        ("DROP TRIGGER audit_events_no_update_delete ON audit_events",
         "must be owner of relation audit_events"),
        ("SET session_replication_role = replica",
         'permission denied to set parameter "session_replication_role"'),
        ("DELETE FROM audit_chain", "permission denied for table audit_chain"),
        ("TRUNCATE audit_chain", "permission denied for table audit_chain"),
        ("UPDATE audit_chain SET hash = prev_hash, event_count = event_count - 1",
         "audit_chain only moves forward"),
        ("UPDATE audit_chain SET hash = repeat('f', 64)", "audit_chain only moves forward"),
        ("ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_moves_on",
         "must be owner of table audit_chain"),
    ],
    ids=["update", "delete", "truncate", "disable-trigger", "disable-all-triggers",
         "drop-trigger", "replica-role", "delete-tail", "truncate-tail", "set-tail-back",
         "set-tail-elsewhere", "disable-tail-trigger"],
)
def test_the_app_role_cannot_change_the_audit_log(
    as_app: Engine, statement: str, refusal: str
) -> None:
    sessions = make_sessionmaker(as_app)
    for n in range(3):
        with sessions.begin() as session:
            audit.record(session, actor="system", verb="test.recorded", details={"n": n})

    with pytest.raises(DBAPIError, match=refusal), as_app.begin() as connection:
        connection.exec_driver_sql(statement)

    with sessions() as session:
        report = audit.verify(session)
        tail = session.get(AuditChain, 1)
    assert (report.ok, report.checked) == (True, 3)
    assert tail is not None and tail.event_count == 3


def test_grant_app_role_refuses_a_role_that_could_change_the_log(
    owner: Engine, new_role: str
) -> None:
    with owner.begin() as connection:
        superuser = connection.execute(text("SELECT current_user")).scalar_one()
        with pytest.raises(AppRoleRefused, match="is a superuser"):
            app_role_grants(connection, superuser)
        with pytest.raises(AppRoleRefused, match='no role named .*CREATE ROLE "nobody_'):
            app_role_grants(connection, f"nobody_{uuid.uuid4().hex[:8]}")
        connection.exec_driver_sql(f'GRANT "{superuser}" TO "{new_role}"')
        with pytest.raises(AppRoleRefused, match="has the rights of their owner"):
            app_role_grants(connection, new_role)
        connection.exec_driver_sql(f'REVOKE "{superuser}" FROM "{new_role}"')


def test_grant_app_role_prints_the_sql_it_runs(
    pg_url: str, new_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIPOSTE_DATABASE_URL", pg_url)

    printed = CliRunner().invoke(app, ["db", "grant-app-role", new_role, "--print"])

    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert f'GRANT SELECT, INSERT ON TABLE "public"."audit_events" TO "{new_role}";' in lines
    assert f'GRANT SELECT, UPDATE ON TABLE "public"."audit_chain" TO "{new_role}";' in lines
    assert f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "public"."runs" TO "{new_role}";' \
        in lines
    granted = CliRunner().invoke(app, ["db", "grant-app-role", new_role])
    assert granted.exit_code == 0, granted.output
    assert "only append to the audit log" in granted.stdout


def test_grant_app_role_on_sqlite_says_there_are_no_roles(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIPOSTE_DATABASE_URL", sqlite_url)

    result = CliRunner().invoke(app, ["db", "grant-app-role", "riposte_app"])

    assert result.exit_code == 1
    assert "database roles are PostgreSQL's; sqlite has none" in result.stderr


# ---------------------------------------------------------------------------------------------
# Migration 0008


_EVENTS_0007 = sa.table(
    "audit_events", *map(sa.column, ["actor", "verb", "prev_hash", "hash"]),
    sa.column("at", UTCDateTime), sa.column("details", JSONType),
)


def test_0008_counts_the_events_already_logged_and_downgrades(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url, "0007")
    engine = make_engine(empty_db_url)
    try:
        prev_hash = audit.GENESIS
        with engine.begin() as connection:  # as engine.audit.record did up to 0007
            for n in range(4):
                event = AuditEvent(at=datetime.now(UTC), actor="old", verb="old.event",
                                   alert_id=None, run_id=None, step_id=None, details={"n": n},
                                   prev_hash=prev_hash)
                event.hash = audit.row_hash(event)
                connection.execute(_EVENTS_0007.insert().values(
                    at=event.at, actor=event.actor, verb=event.verb, details=event.details,
                    prev_hash=prev_hash, hash=event.hash,
                ))
                connection.execute(text("UPDATE audit_chain SET prev_hash = hash, hash = :hash"),
                                   {"hash": event.hash})
                prev_hash = event.hash

        migrate.upgrade(empty_db_url)

        with Session(engine) as session:
            tail = session.get(AuditChain, 1)
            assert tail is not None and tail.event_count == 4
            audit.record(session, actor="new", verb="new.event")
            session.commit()
            assert audit.verify(session).ok
        if engine.dialect.name == "postgresql":  # even the owner cannot set the tail back
            with pytest.raises(DBAPIError, match="audit_chain only moves forward"):
                with engine.begin() as connection:
                    connection.exec_driver_sql(
                        "UPDATE audit_chain SET event_count = event_count - 1")

        migrate.downgrade(empty_db_url, "0007")

        columns = {c["name"] for c in sa.inspect(engine).get_columns("audit_chain")}
        assert columns == {"id", "prev_hash", "hash"}
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                assert connection.execute(text(
                    "SELECT count(*) FROM pg_proc WHERE proname = 'riposte_audit_chain_moves_on'"
                )).scalar() == 0
    finally:
        engine.dispose()
