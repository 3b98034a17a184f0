"""The audit chain's tail counts its events and, on PostgreSQL, only moves forward.

- ``audit_chain.event_count``: how many events the chain holds, seeded from ``audit_events``.
  ``engine.audit.record`` adds one with each append, in the statement that moves the tail;
  ``engine.audit.verify`` checks the rows against it, so rows deleted at the end of the log
  show (the tail's hash alone would not show every row deleted with the tail set back too).
- PostgreSQL: a trigger refuses any UPDATE of the row that is not one append — ``prev_hash``
  becomes the old ``hash`` and ``event_count`` grows by one — so the application's role, which
  must UPDATE the row to append, cannot set the tail back (``riposte db grant-app-role``).

Revision ID: 0008
Revises: 0007
Create Date: 2025-01-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHAIN_MOVES_ON_FUNCTION = """
CREATE FUNCTION riposte_audit_chain_moves_on() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = OLD.id AND NEW.prev_hash = OLD.hash
            AND NEW.event_count = OLD.event_count + 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_chain only moves forward, one event at a time'
        USING DETAIL = format(
            'UPDATE on audit_chain refused by trigger %s: event_count %s -> %s (must be %s), '
            'prev_hash must become the old hash', TG_NAME, OLD.event_count, NEW.event_count,
            OLD.event_count + 1),
              HINT = 'the row is only ever updated by engine.audit.record, with an event';
END;
$$
"""
CHAIN_MOVES_ON_TRIGGER = (
    "CREATE TRIGGER audit_chain_moves_on BEFORE UPDATE ON audit_chain "
    "FOR EACH ROW EXECUTE FUNCTION riposte_audit_chain_moves_on()"
)


def upgrade() -> None:
    # On PostgreSQL ADD COLUMN locks audit_chain until the commit: no append can slip in
    # between counting the events and storing the count.
    op.add_column("audit_chain", sa.Column("event_count", sa.BigInteger(), nullable=False,
                                           server_default="0"))
    op.execute("UPDATE audit_chain SET event_count = (SELECT count(*) FROM audit_events)")
    with op.batch_alter_table("audit_chain") as batch:
        batch.alter_column("event_count", server_default=None)
    if op.get_context().dialect.name == "postgresql":
        op.execute(CHAIN_MOVES_ON_FUNCTION)
        op.execute(CHAIN_MOVES_ON_TRIGGER)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_chain_moves_on ON audit_chain")
        op.execute("DROP FUNCTION IF EXISTS riposte_audit_chain_moves_on()")
    with op.batch_alter_table("audit_chain") as batch:
        batch.drop_column("event_count")
