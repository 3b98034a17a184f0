"""Alert artifacts as columns, the alerts each run sees, and threshold counting.

- ``alerts``: event_time, event_name, source_ip, user_agent, mfa_used (until now in ``details``;
  existing rows have theirs moved, and moved back on downgrade);
- ``runs``: trigger_key, window_start, window_end (runs of correlating and threshold triggers);
- ``run_alerts``: every alert a run sees; each existing run gets its starting alert;
- ``threshold_events``: the units counted towards threshold triggers.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column types of engine/store/types.py, spelled out so this revision never changes with them.
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)

PROMOTED = ("event_time", "event_name", "source_ip", "user_agent", "mfa_used")
BATCH = 500

_alerts = sa.table(
    "alerts",
    sa.column("id", sa.String()),
    sa.column("details", JSON),
    sa.column("event_time", UTC_DATETIME),
    sa.column("event_name", sa.String()),
    sa.column("source_ip", sa.String()),
    sa.column("user_agent", sa.Text()),
    sa.column("mfa_used", sa.Boolean()),
)


def upgrade() -> None:
    op.add_column("alerts", sa.Column("event_time", UTC_DATETIME, nullable=True))
    op.add_column("alerts", sa.Column("event_name", sa.String(length=256), nullable=True))
    op.add_column("alerts", sa.Column("source_ip", sa.String(length=256), nullable=True))
    op.add_column("alerts", sa.Column("user_agent", sa.Text(), nullable=True))
    op.add_column("alerts", sa.Column("mfa_used", sa.Boolean(), nullable=True))
    _move_artifacts_out_of_details()

    op.add_column("runs", sa.Column("trigger_key", sa.String(length=64), nullable=True))
    op.add_column("runs", sa.Column("window_start", UTC_DATETIME, nullable=True))
    op.add_column("runs", sa.Column("window_end", UTC_DATETIME, nullable=True))
    op.create_index("ix_runs_trigger", "runs", ["playbook", "trigger_key"])

    op.create_table(
        "run_alerts",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("joined_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_alerts_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_run_alerts_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("run_id", "alert_id", name=op.f("pk_run_alerts")),
    )
    op.create_index(op.f("ix_run_alerts_alert_id"), "run_alerts", ["alert_id"])
    op.execute(
        "INSERT INTO run_alerts (run_id, alert_id, joined_at) "
        "SELECT id, alert_id, created_at FROM runs"
    )

    op.create_table(
        "threshold_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("playbook", sa.String(length=128), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("event_time", UTC_DATETIME, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_threshold_events_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_threshold_events_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threshold_events")),
    )
    op.create_index(op.f("ix_threshold_events_alert_id"), "threshold_events", ["alert_id"])
    op.create_index(
        "ix_threshold_events_group", "threshold_events", ["playbook", "group_key", "event_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_threshold_events_group", table_name="threshold_events")
    op.drop_index(op.f("ix_threshold_events_alert_id"), table_name="threshold_events")
    op.drop_table("threshold_events")
    op.drop_index(op.f("ix_run_alerts_alert_id"), table_name="run_alerts")
    op.drop_table("run_alerts")
    # Plain DROP COLUMN (SQLite 3.35+), not a batch: SQLite's batch rebuilds the table, and
    # dropping the old one breaks the rows of other tables that refer to it.
    op.drop_index("ix_runs_trigger", table_name="runs")
    for name in ("window_end", "window_start", "trigger_key"):
        op.drop_column("runs", name)

    _move_artifacts_into_details()
    for name in reversed(PROMOTED):
        op.drop_column("alerts", name)


def _move_artifacts_out_of_details() -> None:
    for row in _rows(_alerts.c.details):
        details = row.details
        if not isinstance(details, dict) or not any(k in details for k in PROMOTED):
            continue
        moved: dict[str, Any] = {
            "event_time": _event_time(details.get("event_time")),
            "event_name": _text(details.get("event_name"), 256),
            "source_ip": _text(details.get("source_ip"), 256),
            "user_agent": _text(details.get("user_agent"), None),
            "mfa_used": details.get("mfa_used") if isinstance(details.get("mfa_used"), bool)
            else None,
        }
        # A value that does not fit its column stays where it was.
        kept = {
            k: v
            for k, v in details.items()
            if k not in PROMOTED or (v is not None and moved[k] is None)
        }
        op.get_bind().execute(
            _alerts.update().where(_alerts.c.id == row.id).values(details=kept, **moved)
        )


def _move_artifacts_into_details() -> None:
    columns = [getattr(_alerts.c, name) for name in PROMOTED]
    for row in _rows(_alerts.c.details, *columns):
        values = {name: getattr(row, name) for name in PROMOTED}
        if all(value is None for value in values.values()):
            continue
        if isinstance(values["event_time"], datetime):
            moment = values["event_time"]
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            values["event_time"] = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        details = row.details if isinstance(row.details, dict) else {"value": row.details}
        restored = {**details, **{k: v for k, v in values.items() if v is not None}}
        op.get_bind().execute(
            _alerts.update().where(_alerts.c.id == row.id).values(details=restored)
        )


def _rows(*columns: Any) -> Iterator[Any]:
    """Yield every alert row in id order, a batch at a time (updates in between are safe)."""
    last = ""
    while True:
        query = (
            sa.select(_alerts.c.id, *columns)
            .where(_alerts.c.id > last)
            .order_by(_alerts.c.id)
            .limit(BATCH)
        )
        batch = op.get_bind().execute(query).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def _event_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment if 1970 <= moment.year < 9000 else None


def _text(value: object, limit: int | None) -> str | None:
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        return None
    return value
