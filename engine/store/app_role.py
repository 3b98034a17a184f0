"""The application's PostgreSQL role: what the API and the workers may do to the tables.

Two roles: the owner runs the migrations (``riposte db upgrade``) and owns every table and
trigger; the application role, which the API and the workers connect as, gets only what they
need. On the audit tables that is:

- ``audit_events``: SELECT, INSERT. Not UPDATE, DELETE or TRUNCATE; and not being the owner it
  cannot ``ALTER TABLE … DISABLE TRIGGER`` or drop the append-only triggers either.
- ``audit_chain``: SELECT, UPDATE. Every append moves the tail row in the same statement
  (``engine.audit.record``), so the role must UPDATE it; the row's triggers refuse any update
  that is not one append (``prev_hash`` becomes the old hash, ``event_count`` grows by one)
  and refuse DELETE and TRUNCATE, so the role cannot set the tail back or remove it.

Every other table of Riposte's gets SELECT, INSERT, UPDATE, DELETE (runs move, threshold events
are pruned), ``alembic_version`` SELECT, and the sequences USAGE and SELECT. The owner runs the
grants again after each upgrade: a table a new migration adds is refused to the application
until then ("permission denied for table …").
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text

from engine.store.models import Base

# Privileges on the tables whose rows the application must never change or remove.
GUARDED = {
    "audit_events": "SELECT, INSERT",
    "audit_chain": "SELECT, UPDATE",
    "alembic_version": "SELECT",
}
READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"


class AppRoleRefused(ValueError):
    """A role that cannot be the application's role; the message says what to do."""


def grant_statements(
    role: str, *, schema: str, tables: list[str], quote: Callable[[str], str]
) -> list[str]:
    """Return the SQL that gives ``role`` the application's privileges, and only those."""
    who, where = quote(role), quote(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {where} TO {who}",
        # Whatever was granted before (by hand, or ALL by mistake) goes first.
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {where} FROM {who}",
    ]
    for table in sorted(tables):
        privileges = GUARDED.get(table, READ_WRITE)
        statements.append(f"GRANT {privileges} ON TABLE {where}.{quote(table)} TO {who}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}")
    return statements


class Quote:
    """Quote an identifier for the connection's dialect (a callable)."""

    def __init__(self, connection: Connection) -> None:
        self._preparer = connection.dialect.identifier_preparer

    def __call__(self, name: str) -> str:
        return str(self._preparer.quote_identifier(name))


def app_role_grants(connection: Connection, role: str) -> list[str]:
    """Check ``role`` can be the application's role; return the grants it needs here."""
    if connection.dialect.name != "postgresql":
        raise AppRoleRefused(f"database roles are PostgreSQL's; {connection.dialect.name} has "
                             "none (SQLite: protect the file, and sign audit checkpoints)")
    found = connection.execute(
        text("SELECT rolsuper, pg_has_role(:role, t.tableowner, 'MEMBER') AS owns "
             "FROM pg_roles r, pg_tables t WHERE r.rolname = :role "
             "AND t.schemaname = current_schema() AND t.tablename = 'audit_events'"),
        {"role": role},
    ).one_or_none()
    if found is None:
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"),
                                    {"role": role}).scalar()
        if not exists:
            raise AppRoleRefused(f"no role named {role!r}: create it first, e.g. CREATE ROLE "
                                 f"{Quote(connection)(role)} LOGIN PASSWORD '…'")
        raise AppRoleRefused("no audit_events table here: run `riposte db upgrade` first")
    if found.rolsuper:
        raise AppRoleRefused(f"role {role!r} is a superuser: it could change the audit log "
                             "whatever the grants; use a role made with CREATE ROLE … LOGIN")
    if found.owns:
        raise AppRoleRefused(f"role {role!r} owns the tables, or has the rights of their owner: "
                             "it could disable the audit triggers; the application needs a "
                             "role of its own, apart from the one that runs the migrations")
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    present = set(inspect(connection).get_table_names(schema=schema))
    ours = (set(Base.metadata.tables) | {"alembic_version"}) & present
    return grant_statements(role, schema=schema, tables=sorted(ours), quote=Quote(connection))


def grant_app_role(connection: Connection, role: str) -> list[str]:
    """Give ``role`` exactly the application's privileges (run as the owner); return the SQL."""
    statements = app_role_grants(connection, role)
    for statement in statements:
        connection.exec_driver_sql(statement)
    return statements
