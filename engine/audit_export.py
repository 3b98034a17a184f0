"""The audit log as files, and their offline verification, as CloudTrail's log and digest files.

An export directory holds:

- ``events.jsonl``: every audit row, oldest first, one JSON object a line (``id``, ``at``,
  ``actor``, ``verb``, ``alert_id``, ``run_id``, ``step_id``, ``details``, ``prev_hash``,
  ``hash``): enough to recompute every hash;
- ``checkpoints/checkpoint-<row id>.json``: each signed checkpoint (``row``, ``checkpoint``,
  ``ed25519``), verifiable alone with the public key.

Verifying checks the rows as ``engine.audit.verify`` does, every checkpoint's signature, and
each checkpoint file against the rows at its place: checkpoint files kept from earlier exports
(copied into ``checkpoints/``) then also show rows deleted at the end of the log since.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from engine.audit_check import ChainCheck, ChainReport
from engine.audit_signing import CHECKPOINT_VERB, CheckpointMalformed, SignedCheckpoint, key_id
from engine.store.models import AuditEvent

EVENTS_FILE = "events.jsonl"
CHECKPOINTS_DIR = "checkpoints"
_FIELDS = ("id", "at", "actor", "verb", "alert_id", "run_id", "step_id", "details",
           "prev_hash", "hash")
_EVENTS = cast(Table, AuditEvent.__table__)
_ROWS = select(*(_EVENTS.c[name] for name in _FIELDS)).order_by(_EVENTS.c.id)


class ExportRefused(ValueError):
    """An export that would mix with or overwrite files already there."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    rows: int
    checkpoints: int


@dataclass(frozen=True)
class ExportedRow:
    """An audit row read back from ``events.jsonl``."""

    id: int
    at: datetime
    actor: str
    verb: str
    alert_id: str | None
    run_id: str | None
    step_id: str | None
    details: Any
    prev_hash: str
    hash: str


def export_log(session: Session, directory: Path) -> Exported:
    """Write every audit row and every signed checkpoint into ``directory`` (new or empty).

    The rows are read by one statement: the export is the log at one instant.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise ExportRefused(f"{directory} is not empty: export into a new directory")
    checkpoints_dir = directory / CHECKPOINTS_DIR
    checkpoints_dir.mkdir()
    partial = directory / f"{EVENTS_FILE}.partial"
    rows = checkpoints = 0
    with partial.open("w", encoding="ascii") as events:
        result = session.connection().execute(_ROWS.execution_options(yield_per=1000))
        for row in result:
            line = dict(zip(_FIELDS, row, strict=True))
            line["at"] = row.at.isoformat()
            events.write(json.dumps(line, sort_keys=True, ensure_ascii=True) + "\n")
            rows += 1
            if row.verb == CHECKPOINT_VERB:
                body = {"row": row.id, **row.details}
                (checkpoints_dir / f"checkpoint-{row.id:012d}.json").write_text(
                    json.dumps(body, sort_keys=True, indent=2) + "\n", encoding="ascii"
                )
                checkpoints += 1
        events.flush()
        os.fsync(events.fileno())
    partial.rename(directory / EVENTS_FILE)
    return Exported(rows=rows, checkpoints=checkpoints)


def verify_export(directory: Path, *, public_keys: Iterable[Ed25519PublicKey]) -> ChainReport:
    """Check an export offline: the chain, the checkpoints' signatures, the checkpoint files."""
    keys = {key_id(key): key for key in public_keys}
    if not keys:
        raise ValueError("verifying an export needs a public key: anyone could have written "
                         "its rows")
    events_file = directory / EVENTS_FILE
    if not events_file.is_file():
        raise FileNotFoundError(f"{events_file}: no such file (is {directory} an export of "
                                "`riposte audit export`?)")
    check = ChainCheck(public_keys=keys.values())
    for path in sorted((directory / CHECKPOINTS_DIR).glob("*.json")):
        try:
            row_id, signed = _checkpoint_file(path)
        except CheckpointMalformed as exc:
            return ChainReport(ok=False, checked=0,
                               reason=f"checkpoint file {path.name}: not a checkpoint: {exc}")
        key = keys.get(signed.checkpoint.key_id)
        if key is None or not signed.verifies_with(key):
            why = ("does not verify: the checkpoint was altered" if key is not None else
                   f"is by key {signed.checkpoint.key_id}, not by one of the public keys given")
            return ChainReport(ok=False, checked=0, first_broken_id=row_id,
                               reason=f"checkpoint file {path.name}: its signature {why}")
        check.expect(signed.checkpoint.rows, signed.checkpoint.tail, signed=True,
                     by=f"checkpoint file {path.name}", row_id=row_id)
    for number, row in enumerate(_read_rows(events_file), 1):
        if isinstance(row, str):
            return ChainReport(ok=False, checked=number - 1,
                               reason=f"{EVENTS_FILE} line {number}: {row}")
        if not check.add(row):
            break
    return check.report()


def _checkpoint_file(path: Path) -> tuple[int, SignedCheckpoint]:
    """Read a checkpoint file: the row the export found it in, and the checkpoint."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointMalformed(str(exc)) from exc
    if not isinstance(body, dict):
        raise CheckpointMalformed("not a JSON object")
    row_id = body.pop("row", None)  # where it was found; its statement's rows is what counts
    if not isinstance(row_id, int) or isinstance(row_id, bool):
        raise CheckpointMalformed(f"row {row_id!r} is not a row id")
    return row_id, SignedCheckpoint.from_details(body)


def _read_rows(path: Path) -> Iterator[ExportedRow | str]:
    """Yield each row of ``events.jsonl``, or the text of what is wrong with a line."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                fields = json.loads(line)
                if not isinstance(fields, dict) or set(fields) != set(_FIELDS):
                    raise ValueError(f"the fields are not {', '.join(_FIELDS)}")
                if not isinstance(fields["id"], int) or isinstance(fields["id"], bool):
                    raise ValueError(f"id {fields['id']!r} is not a number")
                fields["at"] = datetime.fromisoformat(fields["at"])
                yield ExportedRow(**fields)
            except (ValueError, TypeError) as exc:
                yield f"not an audit row ({exc})"
