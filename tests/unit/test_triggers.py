"""Trigger decisions without I/O: filters, correlation keys, threshold groups, counted units and
the sliding window that decides when a threshold fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Settings
from engine.alerts import NormalizedAlert, trigger_matches
from engine.spec import Trigger
from engine.triggers import (
    KEY_FIELDS,
    Counted,
    Window,
    burst_window,
    correlation_key,
    counted_units,
    field_value,
    threshold_group,
)

T0 = datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)
SETTINGS = Settings(production_tags=["Environment=production"], production_instances=["i-listed"])


def alert(**fields: Any) -> NormalizedAlert:
    base: dict[str, Any] = {
        "source": "cloudtrail", "kind": "api-call", "type": "TerminateInstances",
        "title": "TerminateInstances by Roboman1", "severity": 0,
        "severity_label": "INFORMATIONAL", "event_name": "TerminateInstances",
        "principal": {"type": "IAMUser", "name": "Roboman1",
                      "arn": "arn:aws:iam::0123456789:user/Development/Roboman1"},
    }
    return NormalizedAlert.model_validate({**base, **fields})


def instance(instance_id: str, **tags: str) -> dict[str, Any]:
    return {"type": "AwsEc2Instance", "id": instance_id, "tags": tags}


def trigger(**fields: Any) -> Trigger:
    return Trigger.model_validate(fields)


# ---------------------------------------------------------------------------------------------
# Filters


def test_event_name_filter_matches_any_of_the_names() -> None:
    wanted = trigger(event_name=["TerminateInstances", "DeleteInstances"])
    assert trigger_matches(wanted, alert(), is_production=SETTINGS.is_production)
    other = alert(event_name="StopInstances", type="StopInstances")
    assert not trigger_matches(wanted, other, is_production=SETTINGS.is_production)
    assert not trigger_matches(wanted, alert(event_name=None), is_production=None)


@pytest.mark.parametrize(
    ("resources", "matches"),
    [
        ([instance("i-1", Environment="production")], True),
        ([instance("i-1")], True),  # CloudTrail carries no tags: unknown counts as production
        ([instance("i-listed", Environment="dev")], True),  # listed by id whatever its tags
        ([instance("i-1", Environment="dev")], False),  # tags known, none production
        ([instance("i-1", Environment="dev"), instance("i-2")], True),
        ([{"type": "AwsS3Bucket", "id": "logs"}], False),  # only instances are production
        ([], False),
    ],
    ids=["tagged", "tags-unknown", "listed", "known-non-production", "one-of-two", "bucket",
         "none"],
)
def test_production_filter_never_misses_an_instance_whose_tags_are_unknown(
    resources: list[dict[str, Any]], matches: bool
) -> None:
    wanted = trigger(resources={"production": True})
    found = trigger_matches(wanted, alert(resources=resources),
                            is_production=SETTINGS.is_production)
    assert found is matches


def test_without_settings_every_instance_may_be_production() -> None:
    wanted = trigger(resources={"production": True})
    dev = alert(resources=[instance("i-1", Environment="dev")])
    assert trigger_matches(wanted, dev, is_production=None)


def test_resource_type_filter() -> None:
    wanted = trigger(resources={"type": ["AwsS3Bucket"]})
    assert trigger_matches(wanted, alert(resources=[{"type": "AwsS3Bucket", "id": "logs"}]),
                           is_production=None)
    assert not trigger_matches(wanted, alert(resources=[instance("i-1")]), is_production=None)


# ---------------------------------------------------------------------------------------------
# Keys and groups


def test_every_key_field_is_readable_on_an_alert() -> None:
    sample = alert(account="0123456789", source_ip="180.163.251.231", mfa_used=False)
    values = {path: field_value(sample, path) for path in KEY_FIELDS}
    assert values["principal.arn"] == "arn:aws:iam::0123456789:user/Development/Roboman1"
    assert values["type"] == "TerminateInstances"
    assert values["mfa_used"] is False
    assert values["principal.access_key_id"] is None
    assert {"resources", "details", "event_time", "dedup_key", "principal"}.isdisjoint(KEY_FIELDS)


def test_correlation_keys_are_equal_exactly_when_the_fields_are() -> None:
    correlate = trigger(correlate={"by": ["principal.arn", "type"], "within": "1h"}).correlate
    assert correlate is not None
    first = correlation_key(correlate, alert(title="one"))
    assert first is not None and len(first) == 64
    assert correlation_key(correlate, alert(title="two", severity=90)) == first
    assert correlation_key(correlate, alert(type="RunInstances")) != first
    other_user = alert(principal={"arn": "arn:aws:iam::0123456789:user/other"})
    assert correlation_key(correlate, other_user) != first


def test_an_alert_lacking_a_correlation_field_is_related_to_nothing() -> None:
    correlate = trigger(correlate={"by": ["principal.arn"], "within": "1h"}).correlate
    assert correlate is not None
    assert correlation_key(correlate, alert(principal=None)) is None
    assert correlation_key(correlate, alert(principal={"name": "alice"})) is None


def test_events_lacking_a_group_field_form_one_group_of_their_own() -> None:
    threshold = trigger(threshold={"count": 2, "within": "5m", "group_by": "principal.arn"})
    assert threshold.threshold is not None
    anonymous = threshold_group(threshold.threshold, alert(principal=None))
    assert anonymous == threshold_group(threshold.threshold, alert(principal={"name": "x"}))
    assert anonymous != threshold_group(threshold.threshold, alert())


def test_a_correlation_key_never_equals_a_threshold_group_of_the_same_fields() -> None:
    both = {"within": "1h"}
    correlate = trigger(correlate={"by": ["type"], **both}).correlate
    threshold = trigger(threshold={"count": 1, "group_by": ["type"], **both}).threshold
    assert correlate is not None and threshold is not None
    assert correlation_key(correlate, alert()) != threshold_group(threshold, alert())


# ---------------------------------------------------------------------------------------------
# Counted units


def test_events_count_one_each() -> None:
    counting = trigger(threshold={"count": 20, "within": "5m"})
    many = alert(resources=[instance("i-1"), instance("i-2")])
    assert counted_units(counting, many, "alert-1", None) == ["alert-1"]


def test_count_resources_counts_the_instances_that_pass_the_filter() -> None:
    counting = trigger(
        threshold={"count": 20, "within": "5m", "count_resources": True},
        resources={"production": True},
    )
    many = alert(resources=[
        instance("i-1"), instance("i-2", Environment="dev"),
        instance("i-3", Environment="production"), instance("i-1"),
        {"type": "AwsS3Bucket", "id": "logs"},
    ])
    assert counted_units(counting, many, "alert-1", SETTINGS.is_production) == [
        "AwsEc2Instance:i-1", "AwsEc2Instance:i-3",
    ]


def test_count_resources_without_a_filter_counts_every_resource() -> None:
    counting = trigger(threshold={"count": 20, "within": "5m", "count_resources": True})
    named = alert(resources=[instance("i-1"), {"type": "AwsS3Bucket", "id": "logs"}])
    assert counted_units(counting, named, "alert-1", None) == [
        "AwsEc2Instance:i-1", "AwsS3Bucket:logs",
    ]
    assert counted_units(counting, alert(), "alert-2", None) == []


# ---------------------------------------------------------------------------------------------
# The sliding window


def events(*minutes: float, unit: str | None = None) -> list[Counted]:
    return [
        Counted(unit or f"e{i}", T0 + timedelta(minutes=m)) for i, m in enumerate(minutes)
    ]


def test_below_the_count_nothing_fires() -> None:
    assert burst_window(events(0, 1, 2), at=T0, count=4, within=FIVE_MINUTES) is None


def test_the_event_that_completes_the_count_fires_with_the_earliest_window() -> None:
    found = burst_window(events(0, 1, 2, 3), at=T0 + timedelta(minutes=3), count=4,
                         within=FIVE_MINUTES)
    assert found == Window(T0, T0 + FIVE_MINUTES)


def test_an_event_arriving_late_completes_the_window_it_belongs_to() -> None:
    # Events at 1, 2, 3 arrived; the one at 0 comes last, out of order.
    found = burst_window(events(1, 2, 3, 0), at=T0, count=4, within=FIVE_MINUTES)
    assert found == Window(T0, T0 + FIVE_MINUTES)


def test_events_further_apart_than_the_window_do_not_add_up() -> None:
    assert burst_window(events(0, 2, 4, 6), at=T0 + timedelta(minutes=6), count=4,
                        within=FIVE_MINUTES) is None


def test_both_ends_of_the_window_are_inside_it() -> None:
    found = burst_window(events(0, 5), at=T0 + timedelta(minutes=5), count=2,
                         within=FIVE_MINUTES)
    assert found == Window(T0, T0 + FIVE_MINUTES)


def test_a_unit_seen_twice_in_a_window_counts_once() -> None:
    same_instance = events(0, 1, 2, unit="AwsEc2Instance:i-1")
    assert burst_window(same_instance, at=T0, count=2, within=FIVE_MINUTES) is None


def test_a_window_holding_enough_units_but_not_the_new_event_is_not_its_business() -> None:
    # Only windows that hold `at` are looked at: the others were checked when they filled.
    assert burst_window(events(0, 1, 10), at=T0 + timedelta(minutes=10), count=2,
                        within=FIVE_MINUTES) is None


@given(
    st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=25),
    st.integers(min_value=1, max_value=8),
    st.integers(min_value=1, max_value=10),
    st.data(),
)
def test_the_window_found_is_the_earliest_that_holds_the_event_and_enough_units(
    minutes: list[int], count: int, span: int, data: st.DataObject
) -> None:
    counted = [Counted(f"u{i % 7}", T0 + timedelta(minutes=m)) for i, m in enumerate(minutes)]
    at = data.draw(st.sampled_from(counted)).event_time
    within = timedelta(minutes=span)

    def units_in(start: datetime) -> int:
        return len({c.unit for c in counted if start <= c.event_time <= start + within})

    qualifying = sorted(
        c.event_time for c in counted
        if c.event_time <= at <= c.event_time + within and units_in(c.event_time) >= count
    )
    found = burst_window(counted, at=at, count=count, within=within)
    if not qualifying:
        assert found is None
    else:
        assert found == Window(qualifying[0], qualifying[0] + within)
