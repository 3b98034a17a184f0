"""Chain verification and checkpoint signing, pure: rows in memory, every tampering named.

The chain is built here from the documented hash (SHA-256 of the JSON of ``[at, actor, verb,
alert_id, run_id, step_id, details, prev_hash]``), independently of ``engine.audit_hash``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from engine.audit_check import ChainCheck, ChainReport
from engine.audit_signing import (
    Checkpoint,
    CheckpointMalformed,
    SignedCheckpoint,
    SigningKeyInvalid,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
    sign,
)

GENESIS = "0" * 64
START = datetime(2025, 1, 1, tzinfo=UTC)
TAIL = "the tail"


def documented_hash(row: SimpleNamespace, prev_hash: str) -> str:
    body = json.dumps([row.at.isoformat(), row.actor, row.verb, row.alert_id, row.run_id,
                       row.step_id, row.details, prev_hash],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode()).hexdigest()


def chain(count: int) -> list[SimpleNamespace]:
    """Rows 1..count, chained."""
    rows, prev_hash = [], GENESIS
    for n in range(1, count + 1):
        row = SimpleNamespace(id=n, at=START + timedelta(seconds=n), actor="system",
                              verb="test.event", alert_id=None, run_id=None, step_id=None,
                              details={"n": n}, prev_hash=prev_hash)
        row.hash = prev_hash = documented_hash(row, prev_hash)
        rows.append(row)
    return rows


def check(rows: list[SimpleNamespace], *, tail: tuple[int, str] | None = None) -> ChainReport:
    checking = ChainCheck()
    if tail is not None:
        checking.expect(*tail, by=TAIL, last=True)
    for row in rows:
        if not checking.add(row):
            break
    return checking.report()


def tail_of(rows: list[SimpleNamespace]) -> tuple[int, str]:
    return len(rows), rows[-1].hash if rows else GENESIS


@given(count=st.integers(1, 30), data=st.data())
def test_an_edited_row_is_named(count: int, data: st.DataObject) -> None:
    rows = chain(count)
    edited = data.draw(st.integers(1, count))
    tail = tail_of(rows)
    rows[edited - 1].actor = "mallory"

    report = check(rows, tail=tail)

    assert (report.ok, report.first_broken_id, report.checked) == (False, edited, edited - 1)


@given(count=st.integers(2, 30), data=st.data())
def test_a_row_deleted_before_the_newest_is_named_by_the_next(
    count: int, data: st.DataObject
) -> None:
    rows = chain(count)
    deleted = data.draw(st.integers(1, count - 1))
    tail = tail_of(rows)
    del rows[deleted - 1]

    report = check(rows, tail=tail)

    assert (report.ok, report.first_broken_id, report.checked) == (False, deleted + 1,
                                                                    deleted - 1)


@given(count=st.integers(1, 30), data=st.data())
def test_rows_deleted_at_the_end_are_named_by_the_first_missing(
    count: int, data: st.DataObject
) -> None:
    rows = chain(count)
    kept = data.draw(st.integers(0, count - 1))
    tail = tail_of(rows)

    report = check(rows[:kept], tail=tail)

    assert (report.ok, report.first_broken_id, report.checked) == (False, kept + 1, kept)
    assert report.reason is not None
    gone = count - kept
    assert report.reason.endswith("the newest row was deleted" if gone == 1 else
                                  f"the newest {gone} rows were deleted")
    assert check(rows[:kept]).ok  # what verify said before the tail was checked


@given(count=st.integers(0, 30))
def test_an_untouched_chain_holds(count: int) -> None:
    rows = chain(count)
    report = check(rows, tail=tail_of(rows))
    assert (report.ok, report.checked, report.first_broken_id) == (True, count, None)


def test_rows_beyond_the_tail_are_named() -> None:
    rows = chain(5)
    report = check(rows, tail=tail_of(rows[:3]))
    assert (report.ok, report.first_broken_id, report.checked) == (False, 4, 3)
    assert report.reason is not None and "yet this row follows them" in report.reason


# ---------------------------------------------------------------------------------------------
# Signatures


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def checkpoint(key: Ed25519PrivateKey, **fields: Any) -> Checkpoint:
    base: dict[str, Any] = {"rows": 3, "tail": "a" * 64, "at": START.isoformat(),
                            "previous": None, "key_id": key_id(key.public_key())}
    return Checkpoint(**{**base, **fields})


@pytest.mark.parametrize("changed", [{"rows": 4}, {"tail": "b" * 64}, {"at": "2025-01-02"},
                                     {"previous": "x"}])
def test_a_signature_covers_every_field(key: Ed25519PrivateKey, changed: dict[str, Any]) -> None:
    signed = sign(checkpoint(key), key)
    assert signed.verifies_with(key.public_key())
    altered = SignedCheckpoint(replace(signed.checkpoint, **changed), signed.signature)
    assert not altered.verifies_with(key.public_key())
    assert not signed.verifies_with(Ed25519PrivateKey.generate().public_key())


def test_a_signature_is_only_a_checkpoints(key: Ed25519PrivateKey) -> None:
    # The same statement signed without the domain prefix is not a checkpoint's signature.
    plain = checkpoint(key)
    body = plain.signed_text().split(b"\n", 1)[1]
    forged = base64.b64encode(key.sign(body)).decode()
    assert not SignedCheckpoint(plain, forged).verifies_with(key.public_key())
    assert not SignedCheckpoint(plain, "not base64!").verifies_with(key.public_key())


def test_a_checkpoint_reads_back_from_its_details(key: Ed25519PrivateKey) -> None:
    signed = sign(checkpoint(key), key)
    stored = json.loads(json.dumps(signed.details()))
    assert SignedCheckpoint.from_details(stored) == signed


@pytest.mark.parametrize("details", [
    None, {}, {"checkpoint": {}, "ed25519": ""},
    {"checkpoint": {"version": 2, "rows": 1, "tail": "a" * 64, "at": "", "previous": None,
                    "key_id": ""}, "ed25519": ""},
    {"checkpoint": {"version": 1, "rows": True, "tail": "a" * 64, "at": "", "previous": None,
                    "key_id": ""}, "ed25519": ""},
    {"checkpoint": {"version": 1, "rows": 1, "tail": "A" * 64, "at": "", "previous": None,
                    "key_id": ""}, "ed25519": ""},
    {"checkpoint": {"version": 1, "rows": 1, "tail": "a" * 64, "at": "", "previous": None,
                    "key_id": ""}, "ed25519": 5},
], ids=["none", "empty", "no-fields", "version", "bool-rows", "upper-hex", "number-signature"])
def test_malformed_checkpoints_are_refused(details: Any) -> None:
    with pytest.raises(CheckpointMalformed):
        SignedCheckpoint.from_details(details)


def test_key_files_round_trip_and_are_never_overwritten(tmp_path: Path) -> None:
    private, public = tmp_path / "k", tmp_path / "k.pub"
    made = generate_key_pair(private, public)
    assert private.stat().st_mode & 0o777 == 0o600
    assert key_id(load_private_key(private).public_key()) == made
    assert key_id(load_public_key(public)) == made
    with pytest.raises(SigningKeyInvalid, match="is never overwritten"):
        generate_key_pair(private, tmp_path / "other.pub")
    with pytest.raises(SigningKeyInvalid, match="not an unencrypted PEM Ed25519 private key"):
        load_private_key(public)
    with pytest.raises(SigningKeyInvalid, match="cannot read key file"):
        load_public_key(tmp_path / "missing.pub")
