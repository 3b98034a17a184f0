"""Verification of the audit chain: rows in, in order, a report out naming the first bad row.

Pure: the rows come from the database (``engine.audit.verify``) or from an export
(``engine.audit_export``). Four things are checked:

- each row chains to the row before it and its content matches its hash (an edit, a row
  deleted in the middle);
- what is known of the chain from elsewhere — the tail row ``audit_chain`` (how many events
  the chain holds and the newest one's hash), a checkpoint file — matches the rows at that
  place (rows deleted at the tail, every row deleted);
- each ``audit.checkpoint`` event states the chain before it and names the checkpoint before
  it;
- given public keys, each checkpoint's Ed25519 signature (a chain rewritten with every hash
  recomputed: the signed tail no longer matches).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.audit_hash import GENESIS, AuditRow, row_hash
from engine.audit_signing import (
    CHECKPOINT_VERB,
    CheckpointMalformed,
    SignedCheckpoint,
    key_id,
)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of recomputing the audit chain.

    ``first_broken_id`` is the first row found bad; for rows missing at the end, the id right
    after the last row left. ``checkpoints`` counts the checkpoint events found in the rows
    (their signatures were checked only if ``signatures_checked``); ``unsigned`` counts the
    rows after the last of them.
    """

    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    checkpoints: int = 0
    signatures_checked: bool = False
    last_checkpoint_id: int | None = None
    last_checkpoint_at: str | None = None
    unsigned: int = 0


@dataclass(frozen=True)
class _Expected:
    hash: str
    by: str  # what says so, for the report
    signed: bool  # said by a signed checkpoint (a mismatch means a rewrite, not a slip)
    last: bool  # and no event follows
    row_id: int | None  # the row to name if it does not hold (None: where it shows)


