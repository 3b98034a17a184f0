"""The ``riposte`` command, run as a user runs it: a subprocess with RIPOSTE_* variables."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, select, text
from sqlalchemy.exc import DBAPIError

from engine.playbooks import load_file, playbook_files
from engine.schema import render_schema
from engine.store.alerts import ingest_alert
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import AuditEvent, Run
from engine.store.tokens import authenticate
from tests.integration.engine_helpers import make_alert

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
EXAMPLE = PLAYBOOKS / "example-triage.yml"
# The seed scenario as one generic alert: a user terminating a fleet from an unexpected address.
SAMPLE_ALERT: dict[str, Any] = {
    "title": "20 EC2 instances terminated by Roboman1 in 5 minutes",
    "severity": "HIGH",
    "source": "cloudtrail",
    "kind": "api-call",
    "type": "TerminateInstances",
    "account": "0123456789",
    "region": "us-east-2",
    "principal": {
        "type": "IAMUser",
        "name": "Roboman1",
        "arn": "arn:aws:iam::0123456789:user/Development/Roboman1",
    },
    "resources": [
        {"type": "AwsEc2Instance", "id": "i-2oc7w12"},
        {"type": "AwsEc2Instance", "id": "i-eob7w13"},
    ],
    "details": {"sourceIPAddress": "180.163.251.231", "eventTime": "2020-11-06T03:21:39Z"},
}


def riposte(
    *args: str, db: str | None = None, cwd: Path = ROOT, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``riposte ARGS`` with only the RIPOSTE_* variables given here."""
    return subprocess.run(
        [sys.executable, "-m", "riposte", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(db, **env),
        timeout=120,
        check=False,
    )


def cli_env(db: str | None = None, **env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    if db is not None:
        clean["RIPOSTE_DATABASE_URL"] = db
    return {**clean, "RIPOSTE_PLAYBOOK_DIR": str(PLAYBOOKS), **env}


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


@pytest.fixture
def alert_file(tmp_path: Path) -> Path:
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(SAMPLE_ALERT), encoding="utf-8")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# validate


def test_validate_accepts_the_shipped_playbooks() -> None:
    result = riposte("validate", "playbooks/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"ok: {len(playbook_files([PLAYBOOKS]))} playbooks"


def test_validate_defaults_to_the_playbook_directory_setting(tmp_path: Path) -> None:
    write(tmp_path / "book" / "one.yml", "name: one\nsteps:\n  - {id: a, action: core.log, "
          "with: {message: hi}}\n")
    result = riposte("validate", RIPOSTE_PLAYBOOK_DIR=str(tmp_path / "book"))
    assert result.returncode == 0, result.stdout
    assert "ok: 1 playbooks" in result.stdout


def test_validate_reports_every_problem_with_file_line_step_and_a_suggestion(
    tmp_path: Path,
) -> None:
    typo = write(
        tmp_path / "typo.yml",
        "name: typo\nsteps:\n  - id: hello\n    action: core.logg\n    with: {message: hi}\n",
    )
    field = write(
        tmp_path / "field.yml",
        "name: field\nsteps:\n  - id: nap\n    action: core.sleep\n    with: {seconds: 1}\n"
        "    retyr: 3\n",
    )
    write(tmp_path / "fine.yml", "name: fine\nsteps:\n  - {id: a, action: core.log, "
          "with: {message: hi}}\n")
    result = riposte("validate", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        f"{typo}:4: step 'hello': unknown action 'core.logg' (did you mean 'core.log'?)" in lines
    )
    assert f"{field}:6: step 'nap': unknown field 'retyr' (did you mean 'retry'?)" in lines
    assert "2 problem(s) in 2 file(s)" in lines
    no_traceback(result)


def test_validate_refuses_a_path_without_playbooks(tmp_path: Path) -> None:
    result = riposte("validate", str(tmp_path))
    assert result.returncode == 1
    assert "no *.yml or *.yaml playbook" in result.stderr
    missing = riposte("validate", str(tmp_path / "nope.yml"))
    assert missing.returncode == 1
    assert "nope.yml" in missing.stdout
    no_traceback(missing)


def test_validate_reports_two_playbooks_with_one_name(tmp_path: Path) -> None:
    body = "name: same\nsteps:\n  - {id: a, action: core.log, with: {message: hi}}\n"
    write(tmp_path / "a.yml", body)
    write(tmp_path / "b.yml", body)
    result = riposte("validate", str(tmp_path))
    assert result.returncode == 1
    assert "name 'same' also used by" in result.stdout


# ---------------------------------------------------------------------------------------------
# schema


def test_schema_prints_the_generated_schema() -> None:
    result = riposte("schema")
    assert result.returncode == 0
    assert result.stdout == render_schema()


# ---------------------------------------------------------------------------------------------
# db, tokens, audit


def test_db_upgrade_migrates_a_new_database_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = riposte("db", "upgrade", db=url)
    assert first.returncode == 0, first.stderr
    assert "is at revision" in first.stdout
    again = riposte("db", "upgrade", db=url)
    assert again.returncode == 0, again.stderr
    assert riposte("token", "create", "--name", "a", "--role", "admin", db=url).returncode == 0


def test_db_upgrade_does_not_print_the_password() -> None:
    result = riposte(
        "db", "upgrade", db="postgresql+psycopg://u:s3cret@127.0.0.1:1/none?connect_timeout=2"
    )
    assert result.returncode == 1
    assert "s3cret" not in result.stdout + result.stderr
    no_traceback(result)


def test_an_unmigrated_database_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = riposte("token", "create", "--name", "a", "--role", "admin", db=url)
    assert result.returncode == 1
    assert "riposte db upgrade" in result.stderr
    no_traceback(result)


def test_token_create_prints_only_a_token_that_authenticates(db_url: str) -> None:
    result = riposte("token", "create", "--name", "pager", "--role", "responder", db=db_url)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert "pager" in result.stderr
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            row = authenticate(session, token)
            assert row is not None
            assert (row.name, row.role) == ("pager", "responder")
            assert authenticate(session, token + "x") is None
    finally:
        engine.dispose()


def test_token_create_with_a_duplicate_name_fails(db_url: str) -> None:
    assert riposte("token", "create", "--name", "ci", "--role", "ingest", db=db_url).returncode == 0
    again = riposte("token", "create", "--name", "ci", "--role", "admin", db=db_url)
    assert again.returncode == 1
    assert again.stdout == ""
    assert "a token named 'ci' already exists" in again.stderr
    no_traceback(again)


def test_token_create_refuses_an_unknown_role(sqlite_url: str) -> None:
    result = riposte("token", "create", "--name", "x", "--role", "root", db=sqlite_url)
    assert result.returncode == 1
    assert "--role must be one of ingest, responder, admin" in result.stderr


def test_a_token_that_expired_does_not_authenticate(sqlite_url: str) -> None:
    result = riposte(
        "token", "create", "--name", "brief", "--role", "admin", "--expires-in-days", "0.000001",
        db=sqlite_url,
    )
    assert result.returncode == 0, result.stderr
    time.sleep(0.2)
    engine = make_engine(sqlite_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert authenticate(session, result.stdout.strip()) is None
    finally:
        engine.dispose()


def test_a_revoked_token_stops_working_and_the_revocation_is_audited(db_url: str) -> None:
    token = riposte("token", "create", "--name", "laptop", "--role", "responder", db=db_url)
    assert token.returncode == 0, token.stderr
    revoked = riposte("token", "revoke", "--name", "laptop", db=db_url)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith("token 'laptop' revoked at ")
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert authenticate(session, token.stdout.strip()) is None
            verbs = session.execute(
                select(AuditEvent.verb, AuditEvent.details).order_by(AuditEvent.id)
            ).all()
    finally:
        engine.dispose()
    assert [v for v, _ in verbs] == ["token.created", "token.revoked"]
    assert verbs[-1][1] == {"name": "laptop", "role": "responder"}
    listed = riposte("token", "list", db=db_url)
    assert listed.returncode == 0
    name, role, _, state = listed.stdout.strip().split("\t")
    assert (name, role) == ("laptop", "responder") and state.startswith("revoked ")
    assert token.stdout.strip() not in listed.stdout


def test_revoking_an_unknown_token_is_a_clear_error(sqlite_url: str) -> None:
    result = riposte("token", "revoke", "--name", "ghost", db=sqlite_url)
    assert result.returncode == 1
    assert "no token named 'ghost'" in result.stderr
    no_traceback(result)


def test_audit_verify_passes_on_an_untouched_log(db_url: str) -> None:
    for name in ("a", "b", "c"):
        created = riposte("token", "create", "--name", name, "--role", "admin", db=db_url)
        assert created.returncode == 0
    result = riposte("audit", "verify", db=db_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok: 3 audit rows checked, the chain is intact"


def test_audit_verify_names_a_row_edited_behind_the_applications_back(sqlite_url: str) -> None:
    for name in ("a", "b", "c"):
        assert riposte("token", "create", "--name", name, "--role", "admin",
                       db=sqlite_url).returncode == 0
    database = make_url(sqlite_url).database
    assert database is not None
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE audit_events SET verb='x' WHERE id=2")
    connection.close()
    result = riposte("audit", "verify", db=sqlite_url)
    assert result.returncode == 1
    assert result.stdout.startswith("broken: audit row 2: content does not match its hash")
    assert "(1 rows before it are intact)" in result.stdout


def test_postgres_refuses_to_edit_the_audit_log(pg_url: str) -> None:
    assert riposte("token", "create", "--name", "a", "--role", "admin", db=pg_url).returncode == 0
    engine = make_engine(pg_url)
    try:
        for statement in ("UPDATE audit_events SET verb='x'", "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="refused"), engine.begin() as connection:
                connection.execute(text(statement))
        with make_sessionmaker(engine)() as session:
            assert session.execute(select(AuditEvent.verb)).scalars().all() == ["token.created"]
    finally:
        engine.dispose()
    result = riposte("audit", "verify", db=pg_url)
    assert result.returncode == 0
    assert result.stdout.startswith("ok: 1 audit rows checked")


def test_a_bad_setting_is_named(sqlite_url: str) -> None:
    result = riposte("audit", "verify", db=sqlite_url, RIPOSTE_LEASE_SECONDS="soon")
    assert result.returncode == 1
    assert "invalid settings: RIPOSTE_LEASE_SECONDS" in result.stderr
    no_traceback(result)


# ---------------------------------------------------------------------------------------------
# worker and serve


def wait_until(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not true after {seconds}s")


def test_worker_drives_a_queued_run_and_stops_on_sigterm(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    example = load_file(EXAMPLE)
    alert = make_alert(source="cloudtrail", kind="api-call", type="TerminateInstances",
                       severity=70, severity_label="HIGH",
                       principal={"type": "IAMUser", "name": "Roboman1"})
    with sessions.begin() as session:
        ingested = ingest_alert(
            session=session, alert=alert, playbooks={example.spec.name: example},
            endpoint="test", body_sha256="0" * 64, body_bytes=0, actor="test",
        )
    [run_id] = ingested.run_ids
    worker = subprocess.Popen(
        [sys.executable, "-m", "riposte", "worker", "--id", "cli-test-worker"],
        cwd=ROOT, env=cli_env(db_url, RIPOSTE_WORKER_POLL_SECONDS="0.2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:

        def waiting() -> bool:
            with sessions() as session:
                return session.get(Run, run_id).status == "waiting_approval"  # type: ignore[union-attr]

        wait_until(waiting)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
        engine.dispose()
    assert worker.returncode == 0, stderr
    assert "worker cli-test-worker stopped" in stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("access_log", [None, "true"], ids=["default", "access-log"])
def test_serve_answers_http_and_stops_on_sigint(sqlite_url: str, access_log: str | None) -> None:
    port = free_port()
    extra = {} if access_log is None else {"RIPOSTE_ACCESS_LOG": access_log}
    server = subprocess.Popen(
        [sys.executable, "-m", "riposte", "serve", "--port", str(port), "--workers", "0"],
        cwd=ROOT, env=cli_env(sqlite_url, **extra), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/runs").status_code == 401
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, stderr
    # Logs are JSON lines, uvicorn's included; a line per request only when asked for.
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert all(lines)
    requests = [line["message"] for line in lines if line["logger"] == "uvicorn.access"]
    if access_log is None:
        assert requests == []
    else:
        assert any('"GET /v1/runs HTTP/1.1" 401' in message for message in requests), requests


def test_policy_prints_the_permissions_of_the_actions_the_playbooks_use(tmp_path: Path) -> None:
    write(tmp_path / "one.yml", "name: one\nsteps:\n  - {id: a, action: core.log, "
          "with: {message: hi}}\n")
    result = riposte("policy", str(tmp_path), RIPOSTE_RESPONDER_ROLE="riposte-responder")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    # core.log needs no AWS permission; assuming the responder role is all there is.
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AssumeResponderRole",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole"],
                "Resource": "arn:aws:iam::*:role/riposte-responder",
            }
        ],
    }


def test_policy_refuses_playbooks_with_problems(tmp_path: Path) -> None:
    write(tmp_path / "typo.yml", "name: typo\nsteps:\n  - {id: a, action: core.logg, "
          "with: {message: hi}}\n")
    result = riposte("policy", str(tmp_path))
    assert result.returncode == 1
    assert "core.logg" in result.stderr + result.stdout
    no_traceback(result)


# ---------------------------------------------------------------------------------------------
# settings a user can get right: refused at start-up in one line, or warned about


S3_SOURCE_WITHOUT_BUCKET = (
    "RIPOSTE_CLOUDTRAIL_SOURCES names s3 but RIPOSTE_CLOUDTRAIL_BUCKET is not set: set it to "
    "the bucket the trail delivers its log files to, or leave s3 out of the sources"
)
UNUSABLE_SETTINGS = {
    "misspelt-source": (
        {"RIPOSTE_CLOUDTRAIL_SOURCES": "lookup_event"},
        "RIPOSTE_CLOUDTRAIL_SOURCES: unknown source 'lookup_event' (known: lookup_events, s3, "
        "ingested; did you mean 'lookup_events'?)",
    ),
    "s3-without-bucket": ({"RIPOSTE_CLOUDTRAIL_SOURCES": "s3"}, S3_SOURCE_WITHOUT_BUCKET),
    "account-registry-key": (
        {"RIPOSTE_ACCOUNTS": '{"123456789012": {"name": "prod", "env": "production"}}'},
        "RIPOSTE_ACCOUNTS['123456789012']: unknown key 'env' (known: name, environment, owner; "
        "did you mean 'environment'?)",
    ),
    "broken-json-list": (
        {"RIPOSTE_CLOUDTRAIL_SOURCES": '["s3", "ingested"'},
        "RIPOSTE_CLOUDTRAIL_SOURCES: not a JSON list (Expecting ',' delimiter at character 18): "
        "write a JSON list, or the values separated by commas",
    ),
}
BUCKET_LEFT_OUT = (
    "RIPOSTE_CLOUDTRAIL_BUCKET is set but RIPOSTE_CLOUDTRAIL_SOURCES (lookup_events) leaves out "
    "s3: investigations do not read the trail's bucket, only steps whose `sources` name s3 do; "
    "add s3 to RIPOSTE_CLOUDTRAIL_SOURCES to read it"
)


def starting(command: str, alert_file: Path) -> list[str]:
    """The arguments of ``command`` as a user starts it."""
    return {
        "serve": ["serve", "--port", str(free_port()), "--workers", "0"],
        "worker": ["worker"],
        "plan": ["plan", str(EXAMPLE), str(alert_file)],
    }[command]


# Every case through `plan`, and through the long-running commands too (one load_settings).
REFUSALS = [
    *(("plan", case) for case in UNUSABLE_SETTINGS),
    ("serve", "misspelt-source"), ("serve", "account-registry-key"),
    ("worker", "s3-without-bucket"), ("worker", "broken-json-list"),
]


@pytest.mark.parametrize(("command", "case"), REFUSALS, ids=["-".join(r) for r in REFUSALS])
def test_a_setting_riposte_cannot_use_stops_it_with_one_line_naming_the_variable(
    tmp_path: Path, alert_file: Path, command: str, case: str
) -> None:
    variables, message = UNUSABLE_SETTINGS[case]
    database = f"sqlite:///{tmp_path / 'never-made.db'}"

    result = riposte(*starting(command, alert_file), db=database, cwd=tmp_path, **variables)

    assert result.returncode == 1
    assert result.stderr == f"error: invalid settings: {message}\n"
    assert result.stdout == ""
    assert not (tmp_path / "never-made.db").exists()  # refused before anything started


def test_comma_separated_list_settings_are_accepted(alert_file: Path) -> None:
    result = riposte(
        "plan", str(EXAMPLE), str(alert_file),
        RIPOSTE_CLOUDTRAIL_SOURCES="s3, ingested", RIPOSTE_CLOUDTRAIL_BUCKET="trail-logs",
        RIPOSTE_PRODUCTION_INSTANCES="i-2oc7w12,i-eob7w13", RIPOSTE_BREAK_GLASS="breakglass",
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "result: the run would end succeeded" in result.stdout


def test_plan_warns_of_a_bucket_the_sources_leave_out(alert_file: Path) -> None:
    result = riposte("plan", str(EXAMPLE), str(alert_file),
                     RIPOSTE_CLOUDTRAIL_BUCKET="trail-logs")

    assert result.returncode == 0, result.stderr
    assert result.stderr == f"warning: {BUCKET_LEFT_OUT}\n"


STARTED = {"serve": "Application startup complete.", "worker": "worker warned-worker started"}
SNS_TOPICS_EMPTY = "RIPOSTE_SNS_TOPICS is empty: POST /v1/webhooks/sns refuses every SNS message"


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_log_a_bucket_the_sources_leave_out_at_start_up(
    sqlite_url: str, command: str
) -> None:
    warnings = _start_up_warnings(command, sqlite_url, RIPOSTE_CLOUDTRAIL_BUCKET="trail-logs",
                                  RIPOSTE_SNS_TOPICS="arn:aws:sns:*:123456789012:riposte-*")
    assert warnings == [("warning", BUCKET_LEFT_OUT)]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_alone_warns_that_no_sns_topic_is_allowed(sqlite_url: str, command: str) -> None:
    warnings = _start_up_warnings(command, sqlite_url)
    if command == "serve":
        [(level, message)] = warnings
        assert level == "warning" and message.startswith(SNS_TOPICS_EMPTY)
    else:  # a worker serves no webhook
        assert warnings == []


def _start_up_warnings(command: str, database_url: str, **env: str) -> list[tuple[str, str]]:
    """Start ``riposte serve`` or ``worker``; return the settings warnings it logged.

    The console has its session key (its absence is a warning of its own, test_settings).
    """
    arguments = {"serve": ["serve", "--workers", "0", "--port", str(free_port())],
                 "worker": ["worker", "--id", "warned-worker"]}[command]
    env = {"RIPOSTE_CONSOLE_SECRET_KEY": "k" * 40, **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "riposte", *arguments],
        cwd=ROOT, env=cli_env(database_url, **env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[dict[str, Any]] = []
    try:
        assert process.stderr is not None
        while not lines or lines[-1]["message"] != STARTED[command]:
            line = process.stderr.readline()
            assert line, f"{command} ended before it started: {lines}"
            lines.append(json.loads(line))
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return [(line["level"], line["message"]) for line in lines
            if line["logger"] == "riposte.settings"]
