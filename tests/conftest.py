"""Fixtures every test shares: fresh migrated databases on SQLite and PostgreSQL.

- ``db_url``: a fresh database migrated to head, once per backend ("sqlite", "postgres").
- ``sqlite_url`` / ``pg_url``: the same on one backend only.
- ``empty_db_url``: a fresh database with no schema at all (for the migration tests).
- ``engine`` / ``sessionmaker``: built on ``db_url`` with engine.store.db.

PostgreSQL tests run only when RIPOSTE_TEST_POSTGRES_URL names a database the suite may use to
create others; without it they are deselected, never skipped. With RIPOSTE_REQUIRE_POSTGRES=1 a
session in which no PostgreSQL test passed fails.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker
from sqlalchemy.pool import NullPool

from core.logs import JsonFormatter, SecretsFilter
from core.settings import get_settings
from engine.store import migrate
from engine.store.db import make_engine, make_sessionmaker

pytest_plugins = ["tests.aws_sandbox"]

POSTGRES_URL_ENV = "RIPOSTE_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "RIPOSTE_REQUIRE_POSTGRES"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


# ---------------------------------------------------------------------------------------------
# Collection and reporting hooks


# Files whose tests take ``db_url`` but whose subject is not the database (HTTP shapes, the
# engine's rules, whole scenarios): each runs on one backend, to keep the suite within CI's
# time. What differs between the databases (locks and races, types and refused text, migrations,
# the audit triggers and roles, outages) is tested on both, in the other files; the whole
# scenario runs on PostgreSQL here and on SQLite in the demo's test.
ONE_BACKEND = {
    "test_seed_scenario.py": "postgres",
    "test_approval_covers.py": "sqlite",
    "test_approval_plans.py": "sqlite",
    "test_webhooks_sns.py": "sqlite",
    "test_webhooks_eventbridge.py": "sqlite",
    "test_alerts.py": "sqlite",
    "test_runs_outcome.py": "sqlite",
    "test_tokens_api.py": "sqlite",
    "test_burst_pace.py": "postgres",
    **dict.fromkeys((
        "test_approvals.py", "test_approval_identities.py", "test_runs.py", "test_auth.py",
        "test_correlation.py", "test_large_deliveries.py", "test_threshold.py",
        "test_rehearsals.py", "test_errors.py", "test_webhooks_fuzz.py", "test_playbooks.py",
        "test_observability.py", "test_health.py", "test_deploy_guide.py", "test_security.py",
        "test_runs_investigation.py", "test_console_pages.py", "test_console_approvals.py",
    ), "sqlite"),
}


def _other_backend(item: pytest.Item) -> bool:
    kept = ONE_BACKEND.get(item.path.name)
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("db_url") if callspec is not None else None
    return kept is not None and backend is not None and backend != kept


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every PostgreSQL test; deselect them all when no PostgreSQL server is configured.

    Files in ``ONE_BACKEND`` keep the variants of their one backend.
    """
    other = [item for item in items if _other_backend(item)]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if not _other_backend(item)]
    for item in items:
        if "_postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
    if os.environ.get(POSTGRES_URL_ENV):
        return
    kept = [item for item in items if item.get_closest_marker("postgres") is None]
    deselected = [item for item in items if item.get_closest_marker("postgres") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


class RequirePostgres:
    """With RIPOSTE_REQUIRE_POSTGRES=1, fail a session in which no PostgreSQL test passed."""

    def __init__(self) -> None:
        self.passed = 0
        self.failure = ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.passed and "postgres" in report.keywords:
            self.passed += 1

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if os.environ.get(REQUIRE_POSTGRES_ENV) != "1" or self.passed:
            return
        why = (
            f"{POSTGRES_URL_ENV} is not set, so every PostgreSQL test was deselected"
            if not os.environ.get(POSTGRES_URL_ENV)
            else "no test marked 'postgres' ran and passed"
        )
        self.failure = (
            f"{REQUIRE_POSTGRES_ENV}=1 but not a single PostgreSQL test passed: {why}; "
            f"set {POSTGRES_URL_ENV}=postgresql+psycopg://USER@HOST:PORT/DB (or use .ci/run)"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.failure:
            terminalreporter.write_sep("=", "PostgreSQL required", red=True, bold=True)
            terminalreporter.write_line(self.failure, red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RequirePostgres(), "riposte-require-postgres")


# ---------------------------------------------------------------------------------------------
# Settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Re-read RIPOSTE_* settings in every test, so monkeypatched variables take effect."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# ---------------------------------------------------------------------------------------------
# SQLite


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file per session; tests get copies of it (a copy is a fresh database)."""
    path = tmp_path_factory.mktemp("riposte-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    # The last connection closed checkpoints the WAL; a leftover -wal file would not be copied.
    assert not path.with_name(path.name + "-wal").exists(), "template WAL was not checkpointed"
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """Return the URL of a fresh SQLite file migrated to head."""
    path = tmp_path / "riposte.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresServer:
    """Creates and drops throwaway databases next to the one RIPOSTE_TEST_POSTGRES_URL names.

    Their names start with that database's name, so CI can drop whatever a killed run left.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = make_url(base_url)
        prefix = (self.base_url.database or "riposte")[:40]
        self.template = f"{prefix}_tpl_{os.getpid()}"
        self._prefix = f"{prefix}_t_{os.getpid()}"
        self._numbers = itertools.count(1)
        self._admin = create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def url(self, database: str) -> str:
        return self.base_url.set(database=database).render_as_string(hide_password=False)

    def create(self, *, template: str, name: str | None = None) -> str:
        """Create a database copied from ``template`` and return its name."""
        name = name or f"{self._prefix}_{next(self._numbers)}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self._admin.dispose()

    def _execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(statement))


@pytest.fixture(scope="session")
def _postgres() -> Iterator[PostgresServer]:
    """Migrate one template database per session; each test gets a copy (CREATE … TEMPLATE)."""
    base_url = os.environ.get(POSTGRES_URL_ENV)
    if not base_url:
        # Unreachable in a normal run: postgres tests are deselected without the variable.
        raise RuntimeError(f"{POSTGRES_URL_ENV} is not set; this test needs PostgreSQL")
    server = PostgresServer(base_url)
    server.drop(server.template)
    try:
        server.create(template="template0", name=server.template)
        migrate.upgrade(server.url(server.template))
        yield server
    finally:
        server.drop(server.template)
        server.close()


@pytest.fixture
def pg_url(_postgres: PostgresServer) -> Iterator[str]:
    """Return the URL of a fresh PostgreSQL database migrated to head (dropped afterwards)."""
    name = _postgres.create(template=_postgres.template)
    try:
        yield _postgres.url(name)
    finally:
        _postgres.drop(name)


@pytest.fixture
def _empty_pg_url(_postgres: PostgresServer) -> Iterator[str]:
    name = _postgres.create(template="template0")
    try:
        yield _postgres.url(name)
    finally:
        _postgres.drop(name)


# ---------------------------------------------------------------------------------------------
# Both backends


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """Return the URL of a fresh database migrated to head, once on SQLite, once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a fresh database with no tables at all, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("_empty_pg_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Return an engine on ``db_url``, disposed after the test."""
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessionmaker(engine: Engine) -> SessionMaker[Session]:
    """Return the application's session factory bound to ``engine``."""
    return make_sessionmaker(engine)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Capture the root logger's lines as production writes them (JSON, secrets redacted);
    read them with ``tests.json_log.lines``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretsFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
