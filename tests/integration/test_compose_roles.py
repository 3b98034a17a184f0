"""docker-compose.yml runs Riposte as two database roles: the owner migrates, the app appends.

The API and the workers connect as ``riposte_app``; ``migrate`` and ``grant-app-role`` as the
owner, in that order, before either starts. The postgres image makes the app role on a new
volume with deploy/postgres/initdb, run here against a real server as the image runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from engine import audit
from engine.store.app_role import grant_app_role
from engine.store.db import make_engine, make_sessionmaker
from tests.integration.test_compose import compose_config

REPO_ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = REPO_ROOT / "deploy" / "postgres" / "initdb" / "10-riposte-app-role.sh"


def test_the_api_and_workers_connect_as_the_app_role_after_the_owner_granted_it() -> None:
    services = compose_config()["services"]
    postgres = services["postgres"]["environment"]

    def user(service: str) -> str:
        url = make_url(services[service]["environment"]["RIPOSTE_DATABASE_URL"])
        assert url.username is not None
        return url.username

    app_role = postgres["RIPOSTE_APP_ROLE"]
    assert app_role != postgres["POSTGRES_USER"]
    assert user("api") == user("worker") == app_role
    assert user("migrate") == user("grant-app-role") == postgres["POSTGRES_USER"]
    assert services["grant-app-role"]["command"] == ["db", "grant-app-role", app_role]
    assert services["grant-app-role"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"}
    for service in ("api", "worker"):
        assert services[service]["depends_on"]["grant-app-role"] == {
            "condition": "service_completed_successfully"}, service
    mounts = [str(volume) for volume in services["postgres"]["volumes"]]
    assert any(str(INIT_SCRIPT.parent) in m and "/docker-entrypoint-initdb.d" in m
               for m in mounts), mounts


@pytest.fixture
def app_role_name(pg_url: str) -> Iterator[str]:
    role = f"riposte_app_{uuid.uuid4().hex[:12]}"
    yield role
    engine = make_engine(pg_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
            connection.exec_driver_sql(f'DROP ROLE "{role}"')
    finally:
        engine.dispose()


def test_the_init_script_makes_a_login_role_the_grants_then_fit(
    pg_url: str, app_role_name: str
) -> None:
    psql = shutil.which("psql")
    assert psql is not None, "psql is needed to run deploy/postgres/initdb as the image does"
    url = make_url(pg_url)
    env = {**os.environ, "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432),
           "POSTGRES_USER": url.username or "postgres", "POSTGRES_DB": url.database or "",
           "RIPOSTE_APP_ROLE": app_role_name, "RIPOSTE_APP_PASSWORD": "it's a secret"}
    if url.password:
        env["PGPASSWORD"] = url.password
    made = subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert made.returncode == 0, made.stderr

    owner = make_engine(pg_url)
    try:
        with owner.begin() as connection:
            login, superuser = connection.execute(
                text("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = :role"),
                {"role": app_role_name}).one()
            grant_app_role(connection, app_role_name)
    finally:
        owner.dispose()
    assert (login, superuser) == (True, False)
    as_app = make_engine(url.set(username=app_role_name, password=None)
                         .render_as_string(hide_password=False))
    try:
        sessions = make_sessionmaker(as_app)
        with sessions.begin() as session:
            audit.record(session, actor="system", verb="test.recorded")
        with sessions() as session:
            assert audit.verify(session).ok
    finally:
        as_app.dispose()
