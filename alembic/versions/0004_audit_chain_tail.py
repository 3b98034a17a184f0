"""The audit chain's tail in a one-row table, so an append is one statement on PostgreSQL.

- ``audit_chain``: the hash of the newest audit event (and the one before it), in row 1,
  seeded from the newest row of ``audit_events`` (or the genesis hash of an empty log).
  ``engine.audit.record`` locks and updates it with each append instead of taking an advisory
  lock and reading the newest event. On PostgreSQL a trigger refuses to delete the row.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# engine.audit.GENESIS, spelled out so this revision never changes with it.
GENESIS = "0" * 64

# Without its row the chain cannot grow: PostgreSQL refuses to delete it.
CHAIN_KEPT_FUNCTION = """
CREATE FUNCTION riposte_audit_chain_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_chain keeps its row'
        USING DETAIL = format('%s on audit_chain refused by trigger %s', TG_OP, TG_NAME),
              HINT = 'the row is only ever updated, through engine.audit.record';
END;
$$
"""
CHAIN_TRIGGERS = {
    "audit_chain_no_delete": (
        "CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain "
        "FOR EACH ROW EXECUTE FUNCTION riposte_audit_chain_kept()"
    ),
    "audit_chain_no_truncate": (
        "CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain "
        "FOR EACH STATEMENT EXECUTE FUNCTION riposte_audit_chain_kept()"
    ),
}


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    events = sa.table("audit_events", sa.column("id"), sa.column("prev_hash"),
                      sa.column("hash"))
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        # No append may slip in between reading the tail and seeding the table with it.
        connection.execute(sa.text("LOCK TABLE audit_events IN EXCLUSIVE MODE"))
    newest = connection.execute(
        sa.select(events.c.prev_hash, events.c.hash).order_by(events.c.id.desc()).limit(1)
    ).first()
    prev_hash, tail = (newest.prev_hash, newest.hash) if newest is not None else (GENESIS,
                                                                                  GENESIS)
    chain = sa.table("audit_chain", sa.column("id"), sa.column("prev_hash"), sa.column("hash"))
    connection.execute(chain.insert().values(id=1, prev_hash=prev_hash, hash=tail))
    if connection.dialect.name == "postgresql":
        op.execute(CHAIN_KEPT_FUNCTION)
        for create_trigger in CHAIN_TRIGGERS.values():
            op.execute(create_trigger)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name in CHAIN_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON audit_chain")
        op.execute("DROP FUNCTION IF EXISTS riposte_audit_chain_kept()")
    op.drop_table("audit_chain")
