"""Signed checkpoints: who writes them and when, exports and their offline verification.

The workers sign a checkpoint at the configured interval when events were appended since the
last one (at most one however many workers look); ``riposte audit export`` writes the rows and
the checkpoints as files and ``riposte audit verify --export DIR --public-key FILE`` checks them
with nothing but the public key, catching a chain rewritten with every hash recomputed, and,
with checkpoint files kept from an earlier export, rows deleted at the end since.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from threading import Barrier
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.settings import Settings, SettingsInvalid
from engine import audit
from engine.audit_checkpoints import Checkpointer, write_checkpoint
from engine.audit_export import export_log, verify_export
from engine.audit_signing import SignedCheckpoint, generate_key_pair, load_private_key
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import AuditEvent
from engine.worker import Worker
from riposte.cli import app
from tests.integration.audit_tamper import (
    append_events,
    attacker_hash,
    past_the_triggers,
    rewrite_and_recompute,
    set_tail,
    tamper,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key_files(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "audit.key", tmp_path / "audit.key.pub"
    generate_key_pair(private, public)
    return private, public


def checkpoints(sessions: sessionmaker[Session]) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.execute(select(AuditEvent).where(
            AuditEvent.verb == "audit.checkpoint").order_by(AuditEvent.id)).scalars())


def riposte(*args: str, db: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RIPOSTE_")}
    if db is not None:
        clean["RIPOSTE_DATABASE_URL"] = db
    return subprocess.run([sys.executable, "-m", "riposte", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**clean, **env}, timeout=120, check=False)


# ---------------------------------------------------------------------------------------------
# Who signs, and when


def test_a_checkpoint_signs_the_chain_before_it_and_follows_the_last(
    sessionmaker: sessionmaker[Session],
) -> None:
    key = Ed25519PrivateKey.generate()
    append_events(sessionmaker, 3)
    with sessionmaker.begin() as session:
        first = write_checkpoint(session, key=key, actor="test")
    append_events(sessionmaker, 2)
    with sessionmaker.begin() as session:
        second = write_checkpoint(session, key=key, actor="test")
        assert write_checkpoint(session, key=key, actor="test") is None  # nothing since

    assert first is not None and second is not None
    rows = checkpoints(sessionmaker)
    stated = [SignedCheckpoint.from_details(row.details) for row in rows]
    assert [row.id for row in rows] == [first.event_id, second.event_id] == [4, 7]
    assert [s.checkpoint.rows for s in stated] == [3, 6]
    assert [s.checkpoint.tail for s in stated] == [rows[0].prev_hash, rows[1].prev_hash]
    assert stated[0].checkpoint.previous is None
    assert stated[1].checkpoint.previous == stated[0].signature
    assert all(s.verifies_with(key.public_key()) for s in stated)


def test_the_checkpointer_signs_once_per_interval_and_only_after_new_events(
    sessionmaker: sessionmaker[Session],
) -> None:
    key = Ed25519PrivateKey.generate()

    def worker(name: str, every: float) -> Checkpointer:
        return Checkpointer(key=key, every=every, sessions=sessionmaker, actor=name)

    hourly_a, hourly_b, brisk = worker("a", 3600), worker("b", 3600), worker("brisk", 0.05)
    append_events(sessionmaker, 2)

    assert hourly_a.sign_if_due() is not None  # the first one
    append_events(sessionmaker, 1)
    assert hourly_a.sign_if_due() is None  # not looking again before an hour
    assert hourly_b.sign_if_due() is None  # looks: the newest is younger than an hour
    time.sleep(0.1)
    assert brisk.sign_if_due() is not None  # older than its interval, and an event since
    time.sleep(0.1)
    assert brisk.sign_if_due() is None  # nothing appended since

    assert [row.actor for row in checkpoints(sessionmaker)] == ["a", "brisk"]
    with sessionmaker() as session:
        assert audit.verify(session, public_keys=[key.public_key()]).ok


def test_workers_looking_at_once_write_one_checkpoint(
    sessionmaker: sessionmaker[Session],
) -> None:
    key = Ed25519PrivateKey.generate()
    append_events(sessionmaker, 5)
    looking = [Checkpointer(key=key, every=3600, sessions=sessionmaker, actor=f"worker-{n}")
               for n in range(6)]
    barrier = Barrier(len(looking))

    def look(checkpointer: Checkpointer) -> bool:
        barrier.wait()
        return checkpointer.sign_if_due() is not None

    with ThreadPoolExecutor(len(looking)) as pool:
        written = list(pool.map(look, looking))

    assert written.count(True) == 1
    assert len(checkpoints(sessionmaker)) == 1


def test_the_workers_housekeeping_signs_with_the_configured_key(
    sessionmaker: sessionmaker[Session], key_files: tuple[Path, Path]
) -> None:
    private, _ = key_files
    append_events(sessionmaker, 2)
    settings = Settings(audit_signing_key=private, audit_checkpoint_seconds=3600)
    worker = Worker(sessions=sessionmaker, worker_id="w-1", settings=settings)

    worker.housekeeping()

    rows = checkpoints(sessionmaker)
    assert [(row.actor, row.details["checkpoint"]["rows"]) for row in rows] == [("w-1", 2)]
    with sessionmaker() as session:
        report = audit.verify(session, public_keys=[load_private_key(private).public_key()])
    assert (report.ok, report.checkpoints, report.unsigned) == (True, 1, 0)


def test_a_worker_with_an_unusable_key_file_does_not_start(
    sessionmaker: sessionmaker[Session], tmp_path: Path
) -> None:
    not_a_key = tmp_path / "audit.key"
    not_a_key.write_text("hello\n")
    for path, why in ((not_a_key, "not an unencrypted PEM Ed25519 private key"),
                      (tmp_path / "missing.key", "cannot read key file")):
        with pytest.raises(SettingsInvalid, match=f"RIPOSTE_AUDIT_SIGNING_KEY: .*{why}"):
            Worker(sessions=sessionmaker, settings=Settings(audit_signing_key=path))


# ---------------------------------------------------------------------------------------------
# Export and offline verification


@pytest.fixture
def signed_sessions(
    sessionmaker: sessionmaker[Session], key_files: tuple[Path, Path]
) -> sessionmaker[Session]:
    """Rows 1-10 events, 11 a checkpoint, 12-16 events, 17 a checkpoint, 18-20 events."""
    key = load_private_key(key_files[0])
    for events in (10, 5):
        append_events(sessionmaker, events)
        with sessionmaker.begin() as session:
            write_checkpoint(session, key=key, actor="test")
    append_events(sessionmaker, 3)
    return sessionmaker


def test_an_export_verifies_offline_with_the_public_key(
    signed_sessions: sessionmaker[Session], key_files: tuple[Path, Path], tmp_path: Path
) -> None:
    with signed_sessions() as session:
        exported = export_log(session, tmp_path / "export")

    key = load_private_key(key_files[0]).public_key()
    report = verify_export(tmp_path / "export", public_keys=[key])

    assert (exported.rows, exported.checkpoints) == (20, 2)
    assert sorted(p.name for p in (tmp_path / "export" / "checkpoints").iterdir()) == [
        "checkpoint-000000000011.json", "checkpoint-000000000017.json"]
    assert (report.ok, report.checked, report.checkpoints, report.unsigned) == (True, 20, 2, 3)


def test_an_export_of_a_recomputed_chain_fails_at_the_next_checkpoint(
    signed_sessions: sessionmaker[Session], engine: Engine, key_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    rewrite_and_recompute(engine, 13, restate_checkpoints=True)
    with signed_sessions() as session:
        export_log(session, tmp_path / "export")

    key = load_private_key(key_files[0]).public_key()
    report = verify_export(tmp_path / "export", public_keys=[key])

    assert (report.ok, report.first_broken_id) == (False, 17)
    assert report.reason is not None and "signature does not verify" in report.reason


def test_an_export_file_edited_and_recomputed_fails_at_the_next_checkpoint(
    signed_sessions: sessionmaker[Session], key_files: tuple[Path, Path], tmp_path: Path
) -> None:
    with signed_sessions() as session:
        export_log(session, tmp_path / "export")
    events = tmp_path / "export" / "events.jsonl"
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    rows[2]["actor"] = "mallory"  # row 3, then every hash after it recomputed
    prev_hash = rows[2]["prev_hash"]
    for row in rows[2:]:
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = attacker_hash(
            SimpleNamespace(**{**row, "at": datetime.fromisoformat(row["at"])}), prev_hash)
    events.write_text("".join(json.dumps(row) + "\n" for row in rows))

    key = load_private_key(key_files[0]).public_key()
    report = verify_export(tmp_path / "export", public_keys=[key])

    assert (report.ok, report.first_broken_id, report.checked) == (False, 11, 10)
    assert report.reason is not None and "from the first row on" in report.reason


def test_checkpoint_files_kept_from_an_earlier_export_show_rows_deleted_since(
    signed_sessions: sessionmaker[Session], engine: Engine, key_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    with signed_sessions() as session:
        export_log(session, tmp_path / "monday")
    # The attacker removes rows 14-20 (checkpoint 17 with them) and sets the tail back to 13:
    # the database alone now looks intact.
    tamper(engine, "DELETE FROM audit_events WHERE id > 13")
    with engine.begin() as connection:
        past_the_triggers(connection)
        newest = connection.execute(select(AuditEvent.hash).where(AuditEvent.id == 13)).scalar()
        assert newest is not None
        set_tail(connection, newest, 13)
    with signed_sessions() as session:
        assert audit.verify(session).ok
        export_log(session, tmp_path / "tuesday")
    for kept in (tmp_path / "monday" / "checkpoints").iterdir():
        shutil.copy(kept, tmp_path / "tuesday" / "checkpoints" / kept.name)

    key = load_private_key(key_files[0]).public_key()
    report = verify_export(tmp_path / "tuesday", public_keys=[key])

    assert (report.ok, report.first_broken_id, report.checked) == (False, 14, 13)
    assert report.reason is not None
    assert report.reason.startswith("checkpoint file checkpoint-000000000017.json counts 16 "
                                    "events")
    assert report.reason.endswith("at least the newest 3 rows were deleted")


# ---------------------------------------------------------------------------------------------
# The commands


def test_riposte_audit_verify_catches_the_newest_row_deleted(sqlite_url: str) -> None:
    # Issue 12: this said "ok: 2 audit rows checked, the chain is intact".
    engine = make_engine(sqlite_url)
    try:
        append_events(make_sessionmaker(engine), 3)
        tamper(engine, "DELETE FROM audit_events WHERE id = 3")
    finally:
        engine.dispose()

    result = riposte("audit", "verify", db=sqlite_url)

    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("broken: audit row 3: the chain's tail (audit_chain) counts "
                                    "3 events")
    assert "the newest row was deleted (2 rows before it are intact)" in result.stdout


def test_keygen_checkpoint_export_and_offline_verify_from_the_command_line(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIPOSTE_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    private, public = tmp_path / "keys" / "audit.key", tmp_path / "keys" / "audit.key.pub"
    private.parent.mkdir()
    made = runner.invoke(app, ["audit", "keygen", str(private)])
    assert made.exit_code == 0, made.output
    assert private.stat().st_mode & 0o777 == 0o600 and public.is_file()
    again = runner.invoke(app, ["audit", "keygen", str(private)])
    assert again.exit_code == 1 and "is never overwritten" in again.stderr
    assert runner.invoke(app, ["token", "create", "--name", "a", "--role", "admin"]).exit_code == 0

    signed = runner.invoke(app, ["audit", "checkpoint", "--key", str(private)])
    assert signed.exit_code == 0, signed.output
    assert signed.stdout.startswith("checkpoint at audit row 2: signs 1 events ending in hash")
    nothing_new = runner.invoke(app, ["audit", "checkpoint", "--key", str(private)])
    assert nothing_new.stdout.startswith("nothing appended since the newest checkpoint")

    online = runner.invoke(app, ["audit", "verify", "--public-key", str(public)])
    assert online.exit_code == 0, online.output
    verdict, signatures = online.stdout.splitlines()
    assert verdict == "ok: 2 audit rows checked, the chain is intact"
    assert signatures.startswith("signed: 1 checkpoints verified, the newest at row 2 (")
    assert signatures.endswith("); 0 rows after it not signed yet")

    export = tmp_path / "export"
    exported = runner.invoke(app, ["audit", "export", str(export)])
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.startswith(f"exported 2 audit rows to {export / 'events.jsonl'} and "
                                      "1 signed checkpoints")
    refused = runner.invoke(app, ["audit", "export", str(export)])
    assert refused.exit_code == 1 and "is not empty" in refused.stderr

    offline = runner.invoke(app, ["audit", "verify", "--export", str(export), "--public-key",
                                  str(public)])
    assert offline.exit_code == 0, offline.output
    assert offline.stdout.startswith(f"ok: 2 audit rows of export {export} checked")
    no_key = runner.invoke(app, ["audit", "verify", "--export", str(export)])
    assert no_key.exit_code == 1 and "--export needs --public-key" in no_key.stderr


def test_verify_with_a_key_fails_when_nothing_is_signed(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIPOSTE_DATABASE_URL", sqlite_url)
    generate_key_pair(tmp_path / "k", tmp_path / "k.pub")
    runner = CliRunner()
    assert runner.invoke(app, ["token", "create", "--name", "a", "--role", "admin"]).exit_code == 0

    result = runner.invoke(app, ["audit", "verify", "--public-key", str(tmp_path / "k.pub")])

    assert result.exit_code == 1
    assert "unsigned: no checkpoint signs any row" in result.stdout
