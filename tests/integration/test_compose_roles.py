"""docker-compose.yml runs Riposte as two database roles: the owner migrates, the app appends.

The API and the workers connect as ``riposte_app``; ``migrate`` and ``grant-app-role`` as the
owner, in that order, before either starts; each role's password comes from a secret file. The
postgres image makes the app role on a new volume with deploy/postgres/initdb, run here against a
real server as the image runs it, its password read from the file the image is given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
from tests.integration.test_compose import compose_config, mounted_secrets

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
    assert any(m.endswith("/deploy/postgres/initdb:/docker-entrypoint-initdb.d:ro")
               for m in mounts), mounts


def test_each_role_s_password_comes_from_its_own_secret_file() -> None:
    services = compose_config()["services"]
    postgres = services["postgres"]

    # The image reads POSTGRES_PASSWORD_FILE, the init script RIPOSTE_APP_PASSWORD_FILE.
    assert mounted_secrets(postgres) == {"postgres_password": "postgres_password",
                                         "riposte_app_password": "riposte_app_password"}
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert postgres["environment"]["RIPOSTE_APP_PASSWORD_FILE"] == (
        "/run/secrets/riposte_app_password")
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert "RIPOSTE_APP_PASSWORD" not in postgres["environment"]
    # Riposte reads RIPOSTE_DATABASE_PASSWORD from /run/secrets/riposte_database_password.
    for service in ("migrate", "grant-app-role"):
        assert mounted_secrets(services[service])["riposte_database_password"] == (
            "postgres_password"), service
    for service in ("api", "worker"):
        assert mounted_secrets(services[service])["riposte_database_password"] == (
            "riposte_app_password"), service
        assert services[service]["environment"]["RIPOSTE_SECRETS_DIR"] == "/run/secrets"


@pytest.fixture
def app_role_name(pg_url: str) -> Iterator[str]:
    role = f"riposte_app_{uuid.uuid4().hex[:12]}"
    yield role
    engine = make_engine(pg_url)
    try:
        with engine.begin() as connection:
            made = connection.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"),
                                      {"r": role}).scalar()
            if made:  # not when the script refused to make it
                connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
                connection.exec_driver_sql(f'DROP ROLE "{role}"')
    finally:
        engine.dispose()


def scram_verifies(verifier: str, password: str) -> bool:
    """Whether PostgreSQL's SCRAM-SHA-256 verifier was made from ``password`` (RFC 5802)."""
    method, _, rest = verifier.partition("$")
    iterations_salt, _, keys = rest.partition("$")
    iterations, _, salt = iterations_salt.partition(":")
    stored_key = keys.partition(":")[0]
    assert method == "SCRAM-SHA-256", verifier
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_key))


def init_environment(pg_url: str, role: str, **variables: str) -> dict[str, str]:
    url = make_url(pg_url)
    env = {**os.environ, "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432),
           "POSTGRES_USER": url.username or "postgres", "POSTGRES_DB": url.database or "",
           "RIPOSTE_APP_ROLE": role, **variables}
    if url.password:
        env["PGPASSWORD"] = url.password
    return env


def run_init_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    assert psql is not None, "psql is needed to run deploy/postgres/initdb as the image does"
    return subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_init_script_makes_a_login_role_the_grants_then_fit(
    pg_url: str, app_role_name: str, tmp_path: Path
) -> None:
    password_file = tmp_path / "riposte_app_password"
    password_file.write_text("it's a secret\n")  # as `openssl rand … > file` ends it

    made = run_init_script(init_environment(
        pg_url, app_role_name, RIPOSTE_APP_PASSWORD_FILE=str(password_file)))

    assert made.returncode == 0, made.stderr
    owner = make_engine(pg_url)
    try:
        with owner.begin() as connection:
            login, superuser, verifier = connection.execute(
                text("SELECT rolcanlogin, rolsuper, rolpassword FROM pg_authid "
                     "WHERE rolname = :role"), {"role": app_role_name}).one()
            grant_app_role(connection, app_role_name)
    finally:
        owner.dispose()
    assert (login, superuser) == (True, False)
    assert scram_verifies(verifier, "it's a secret")  # the file's, its newline dropped
    url = make_url(pg_url)
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


def test_the_init_script_refuses_two_passwords_or_none(
    pg_url: str, app_role_name: str, tmp_path: Path
) -> None:
    password_file = tmp_path / "riposte_app_password"
    password_file.write_text("from the file")
    empty_file = tmp_path / "empty"
    empty_file.write_text("\n")

    both = run_init_script(init_environment(pg_url, app_role_name, RIPOSTE_APP_PASSWORD="x",
                                            RIPOSTE_APP_PASSWORD_FILE=str(password_file)))
    empty = run_init_script(init_environment(pg_url, app_role_name,
                                             RIPOSTE_APP_PASSWORD_FILE=str(empty_file)))

    assert both.returncode != 0
    assert "both RIPOSTE_APP_PASSWORD and RIPOSTE_APP_PASSWORD_FILE are set" in both.stderr
    assert empty.returncode != 0
    assert "the app role's password is empty" in empty.stderr
    owner = make_engine(pg_url)
    try:
        with owner.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"),
                                      {"r": app_role_name}).scalar() == 0
    finally:
        owner.dispose()
