"""`riposte token create` refuses names that would pass for a role or for Riposte itself, and an
expiry of 0 days (which once meant "never"); `riposte validate` refuses approvers that do not say
whether they name a role or a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import ApiToken
from engine.store.tokens import create_token
from tests.integration.test_cli import no_traceback, riposte, write


def token_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return int(session.execute(select(func.count()).select_from(ApiToken)).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", ["admin", "responder", "ingest", "system", "sns", "Admin"])
def test_token_create_refuses_a_reserved_name(sqlite_url: str, name: str) -> None:
    result = riposte("token", "create", "--name", name, "--role", "responder", db=sqlite_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"--name: {name!r} is reserved" in result.stderr
    no_traceback(result)
    assert token_count(sqlite_url) == 0


def test_token_create_refuses_a_name_with_a_colon(sqlite_url: str) -> None:
    result = riposte("token", "create", "--name", "role:admin", "--role", "responder",
                     db=sqlite_url)
    assert result.returncode == 1
    assert "has no ':'" in result.stderr
    assert token_count(sqlite_url) == 0


@pytest.mark.parametrize("days", ["0", "-1", "0.0", "nan", "inf"])
def test_token_create_refuses_an_expiry_that_is_not_a_span_of_days(
    sqlite_url: str, days: str
) -> None:
    result = riposte("token", "create", "--name", "pager", "--role", "responder",
                     "--expires-in-days", days, db=sqlite_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "--expires-in-days must be more than 0" in result.stderr
    assert "leave it out for a token that never expires" in result.stderr
    no_traceback(result)
    assert token_count(sqlite_url) == 0


def test_a_token_without_an_expiry_never_expires(sqlite_url: str) -> None:
    result = riposte("token", "create", "--name", "pager", "--role", "responder", db=sqlite_url)
    assert result.returncode == 0, result.stderr
    listed = riposte("token", "list", db=sqlite_url)
    assert listed.stdout.strip().split("\t")[-1] == "no expiry"


def test_every_way_of_creating_a_token_refuses_a_reserved_name(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with make_sessionmaker(engine).begin() as session, pytest.raises(ValueError) as refused:
            create_token(session=session, name="system", role="admin")
    finally:
        engine.dispose()
    assert "'system' is reserved" in str(refused.value)
    assert token_count(sqlite_url) == 0


def test_validate_refuses_bare_approvers_naming_file_line_step_and_fix(tmp_path: Path) -> None:
    playbook = write(tmp_path / "old.yml", """\
name: old-form
steps:
  - id: contain
    action: core.log
    with: {message: act}
    approval:
      approvers: [responder, admin, lead]
""")
    result = riposte("validate", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{playbook}:7: step 'contain': approval.approvers: ")
    for fix in ("write 'role:responder' for any responder token",
                "write 'role:admin' for any admin token",
                "write 'token:lead' for the token named lead"):
        assert fix in result.stdout
    assert result.stdout.rstrip().endswith("1 problem(s) in 1 file(s)")
