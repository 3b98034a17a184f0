"""How an audit row is hashed into the chain: pure, shared by the writer and every verifier."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Protocol

# The hash the first row chains to, and the tail of an empty log.
GENESIS = "0" * 64


class AuditRow(Protocol):
    """An audit row as verifiers read it: a stored ``AuditEvent`` or a row of an export."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def verb(self) -> str: ...
    @property
    def alert_id(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def step_id(self) -> str | None: ...
    @property
    def details(self) -> Any: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


def row_hash(row: AuditRow) -> str:
    """Hash one row's content together with the previous row's hash.

    The text hashed is the JSON of ``[at, actor, verb, alert_id, run_id, step_id, details,
    prev_hash]`` (keys sorted, no spaces, ASCII only).
    """
    head = hash_head(row.at, row.actor, row.verb, row.alert_id, row.run_id, row.step_id,
                     row.details)
    return chained(head, row.prev_hash)


def chained(head: str, prev_hash: str) -> str:
    """Return the hash of the text ``head`` + ``prev_hash`` closes (see ``hash_head``)."""
    return hashlib.sha256(f'{head}{prev_hash}"]'.encode()).hexdigest()


def hash_head(
    at: datetime, actor: str, verb: str, alert_id: str | None, run_id: str | None,
    step_id: str | None, details: Any,
) -> str:
    """Return the text ``row_hash`` hashes, up to where the previous row's hash goes.

    The JSON of ``[at, …, details, "<prev_hash>"]`` is ``head + prev_hash + '"]'`` for any hex
    ``prev_hash``: so the database can chain a row to a hash the writer has not read.
    """
    body = json.dumps(
        [at.isoformat(), actor, verb, alert_id, run_id, step_id, details],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return body[:-1] + ',"'
