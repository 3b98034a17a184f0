"""The audit hash: what the database appends to ``hash_head`` is exactly what ``row_hash`` hashes.

On PostgreSQL the database finishes each event's hash (``hash_head`` + the previous hash +
``"]``); ``verify`` recomputes it in Python. Both must equal the documented definition: SHA-256
of the JSON of ``[at, actor, verb, alert_id, run_id, step_id, details, prev_hash]``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.audit import GENESIS, hash_head, row_hash
from engine.store.models import AuditEvent

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
_HEX = st.text("0123456789abcdef", min_size=64, max_size=64)


def documented_hash(values: list[Any]) -> str:
    body = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode()).hexdigest()


@given(
    at=st.datetimes(timezones=st.just(UTC)),
    actor=st.text(),
    verb=st.text(),
    ids=st.tuples(*(st.none() | st.text() for _ in range(3))),
    details=st.dictionaries(st.text(), _JSON, max_size=4),
    prev_hash=_HEX | st.just(GENESIS),
)
def test_the_head_and_the_previous_hash_make_the_documented_hash(
    at: datetime, actor: str, verb: str, ids: tuple[str | None, str | None, str | None],
    details: dict[str, Any], prev_hash: str,
) -> None:
    alert_id, run_id, step_id = ids
    head = hash_head(at, actor, verb, alert_id, run_id, step_id, details)
    expected = documented_hash([at.isoformat(), actor, verb, alert_id, run_id, step_id, details,
                                prev_hash])
    # What the database computes: encode(sha256(convert_to(head || prev || '"]', 'UTF8')), 'hex')
    assert head.isascii()
    assert hashlib.sha256(f'{head}{prev_hash}"]'.encode()).hexdigest() == expected
    row = AuditEvent(at=at, actor=actor, verb=verb, alert_id=alert_id, run_id=run_id,
                     step_id=step_id, details=details, prev_hash=prev_hash)
    assert row_hash(row) == expected