class ChainCheck:
    """Recompute the chain one row at a time; ``report`` says whether and where it breaks."""

    def __init__(self, *, public_keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys = {key_id(key): key for key in public_keys}
        self._expected: dict[int, list[_Expected]] = {}
        self._prev_hash = GENESIS
        self._rows = 0
        self._last_id = 0
        self._checkpoints = 0
        self._last_checkpoint: SignedCheckpoint | None = None
        self._last_checkpoint_id: int | None = None
        self._last_checkpoint_rows = 0
        self._broken: tuple[int | None, str] | None = None

    def expect(
        self, rows: int, tail: str, *, by: str, signed: bool = False, last: bool = False,
        row_id: int | None = None,
    ) -> None:
        """Say the chain's first ``rows`` events end in the hash ``tail`` (``by`` says who).

        ``signed``: by a checkpoint whose signature was checked. ``last``: and the chain holds
        no more (the rows were read with ``by`` at one instant). ``row_id``: the row to name if
        it does not hold (a checkpoint's own), rather than the row where it shows.
        """
        self._expected.setdefault(rows, []).append(_Expected(tail, by, signed, last, row_id))

    def add(self, row: AuditRow) -> bool:
        """Check the next row; tell whether the chain still holds (stop adding once not)."""
        if self._broken is not None:
            return False
        if not self._rows and not self._holds_where_expected(row.id):
            return False
        ending = [said for said in self._expected.get(self._rows, []) if said.last]
        if ending:
            return self._break(row.id, f"{ending[0].by} counts {self._rows} events, yet this row "
                                       "follows them: it was inserted behind the "
                                       "application's back, or the tail was set back")
        if row.prev_hash != self._prev_hash:
            return self._break(row.id, "prev_hash does not match the row before")
        if row.hash != row_hash(row):
            return self._break(row.id, "content does not match its hash")
        if row.verb == CHECKPOINT_VERB and not self._checkpoint_holds(row):
            return False
        self._prev_hash = row.hash
        self._rows += 1
        self._last_id = row.id
        return self._holds_where_expected(row.id)

    def report(self) -> ChainReport:
        """Return the verdict on the rows added so far and everything expected of them."""
        if self._broken is None and not self._rows:
            self._holds_where_expected(None)
        if self._broken is None:
            missing = sorted(rows for rows in self._expected if rows > self._rows)
            if missing:
                rows = missing[0]
                said = self._expected[rows][0]
                where = f"row {self._last_id}" if self._rows else "no row at all"
                gone = rows - self._rows
                deleted = ("the newest row was deleted" if gone == 1 else
                           f"the newest {gone} rows were deleted")
                if not said.last:  # it knows of no later row: more may be gone
                    deleted = f"at least {deleted}"
                self._break(
                    self._last_id + 1,
                    f"{said.by} counts {rows} events ending in hash {said.hash[:12]}…, but the "
                    f"log ends after {self._rows} ({where}): {deleted}",
                )
        cut_at, reason = self._broken if self._broken is not None else (None, None)
        checkpoint = self._last_checkpoint
        return ChainReport(
            ok=self._broken is None,
            checked=self._rows,
            first_broken_id=cut_at,
            reason=reason,
            checkpoints=self._checkpoints,
            signatures_checked=bool(self._keys),
            last_checkpoint_id=self._last_checkpoint_id,
            last_checkpoint_at=checkpoint.checkpoint.at if checkpoint else None,
            unsigned=self._rows - self._last_checkpoint_rows,
        )

    def _break(self, row_id: int | None, reason: str) -> bool:
        self._broken = (row_id, reason)
        return False

    def _holds_where_expected(self, row_id: int | None) -> bool:
        for said in self._expected.get(self._rows, []):
            if said.hash == self._prev_hash:
                continue
            if said.signed:
                why = (f"{said.by} signs the chain's first {self._rows} events ending in hash "
                       f"{said.hash[:12]}…, they end in {self._prev_hash[:12]}…: "
                       f"{self._rewritten()}")
            else:
                why = (f"{said.by} says event {self._rows} is hashed {said.hash[:12]}…, the "
                       f"log's is {self._prev_hash[:12]}…: rows up to here were replaced and "
                       "their hashes recomputed, or the tail was altered")
            return self._break(said.row_id or row_id, why)
        return True

    def _rewritten(self) -> str:
        after = (f"after row {self._last_checkpoint_id} (the checkpoint before, which holds)"
                 if self._last_checkpoint_id is not None else "from the first row on")
        return f"rows were rewritten or removed and the hashes recomputed, {after}"

    def _checkpoint_holds(self, row: AuditRow) -> bool:
        try:
            signed = SignedCheckpoint.from_details(row.details)
        except CheckpointMalformed as exc:
            return self._break(row.id, f"checkpoint malformed: {exc}")
        checkpoint = signed.checkpoint
        if self._keys:
            key = self._keys.get(checkpoint.key_id)
            if key is None:
                known = ", ".join(sorted(self._keys))
                return self._break(row.id, f"checkpoint signed by key {checkpoint.key_id}, not "
                                           f"by one of the public keys given ({known})")
            if not signed.verifies_with(key):
                return self._break(row.id, "checkpoint signature does not verify: the "
                                           "checkpoint was altered")
        previous = self._last_checkpoint.signature if self._last_checkpoint else None
        if checkpoint.previous != previous:
            before = (f"row {self._last_checkpoint_id}" if self._last_checkpoint_id is not None
                      else "none")
            return self._break(row.id, f"checkpoint does not follow the checkpoint before it "
                                       f"({before}): a checkpoint was removed or the rows "
                                       "between them were rewritten")
        if (checkpoint.rows, checkpoint.tail) != (self._rows, self._prev_hash):
            return self._break(row.id, f"checkpoint signs the chain's first {checkpoint.rows} "
                                       f"events ending in hash {checkpoint.tail[:12]}…, the "
                                       f"log has {self._rows} ending in "
                                       f"{self._prev_hash[:12]}… before it: "
                                       f"{self._rewritten()}")
        self._checkpoints += 1
        self._last_checkpoint = signed
        self._last_checkpoint_id = row.id
        self._last_checkpoint_rows = self._rows + 1
        return True
