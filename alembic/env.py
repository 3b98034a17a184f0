"""Alembic environment: one connection through engine.store.db.make_engine, online mode only."""

from __future__ import annotations

from logging.config import fileConfig

# Spelled this way so isort does not mistake the installed alembic for this alembic/ folder.
import alembic.context as context

from core.settings import get_settings
from engine.store.db import make_engine
from engine.store.models import Base

config = context.config
# Only the alembic command line configures logging; `riposte db upgrade` and the tests keep theirs
# (fileConfig would otherwise replace the application's handlers).
if config.cmd_opts is not None and config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run the migrations in one transaction on the configured database."""
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                # SQLite's DDL is transactional too: a failed upgrade leaves nothing half-done.
                transactional_ddl=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
