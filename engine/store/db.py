"""Database engines and sessions for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

RUNS_CHANNEL = "riposte_runs"
# A pooled connection idle this long is pinged before use; a busier one is not (see make_engine).
PING_AFTER_IDLE_SECONDS = 1.0


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings Riposte relies on for each dialect."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    ``pool_pre_ping`` costs a round trip at every checkout, a third of a busy request's. A
    connection back in use within a second has just worked; one idle longer may have been cut
    (a server restart, a failover) and is pinged, and replaced if dead. A connection that dies
    in use fails its statement: the request answers 503 and the pool drops every connection
    as old as it, so the next checkouts connect afresh.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def idle_from_now(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself so every transaction takes the write lock up front
    # (BEGIN IMMEDIATE): SQLite's single-writer path, no upgrade deadlocks.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    """Tell whether the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory used by the API and the worker."""
    return sessionmaker(engine, expire_on_commit=False)
