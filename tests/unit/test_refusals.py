"""RefusalLedger: which anonymous refusals get rows of their own, and the summaries of the rest."""

from __future__ import annotations

import pytest

from api.refusals import SUMMARY_ADDRESSES, TRACKED_ADDRESSES, RefusalLedger


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_each_address_gets_its_own_rows_up_to_its_share_then_is_summed_up(clock: Clock) -> None:
    ledger = RefusalLedger(per_address=3, per_minute=100, clock=clock)
    admitted = [ledger.admit("203.0.113.1", "missing") for _ in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    assert ledger.admit("203.0.113.2", "not_live") is True
    assert ledger.take_summaries() == []  # the minute is not over

    clock.now += 60
    [summary] = ledger.take_summaries()
    assert (summary.recorded, summary.unrecorded) == (4, 7)
    assert summary.by_address == {"203.0.113.1": 7}
    assert summary.other_addresses == 0
    assert summary.by_why == {"missing": 7}
    assert summary.seconds == 60
    # A new minute: the address has its share again.
    assert ledger.admit("203.0.113.1", "missing") is True


def test_all_addresses_together_get_at_most_the_minutes_rows(clock: Clock) -> None:
    ledger = RefusalLedger(per_address=5, per_minute=30, clock=clock)
    admitted = [ledger.admit(f"198.51.100.{n % 250}", "missing") for n in range(5000)]
    assert sum(admitted) == 30
    [summary] = ledger.take_summaries(end_window=True)
    assert summary.recorded + summary.unrecorded == 5000
    assert len(summary.by_address) == SUMMARY_ADDRESSES
    assert sum(summary.by_address.values()) + summary.other_addresses == summary.unrecorded


def test_a_flood_from_countless_addresses_keeps_the_ledger_small(clock: Clock) -> None:
    ledger = RefusalLedger(per_address=1, per_minute=0, clock=clock)
    count = TRACKED_ADDRESSES * 3
    assert not any(ledger.admit(f"2001:db8::{n:x}", "sns_unproven") for n in range(count))
    [summary] = ledger.take_summaries(end_window=True)
    assert summary.unrecorded == count
    assert sum(summary.by_address.values()) + summary.other_addresses == count


def test_a_minute_with_every_refusal_recorded_needs_no_summary(clock: Clock) -> None:
    ledger = RefusalLedger(per_address=5, per_minute=30, clock=clock)
    assert ledger.admit("203.0.113.1", "missing")
    clock.now += 120
    assert ledger.take_summaries() == []


def test_ending_the_window_at_shutdown_sums_up_the_minute_so_far(clock: Clock) -> None:
    ledger = RefusalLedger(per_address=0, per_minute=0, clock=clock)
    ledger.admit("203.0.113.1", "wrong_basic")
    clock.now += 12.5
    [summary] = ledger.take_summaries(end_window=True)
    assert (summary.unrecorded, summary.seconds) == (1, 12.5)
    assert ledger.take_summaries(end_window=True) == []
