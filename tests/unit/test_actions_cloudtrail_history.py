"""The figures of a principal's CloudTrail history, computed from records (no AWS, no I/O)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.aws.clients import AwsError
from actions.aws.cloudtrail_history import (
    active_hours,
    hour_histogram,
    summarize,
    working_hours,
)
from actions.aws.cloudtrail_lookup import RateLimiter
from actions.aws.cloudtrail_records import PrincipalRef, mentions
from actions.aws.cloudtrail_s3 import days, logs_prefix, may_hold, written_at
from actions.aws.cloudtrail_sources import Reader, read_sources
from actions.base import ActionError
from tests import cloudtrail_samples as ct

WEEK_START = ct.ALERT_TIME - timedelta(days=7)
SEED_PRINCIPAL = PrincipalRef.parse(ct.USER_ARN)


def _summary(records: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "principal": SEED_PRINCIPAL,
        "start": WEEK_START,
        "end": ct.ALERT_TIME,
        "alert_time": ct.ALERT_TIME,
        "resource_ids": ct.INSTANCES,
    }
    arguments.update(kwargs)
    return summarize(records, **arguments)


def test_a_night_event_from_a_new_address_is_outside_a_week_of_daytime_work() -> None:
    night = ct.record(ct.ALERT_TIME, "TerminateInstances", ip=ct.NIGHT_IP, agent=ct.CONSOLE_AGENT)
    out = _summary([*ct.daytime_week(), night])

    assert out["principal_events"] == 57
    assert out["activity_by_hour"] == [7 if 9 <= h < 17 else 0 for h in range(24)]
    assert out["working_hours"] == {
        "start_hour": 9,
        "end_hour": 17,
        "hours": 8,
        "label": "09:00-17:00 UTC",
        "coverage": 1.0,
        "threshold": 0.9,
        "based_on_active_hours": 56,
        "based_on_events": 56,
        "events_inside": 56,
    }
    assert out["alert_event"] == {
        "time": "2020-11-06T03:21:39Z",
        "hour": 3,
        "outside_working_hours": True,
        "based_on_events": 56,
    }
    assert out["source_ips"] == [
        {"value": ct.OFFICE_IP, "count": 56, "first_seen": "2020-10-30T09:15:00Z",
         "last_seen": "2020-11-05T16:15:00Z", "seen_before_alert": True},
        {"value": ct.NIGHT_IP, "count": 1, "first_seen": "2020-11-06T03:21:39Z",
         "last_seen": "2020-11-06T03:21:39Z", "seen_before_alert": False},
    ]
    assert [(a["value"], a["count"], a["seen_before_alert"]) for a in out["user_agents"]] == [
        (ct.OFFICE_AGENT, 56, True),
        (ct.CONSOLE_AGENT, 1, False),
    ]


def test_an_event_inside_the_working_hours_is_not_flagged() -> None:
    midday = datetime(2020, 11, 6, 12, 30, tzinfo=UTC)
    out = _summary(
        [*ct.daytime_week(), ct.record(midday)],
        start=midday - timedelta(days=7),
        end=midday,
        alert_time=midday,
    )
    assert out["alert_event"]["outside_working_hours"] is False
    assert out["working_hours"]["label"] == "09:00-17:00 UTC"


def test_the_seed_case_reads_sign_ins_changes_and_the_instances_past() -> None:
    out = _summary(ct.seeded_history())

    # The night's sign-ins, 19 minutes before the event, are its lead-up: not the baseline.
    assert out["working_hours"]["label"] == "09:00-17:00 UTC"
    assert out["working_hours"]["based_on_events"] == 56
    assert out["working_hours"]["based_on_active_hours"] == 56
    assert out["working_hours"]["events_inside"] == 56
    assert out["alert_event"]["outside_working_hours"] is True
    assert out["activity_by_hour"][3] == 0
    assert out["lead_up"] == {"start": "2020-11-06T02:21:39Z", "end": "2020-11-06T03:21:39Z",
                              "events": 10, "by_hour": {"3": 10}}

    night = next(ip for ip in out["source_ips"] if ip["value"] == ct.NIGHT_IP)
    assert night == {
        "value": ct.NIGHT_IP, "count": 11, "first_seen": "2020-11-06T03:02:10Z",
        "last_seen": "2020-11-06T03:21:39Z", "seen_before_alert": True,
    }
    assert [(r["value"], r["count"]) for r in out["regions"]] == [
        ("us-east-2", 57), ("us-east-1", 10)
    ]

    sign_ins = out["console_sign_ins"]
    assert {k: v for k, v in sign_ins.items() if k != "sign_ins"} == {
        "successes": 1,
        "failures": 9,
        "successes_with_mfa": 0,
        "successes_without_mfa": 1,
        "last_success": "2020-11-06T03:02:23Z",
        "last_failure": "2020-11-06T03:02:18Z",
    }
    assert sign_ins["sign_ins"][0] == {
        "time": "2020-11-06T03:02:23Z", "outcome": "Success", "mfa_used": False,
        "source_ip": ct.NIGHT_IP, "error_message": None,
    }
    assert sign_ins["sign_ins"][1]["outcome"] == "Failure"

    assert out["principal_changes"] == [
        {
            "time": "2020-11-06T03:10:00Z",
            "event_name": "AttachUserPolicy",
            "category": "policy",
            "by": ct.ADMIN_ARN,
            "source_ip": "203.0.113.5",
            "succeeded": True,
            "error_code": None,
            "details": {
                "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
                "userName": ct.USER,
            },
        }
    ]

    first, second = out["resources"][ct.INSTANCES[0]], out["resources"][ct.INSTANCES[1]]
    assert first["by_event_name"] == {"StopInstances": 1, "TerminateInstances": 1}
    assert (first["events"], first["before_alert"]) == (2, 1)
    assert first["first_seen"] == "2020-11-03T11:00:00Z"
    assert first["recent"][-1] == {
        "time": "2020-11-03T11:00:00Z", "event_name": "StopInstances", "by": ct.ADMIN_ARN,
        "source_ip": ct.OFFICE_IP, "error_code": None,
    }
    assert second["by_event_name"] == {"TerminateInstances": 1}
    assert (second["events"], second["before_alert"]) == (1, 0)


def test_each_event_counts_once_and_only_inside_the_window() -> None:
    week = ct.daytime_week()
    early = ct.record(WEEK_START - timedelta(minutes=1))
    timeless = {**ct.record(ct.ALERT_TIME), "eventTime": "yesterday"}
    out = _summary([*week, *week[:10], early, timeless])
    assert out["principal_events"] == 56
    assert out["unreadable_records"] == 1


def test_an_empty_history_has_no_working_hours_and_judges_nothing() -> None:
    out = _summary([])
    assert out["working_hours"] is None
    assert out["alert_event"]["outside_working_hours"] is None
    assert out["alert_event"]["based_on_events"] == 0
    assert out["resources"][ct.INSTANCES[0]]["events"] == 0


def test_working_hours_wrap_past_midnight_for_a_night_shift() -> None:
    histogram = [0] * 24
    for hour in (22, 23, 0, 1, 2, 3, 4, 5):
        histogram[hour] = 5
    window = working_hours(histogram)
    assert window is not None
    assert (window.start, window.hours, window.end) == (22, 8, 6)
    assert window.contains(23) and window.contains(0) and not window.contains(12)
    assert window.describe(histogram)["label"] == "22:00-06:00 UTC"


def test_a_burst_counts_as_one_active_hour() -> None:
    day = datetime(2020, 11, 2, 3, tzinfo=UTC)
    burst = [day + timedelta(seconds=n) for n in range(500)]
    assert hour_histogram(burst)[3] == 500
    assert active_hours(burst)[3] == 1


@given(
    st.lists(st.integers(min_value=0, max_value=40), min_size=24, max_size=24).filter(any),
    st.sampled_from([0.5, 0.75, 0.8, 0.9, 0.95, 1.0]),
)
def test_working_hours_hold_the_coverage_and_no_shorter_span_does(
    histogram: list[int], coverage: float
) -> None:
    window = working_hours(histogram, coverage)
    assert window is not None
    total = sum(histogram)

    def held(start: int, length: int) -> int:
        return sum(histogram[(start + i) % 24] for i in range(length))

    assert window.inside == held(window.start, window.hours)
    assert window.inside >= coverage * total - 1e-9
    assert all(
        held(start, window.hours - 1) < coverage * total - 1e-9 for start in range(24)
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ct.USER_ARN, PrincipalRef(arn=ct.USER_ARN, name="Roboman1", account=ct.ACCOUNT,
                                   type="IAMUser")),
        ("arn:aws:iam::1:role/ops/Deployer", PrincipalRef(
            arn="arn:aws:iam::1:role/ops/Deployer", name="Deployer", account="1", type="Role")),
        ("arn:aws:sts::1:assumed-role/Deployer/alice@example.com", PrincipalRef(
            arn="arn:aws:sts::1:assumed-role/Deployer/alice@example.com", name="Deployer",
            account="1", type="AssumedRole", session="alice@example.com")),
        ("arn:aws:iam::1:root", PrincipalRef(arn="arn:aws:iam::1:root", name="root",
                                             account="1", type="Root")),
        ("AKIAIOSFODNN7EXAMPLE", PrincipalRef(access_key_id="AKIAIOSFODNN7EXAMPLE")),
        ("Roboman1", PrincipalRef(name="Roboman1")),
    ],
)
def test_a_principal_is_read_from_an_arn_a_key_id_or_a_name(
    value: str, expected: PrincipalRef
) -> None:
    assert PrincipalRef.parse(value) == expected


def _assumed(role: str, session: str, account: str = ct.ACCOUNT) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLESESSION01",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}",
                              "userName": role}
        },
    }


def test_a_role_matches_every_session_and_a_session_arn_only_its_own() -> None:
    alice = ct.record(ct.ALERT_TIME, identity=_assumed("Deployer", "alice"))
    bob = ct.record(ct.ALERT_TIME, identity=_assumed("Deployer", "bob"))
    other = ct.record(ct.ALERT_TIME, identity=_assumed("Reader", "alice"))
    role = PrincipalRef.parse(f"arn:aws:iam::{ct.ACCOUNT}:role/Deployer")
    session = PrincipalRef.parse(f"arn:aws:sts::{ct.ACCOUNT}:assumed-role/Deployer/alice")
    key = PrincipalRef.parse("ASIAEXAMPLESESSION01")
    assert [role.acted(r) for r in (alice, bob, other)] == [True, True, False]
    assert [session.acted(r) for r in (alice, bob, other)] == [True, False, False]
    assert [key.acted(r) for r in (alice, bob, other)] == [True, True, True]
    assert PrincipalRef(name="Deployer").acted(bob)
    assert PrincipalRef(name="Deployer", type="AssumedRole", session="bob").acted(bob)


def test_a_name_matches_only_in_the_principals_account() -> None:
    failed = ct.console_login(ct.SIGN_IN_AT, success=False, mfa=False, ip=ct.NIGHT_IP)
    assert "arn" not in failed["userIdentity"]
    assert SEED_PRINCIPAL.acted(failed)  # by name: a failed sign-in carries no ARN
    assert not PrincipalRef(name=ct.USER, account="999999999999").acted(failed)
    assert not PrincipalRef(name=ct.USER, type="Role").acted(failed)


def test_a_change_targets_the_user_named_in_it_or_the_user_changing_itself() -> None:
    own_key = ct.record(ct.ALERT_TIME, "CreateAccessKey", source="iam.amazonaws.com",
                        request={}, response={"accessKey": {"accessKeyId": "AKIANEWKEY0000000001",
                                                            "status": "Active"}})
    admin = ct.user_identity(ct.ADMIN_ARN)
    admins_key = ct.record(ct.ALERT_TIME, "CreateAccessKey", source="iam.amazonaws.com",
                           identity=admin, request={})
    for_user = ct.record(ct.ALERT_TIME, "DeleteLoginProfile", source="iam.amazonaws.com",
                         identity=admin, request={"userName": ct.USER})
    role_named_alike = ct.record(ct.ALERT_TIME, "AttachRolePolicy", source="iam.amazonaws.com",
                                 identity=admin, request={"roleName": ct.USER})
    assert SEED_PRINCIPAL.targeted(own_key) == "access_key"
    assert SEED_PRINCIPAL.targeted(admins_key) is None
    assert SEED_PRINCIPAL.targeted(for_user) == "password"
    assert SEED_PRINCIPAL.targeted(role_named_alike) is None
    out = _summary([own_key])
    assert out["principal_changes"][0]["details"] == {"accessKeyId": "AKIANEWKEY0000000001"}


def test_a_resource_is_mentioned_by_id_or_by_arn() -> None:
    by_arn = ct.record(ct.ALERT_TIME, resources=[
        {"ARN": f"arn:aws:ec2:us-east-2:{ct.ACCOUNT}:instance/i-2oc7w12"}])
    assert mentions(by_arn, "i-2oc7w12")
    assert mentions(ct.terminate(), "i-eob7w13")
    assert not mentions(ct.terminate(), "i-2oc7w1")


def test_the_rate_limiter_spaces_calls_per_account_and_region() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, clock=lambda: now[0])
    key, other = ("123456789012", "us-east-1"), ("123456789012", "eu-west-1")
    assert [limiter.delay(key) for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert limiter.delay(other) == 0.0  # another region has its own bucket
    now[0] = 10.0  # idle long enough: the debt is paid, the bucket is full again (one token)
    assert [limiter.delay(key) for _ in range(2)] == [0.0, 0.5]


def test_the_rate_limiter_is_safe_across_threads() -> None:
    limiter = RateLimiter(2.0, clock=lambda: 0.0)
    delays: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            pause = limiter.delay(("a", "r"))
            with lock:
                delays.append(pause)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 100 calls at one instant: each waits its own slot, half a second apart, none shared.
    assert sorted(delays) == [n * 0.5 for n in range(100)]


def test_a_wait_for_the_rate_limit_ends_when_the_step_is_cancelled() -> None:
    cancelled = threading.Event()
    cancelled.set()
    limiter = RateLimiter(2.0, clock=lambda: 0.0)
    assert limiter.acquire(("a", "r"), cancelled) == 0.0
    with pytest.raises(ActionError) as error:
        limiter.acquire(("a", "r"), cancelled)
    assert error.value.code == "Cancelled"


def test_log_files_are_listed_by_day_and_skipped_by_their_write_time() -> None:
    start = datetime(2020, 10, 30, 3, 21, 39, tzinfo=UTC)
    end = datetime(2020, 11, 5, 23, 30, tzinfo=UTC)
    assert days(start, end)[0].isoformat() == "2020-10-30"
    assert days(start, end)[-1].isoformat() == "2020-11-06"  # delivery may cross midnight
    assert len(days(start, end)) == 8
    assert logs_prefix("", "1") == "AWSLogs/1/CloudTrail/"
    assert logs_prefix("/trail/", "1") == "trail/AWSLogs/1/CloudTrail/"
    name = "AWSLogs/1/CloudTrail/us-east-1/2020/10/30/1_CloudTrail_us-east-1_{}_abc.json.gz"
    assert written_at(name.format("20201030T0321Z")) == datetime(2020, 10, 30, 3, 21, tzinfo=UTC)
    assert may_hold(name.format("20201030T0321Z"), start, end)  # may hold 03:21:39-03:21:59
    assert not may_hold(name.format("20201030T0320Z"), start, end)
    assert may_hold(name.format("20201106T0030Z"), start, end)
    assert not may_hold(name.format("20201106T0031Z"), start, end)
    assert not may_hold("AWSLogs/1/CloudTrail/us-east-1/2020/10/30/notes.txt", start, end)


def test_the_alerts_principal_is_read_with_its_key_and_session() -> None:
    session_arn = f"arn:aws:sts::{ct.ACCOUNT}:assumed-role/Deployer/alice"
    assumed = PrincipalRef.from_alert({"type": "AssumedRole", "name": "Deployer",
                                       "arn": session_arn, "access_key_id": "ASIAEXAMPLE000001",
                                       "account": ct.ACCOUNT})
    assert assumed == PrincipalRef(arn=session_arn, name="Deployer",
                                   access_key_id="ASIAEXAMPLE000001", account=ct.ACCOUNT,
                                   type="AssumedRole", session="alice")
    assert assumed.lookup_username == "alice"  # LookupEvents knows a session by its name
    role = PrincipalRef.from_alert({"type": "AssumedRole", "name": "Deployer"})
    assert role is not None and (role.type, role.lookup_username) == ("Role", None)
    assert PrincipalRef.from_alert({"type": "IAMUser"}) is None
    assert PrincipalRef.from_alert(None) is None


# --- Reading several sources: one failing never discards the others ----------------------------


def _gives(*records: dict[str, Any]) -> Reader:
    return lambda: (list(records), {"events": len(records)})


def _fails(error: Exception) -> Reader:
    def read() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        raise error
    return read


def test_a_failing_source_is_reported_and_the_others_records_kept() -> None:
    first, second = ct.record(ct.ALERT_TIME), ct.record(WEEK_START)
    throttled = AwsError("ThrottlingException", "Rate exceeded", operation="LookupEvents")

    read = read_sources(["lookup_events", "s3", "ingested"], {
        "lookup_events": _fails(throttled), "s3": _gives(first), "ingested": _gives(second),
    })

    assert read.records == [first, second]
    assert read.sources == {
        "lookup_events": {"read": False, "error": {
            "code": "ThrottlingException", "message": "LookupEvents: Rate exceeded"}},
        "s3": {"read": True, "events": 1},
        "ingested": {"read": True, "events": 1},
    }
    assert read.read == ["s3", "ingested"]
    assert read.failed == {"lookup_events": "ThrottlingException: LookupEvents: Rate exceeded"}
    assert read.as_output() == {"sources": read.sources, "read": read.read,
                                "failed": read.failed}


def test_every_source_failing_fails_naming_each_and_retryable_if_one_is() -> None:
    with pytest.raises(ActionError) as error:
        read_sources(["s3", "ingested"], {
            "s3": _fails(AwsError("AccessDenied", "Access Denied", operation="ListObjectsV2")),
            "ingested": _fails(ActionError("SourceUnavailable", "no database",
                                           retryable=False)),
        })
    assert error.value.code == "SourcesUnreadable"
    assert error.value.message == (
        "no CloudTrail source could be read: s3: AccessDenied: ListObjectsV2: Access Denied; "
        "ingested: SourceUnavailable: no database"
    )
    assert error.value.retryable is True  # AccessDenied may be fixed and the step retried


@pytest.mark.parametrize(
    "error",
    [ActionError("Cancelled", "cancelled while reading CloudTrail logs", retryable=False),
     KeyError("eventTime")],
    ids=["cancelled", "a bug"],
)
def test_a_cancellation_or_a_bug_is_not_taken_for_an_unreadable_source(
    error: Exception,
) -> None:
    with pytest.raises(type(error)) as raised:
        read_sources(["s3", "ingested"], {"s3": _fails(error), "ingested": _gives()})
    assert raised.value is error
