"""aws.cloudtrail.principal_history on seeded history: LookupEvents, the trail's bucket, ingested.

moto's LookupEvents does not return the events it is given to look up (it answers from its own
trail model, which no test can seed with a week of history), so the LookupEvents source is
tested with botocore's Stubber: it plays AWS's pages, and checks every request (attribute,
window, page token). Its rate limiter runs on an injected clock, so waiting costs no real time.
The S3 source runs against moto's S3 with real gzip log files; the ingested source against a
real SQLite database filled through ``ingest_alert``.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionMaker

from actions.aws import cloudtrail as principal_history
from actions.aws.clients import Client
from actions.aws.cloudtrail_ingested import IngestedReport, ingested_records
from actions.aws.cloudtrail_lookup import RateLimiter
from actions.aws.cloudtrail_records import PrincipalRef, relevant
from actions.base import ActionError, RunEnv
from engine.alerts import template_view
from engine.normalize import normalize_cloudtrail_record, normalize_eventbridge
from engine.store.alerts import ingest_alert
from engine.store.db import make_engine, make_sessionmaker
from tests import cloudtrail_samples as ct
from tests.aws_sandbox import OWN_ACCOUNT, AwsSandbox

NAME = "aws.cloudtrail.principal_history"
WEEK_START = ct.ALERT_TIME - timedelta(days=7)
BUCKET = "org-trail-logs"
assert ct.ACCOUNT == OWN_ACCOUNT  # the seeded account is the one Riposte's credentials are in


def _alert() -> dict[str, Any]:
    """The seed's alert as a run sees it: the TerminateInstances record, normalized."""
    return template_view("alert-1", normalize_cloudtrail_record(ct.terminate()))


def _by(records: list[dict[str, Any]], **where: str) -> list[dict[str, Any]]:
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]


def _assert_seed_figures(out: dict[str, Any]) -> None:
    """The figures the seed's week and night give, whatever source they were read from."""
    assert out["window"] == {"start": "2020-10-30T03:21:39Z", "end": "2020-11-06T03:21:39Z"}
    assert out["principal"]["name"] == ct.USER
    assert out["working_hours"]["label"] == "09:00-17:00 UTC"
    # The night's ten sign-ins, 19 minutes before, are the event's lead-up, not its baseline.
    assert out["working_hours"]["based_on_events"] == 56
    assert out["alert_event"] == {
        "time": "2020-11-06T03:21:39Z", "hour": 3, "outside_working_hours": True,
        "based_on_events": 56,
    }
    assert out["activity_by_hour"] == [7 if 9 <= h < 17 else 0 for h in range(24)]
    assert out["lead_up"] == {"start": "2020-11-06T02:21:39Z", "end": "2020-11-06T03:21:39Z",
                              "events": 10, "by_hour": {"3": 10}}
    assert [(ip["value"], ip["count"], ip["first_seen"]) for ip in out["source_ips"]] == [
        (ct.OFFICE_IP, 56, "2020-10-30T09:15:00Z"),
        (ct.NIGHT_IP, 11, "2020-11-06T03:02:10Z"),
    ]
    assert out["console_sign_ins"]["failures"] == 9
    assert out["console_sign_ins"]["successes_without_mfa"] == 1
    assert [c["event_name"] for c in out["principal_changes"]] == ["AttachUserPolicy"]
    assert out["resources"][ct.INSTANCES[0]]["by_event_name"] == {
        "StopInstances": 1, "TerminateInstances": 1
    }
    assert out["resources"][ct.INSTANCES[0]]["before_alert"] == 1
    assert out["events"] == 56 + 10 + 1 + 1 + 1  # the week, sign-ins, stop, policy, terminate


# --- LookupEvents (botocore Stubber) ---------------------------------------------------------


class FakeClock:
    """Time that passes only when the rate limiter waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, _cancelled: object, seconds: float) -> bool:
        self.now += seconds
        self.slept += seconds
        return False


def _event(record: dict[str, Any]) -> dict[str, Any]:
    """A LookupEvents event carrying ``record`` as its CloudTrailEvent."""
    return {
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "EventTime": datetime.fromisoformat(record["eventTime"]),
        "EventSource": record["eventSource"],
        "Username": record["userIdentity"].get("userName", ""),
        "CloudTrailEvent": json.dumps(record),
    }


class StubbedCloudTrail:
    """CloudTrail clients per region whose LookupEvents answers are queued pages."""

    def __init__(self, env: RunEnv, clock: FakeClock) -> None:
        self.env = env
        self.clock = clock
        self.real_client = env.aws.client
        self.clients: dict[str, Client] = {}
        self.stubs: dict[str, Stubber] = {}
        self.calls: list[tuple[str, float]] = []  # region, clock time of the call

    def client(self, service: str, *, account: str | None = None,
               region: str | None = None) -> Client:
        assert service == "cloudtrail" and region is not None
        if region not in self.clients:
            client = self.real_client(service, account=account, region=region)
            client._client.meta.events.register(
                # Stubber answers at before-call, before any handler of ours could see it.
                "before-parameter-build.cloudtrail.LookupEvents",
                lambda region=region, **_: self.calls.append((region, self.clock.now)),
            )
            self.stubs[region] = Stubber(client._client)
            self.stubs[region].activate()
            self.clients[region] = client
        return self.clients[region]

    def expect(self, region: str, attribute: str, value: str,
               pages: list[list[dict[str, Any]]], *, start: datetime = WEEK_START,
               end: datetime = ct.ALERT_TIME) -> None:
        self.client("cloudtrail", region=region)
        for number, page in enumerate(pages):
            request: dict[str, Any] = {
                "LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}],
                "StartTime": start,
                "EndTime": end,
                "MaxResults": 50,
            }
            answer: dict[str, Any] = {"Events": [_event(r) for r in page]}
            if number:
                request["NextToken"] = f"{value}-page-{number}"
            if number < len(pages) - 1:
                answer["NextToken"] = f"{value}-page-{number + 1}"
            self.stubs[region].add_response("lookup_events", answer, request)


def stub_cloudtrail(
    aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch, module: Any, alert: dict[str, Any]
) -> StubbedCloudTrail:
    """A run on ``alert``: CloudTrail clients stubbed, ``module``'s rate limiter on a fake
    clock."""
    clock = FakeClock()
    monkeypatch.setattr(module, "LIMITER", RateLimiter(2.0, clock=clock.time, sleep=clock.sleep))
    env = aws.env(alert=alert)
    stubs = StubbedCloudTrail(env, clock)
    monkeypatch.setattr(env.aws, "client", stubs.client)
    return stubs


@pytest.fixture
def stubbed(aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> StubbedCloudTrail:
    """A run on the seed's alert."""
    return stub_cloudtrail(aws, monkeypatch, principal_history, _alert())


def test_lookup_events_pages_every_query_within_the_rate_limit(
    aws: AwsSandbox, stubbed: StubbedCloudTrail
) -> None:
    history = ct.seeded_history()
    own = [r for r in history if r["userIdentity"].get("userName") == ct.USER]
    east2, east1 = _by(own, awsRegion="us-east-2"), _by(own, awsRegion="us-east-1")
    assert (len(east2), len(east1)) == (57, 10)
    stop = _by(history, eventName="StopInstances")
    policy = _by(history, eventName="AttachUserPolicy")

    # Every query's pages, in the order the action asks them.
    stubbed.expect("us-east-2", "Username", ct.USER, [east2[:50], east2[50:]])
    stubbed.expect("us-east-1", "Username", ct.USER, [east1])
    stubbed.expect("us-east-1", "ResourceName", ct.USER, [policy])
    stubbed.expect("us-east-2", "ResourceName", ct.INSTANCES[0], [stop, [history[-1]]])
    stubbed.expect("us-east-2", "ResourceName", ct.INSTANCES[1], [[history[-1]]])

    out = aws.act(NAME, {}, env=stubbed.env).output

    for stub in stubbed.stubs.values():
        stub.assert_no_pending_responses()
    _assert_seed_figures(out)
    report = out["sources"]["lookup_events"]
    assert report["calls"] == 7
    assert report["events"] == 69  # the terminate was found three times, and counts once
    assert report["truncated"] is False
    assert [(q["region"], q["attribute"], q["value"], q["events"]) for q in report["queries"]] == [
        ("us-east-2", "Username", ct.USER, 57),
        ("us-east-1", "Username", ct.USER, 10),
        ("us-east-1", "ResourceName", ct.USER, 1),
        ("us-east-2", "ResourceName", ct.INSTANCES[0], 2),
        ("us-east-2", "ResourceName", ct.INSTANCES[1], 1),
    ]
    # Two requests a second per account and region, never faster; the waits were the clock's.
    times: dict[str, list[float]] = defaultdict(list)
    for region, moment in stubbed.calls:
        times[region].append(moment)
    assert {region: len(t) for region, t in times.items()} == {"us-east-2": 5, "us-east-1": 2}
    for moments in times.values():
        assert all(b - a >= 0.5 - 1e-9 for a, b in zip(moments, moments[1:], strict=False))
    assert report["waited_seconds"] == pytest.approx(stubbed.clock.slept)
    assert stubbed.clock.slept >= 2.0


def test_a_query_stops_at_max_events_and_says_it_is_truncated(
    aws: AwsSandbox, stubbed: StubbedCloudTrail
) -> None:
    week = ct.daytime_week()
    stubbed.expect("us-east-2", "Username", ct.USER, [week[:50], week[50:]])

    out = aws.act(NAME, {"max_events": 30, "resources": []}, env=stubbed.env).output

    assert out["sources"]["lookup_events"]["truncated"] is True
    assert out["sources"]["lookup_events"]["calls"] == 1  # no further page, no further query
    assert out["principal_events"] == 30


def test_a_role_without_a_session_cannot_be_selected_by_lookup_events(
    aws: AwsSandbox, stubbed: StubbedCloudTrail
) -> None:
    stubbed.expect("us-east-1", "ResourceName", "Deployer", [[]])

    out = aws.act(NAME, {"principal": f"arn:aws:iam::{ct.ACCOUNT}:role/Deployer",
                         "resources": []}, env=stubbed.env).output

    assert "s3 or ingested" in out["sources"]["lookup_events"]["note"]
    assert out["sources"]["lookup_events"]["calls"] == 1  # only the changes to the role


def test_a_missing_principal_and_an_unknown_source_are_clear_step_errors(aws: AwsSandbox) -> None:
    env = aws.env(alert={"account": ct.ACCOUNT})
    with pytest.raises(ActionError) as missing:
        aws.act(NAME, {}, env=env)
    assert missing.value.code == "NoPrincipal"
    with pytest.raises(ActionError) as unknown:
        aws.act(NAME, {"principal": ct.USER, "sources": ["splunk"]}, env=env)
    assert unknown.value.code == "InvalidSources"
    with pytest.raises(ActionError) as window:
        aws.act(NAME, {"principal": ct.USER, "end": "2020-01-01T00:00:00Z",
                       "start": "2020-02-01T00:00:00Z"}, env=env)
    assert window.value.code == "InvalidWindow"


# --- The trail's bucket (moto S3) -------------------------------------------------------------


def _log_key(account: str, region: str, written: datetime, unique: str) -> str:
    return (
        f"AWSLogs/{account}/CloudTrail/{region}/{written:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{written:%Y%m%dT%H%MZ}_{unique}.json.gz"
    )


def _put_log(s3: Any, key: str, records: list[dict[str, Any]]) -> None:
    body = gzip.compress(json.dumps({"Records": records}).encode())
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _seed_bucket(aws: AwsSandbox, history: list[dict[str, Any]]) -> None:
    """``history`` as a trail delivers it: a file per region and 5 minutes, and a few others."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    files: dict[tuple[str, datetime], list[dict[str, Any]]] = defaultdict(list)
    for record in history:
        moment = datetime.fromisoformat(record["eventTime"])
        written = moment.replace(second=0) + timedelta(minutes=5 - moment.minute % 5)
        files[(record["awsRegion"], written)].append(record)
    for number, ((region, written), records) in enumerate(sorted(files.items())):
        _put_log(s3, _log_key(ct.ACCOUNT, region, written, f"f{number:04d}"), records)
    # Written before the window opened: listed (same day) but not read.
    early = datetime(2020, 10, 30, 1, 0, tzinfo=UTC)
    _put_log(s3, _log_key(ct.ACCOUNT, "us-east-2", early, "early"),
             [ct.record(early - timedelta(minutes=3))])
    # A day before the window: never listed. Another account's logs: never listed.
    before = datetime(2020, 10, 28, 12, 0, tzinfo=UTC)
    _put_log(s3, _log_key(ct.ACCOUNT, "us-east-2", before, "old"), [ct.record(before)])
    _put_log(s3, _log_key("999999999999", "us-east-2", ct.ALERT_TIME, "other"),
             [ct.record(ct.ALERT_TIME)])
    # A damaged file in the window: reported, not fatal.
    s3.put_object(Bucket=BUCKET, Body=b"not gzip",
                  Key=_log_key(ct.ACCOUNT, "us-east-1", datetime(2020, 11, 1, 10, tzinfo=UTC),
                               "broken"))


@pytest.mark.parametrize("mode", ["live", "dry_run"])
def test_the_trails_log_files_give_the_same_figures(aws: AwsSandbox, mode: str) -> None:
    _seed_bucket(aws, ct.seeded_history())
    aws.settings = aws.settings.model_copy(
        update={"cloudtrail_bucket": BUCKET, "cloudtrail_sources": ["s3"]}
    )

    acted = aws.act(NAME, {}, env=aws.env(mode=mode, alert=_alert()))

    out = acted.output
    _assert_seed_figures(out)
    report = out["sources"]["s3"]
    assert report["regions"] == ["us-east-1", "us-east-2"]
    assert report["unreadable_files"] == [
        _log_key(ct.ACCOUNT, "us-east-1", datetime(2020, 11, 1, 10, tzinfo=UTC), "broken")
    ]
    assert report["truncated"] is False
    listed = [c.params.get("Prefix") for c in acted.sent if c.operation == "ListObjectsV2"]
    base = f"AWSLogs/{ct.ACCOUNT}/CloudTrail/"
    days = [(WEEK_START + timedelta(days=n)).strftime("%Y/%m/%d") for n in range(8)]
    assert listed == [base] + [f"{base}{region}/{day}/" for region in ("us-east-1", "us-east-2")
                               for day in days]
    read = [c.params["Key"] for c in acted.sent if c.operation == "GetObject"]
    assert not any("early" in key or "old" in key or "999999999999" in key for key in read)
    assert report["files_read"] == len(read) - 1  # every file read but the damaged one
    assert not acted.mutations


def test_the_s3_source_needs_a_bucket(aws: AwsSandbox) -> None:
    with pytest.raises(ActionError) as error:
        aws.act(NAME, {"sources": ["s3"]}, env=aws.env(alert=_alert()))
    assert error.value.code == "SourcesUnreadable"
    assert "s3: SourceUnavailable: " in error.value.message
    assert "RIPOSTE_CLOUDTRAIL_BUCKET" in error.value.message


# --- The events Riposte ingested (SQLite; PostgreSQL too when configured) ----------------------


def _ingest(sessions: SessionMaker[Session], records: list[dict[str, Any]]) -> None:
    with sessions.begin() as session:
        for number, record in enumerate(records):
            if number % 2:  # every other one as EventBridge delivers it
                event = {"version": "0", "id": f"evt-{number}", "source": "aws.ec2",
                         "detail-type": "AWS API Call via CloudTrail", "account": ct.ACCOUNT,
                         "time": record["eventTime"], "region": record["awsRegion"],
                         "resources": [], "detail": record}
                alert = normalize_eventbridge(event)[0]
            else:
                alert = normalize_cloudtrail_record(record)
            ingest_alert(session=session, alert=alert, playbooks={}, endpoint="test",
                         body_sha256="0" * 64, body_bytes=1, actor="test")


def test_the_ingested_events_give_the_same_figures(
    aws: AwsSandbox, sessionmaker: SessionMaker[Session]
) -> None:
    _ingest(sessionmaker, ct.seeded_history())
    env = aws.env(alert=_alert())
    env.sessions = sessionmaker  # type: ignore[attr-defined]  # what the worker hands a run

    acted = aws.act(NAME, {"sources": ["ingested"]}, env=env)

    _assert_seed_figures(acted.output)
    assert acted.output["sources"]["ingested"] == {
        "read": True, "events": 69, "alerts_read": 69, "truncated": False
    }
    assert acted.sent == []  # nothing asked of AWS


def test_the_ingested_query_reads_only_the_window_and_the_account(
    sessionmaker: SessionMaker[Session],
) -> None:
    other_account = {**ct.record(ct.ALERT_TIME), "recipientAccountId": "999999999999"}
    too_early = ct.record(WEEK_START - timedelta(seconds=1))
    _ingest(sessionmaker, [*ct.daytime_week(), other_account, too_early])
    principal = PrincipalRef.parse(ct.USER_ARN)
    report = IngestedReport()
    with sessionmaker() as session:
        ingested_records(session=session, account=ct.ACCOUNT, start=WEEK_START,
                         end=ct.ALERT_TIME, keep=lambda r: relevant(r, principal, []),
                         report=report, max_events=1000)
    assert report.alerts_read == 56
    assert len(report.records) == 56
    assert all(r["userIdentity"]["userName"] == ct.USER for r in report.records)


def test_the_ingested_source_without_database_access_is_a_clear_error(aws: AwsSandbox) -> None:
    with pytest.raises(ActionError) as error:
        aws.act(NAME, {"sources": ["ingested"]}, env=aws.env(alert=_alert()))
    assert error.value.code == "SourcesUnreadable"
    assert "ingested: SourceUnavailable: " in error.value.message
    assert "RunEnv.sessions" in error.value.message


def test_sources_combine_and_count_each_event_once(
    aws: AwsSandbox, sessionmaker: SessionMaker[Session]
) -> None:
    history = ct.seeded_history()  # the same events (eventIDs) in both sources
    _seed_bucket(aws, history)
    _ingest(sessionmaker, history)
    aws.settings = aws.settings.model_copy(update={"cloudtrail_bucket": BUCKET})
    env = aws.env(alert=_alert())
    env.sessions = sessionmaker  # type: ignore[attr-defined]

    out = aws.act(NAME, {"sources": ["s3", "ingested"]}, env=env).output

    assert out["sources"]["s3"]["events"] == out["sources"]["ingested"]["events"] == 69
    _assert_seed_figures(out)


# --- One source unreadable: the others' events still count -------------------------------------


def _unread(out: dict[str, Any], source: str) -> str:
    """Why ``source`` was not read, checked the same in ``sources`` and in ``failed``."""
    report = out["sources"][source]
    assert report["read"] is False
    why = f"{report['error']['code']}: {report['error']['message']}"
    assert out["failed"] == {source: why}
    return why


def test_without_a_database_the_history_comes_from_the_trails_bucket(aws: AwsSandbox) -> None:
    # `riposte plan` rehearses with no database: the demo's sources are s3 and ingested.
    _seed_bucket(aws, ct.seeded_history())
    aws.settings = aws.settings.model_copy(
        update={"cloudtrail_bucket": BUCKET, "cloudtrail_sources": ["s3", "ingested"]}
    )

    out = aws.act(NAME, {}, env=aws.env(mode="dry_run", alert=_alert())).output

    _assert_seed_figures(out)
    assert out["read"] == ["s3"]
    assert out["sources"]["s3"]["read"] is True and out["sources"]["s3"]["events"] == 69
    why = _unread(out, "ingested")
    assert why.startswith("SourceUnavailable: the ingested CloudTrail source reads Riposte's")
    assert "riposte plan" in why
    json.dumps(out)  # a step output: plain JSON


def test_a_missing_bucket_leaves_the_history_to_the_ingested_events(
    aws: AwsSandbox, sessionmaker: SessionMaker[Session]
) -> None:
    _ingest(sessionmaker, ct.seeded_history())
    aws.settings = aws.settings.model_copy(update={"cloudtrail_bucket": "no-such-trail-bucket"})
    env = aws.env(alert=_alert())
    env.sessions = sessionmaker  # type: ignore[attr-defined]

    out = aws.act(NAME, {"sources": ["s3", "ingested"]}, env=env).output

    _assert_seed_figures(out)
    assert out["read"] == ["ingested"] and out["sources"]["ingested"]["events"] == 69
    assert _unread(out, "s3").startswith("NoSuchBucket: ListObjectsV2: ")


def test_an_unusable_database_leaves_the_history_to_the_trails_bucket(
    aws: AwsSandbox, tmp_path: Any
) -> None:
    _seed_bucket(aws, ct.seeded_history())
    aws.settings = aws.settings.model_copy(update={"cloudtrail_bucket": BUCKET})
    env = aws.env(alert=_alert())
    # A database Riposte was never migrated on: every query fails in the driver.
    env.sessions = make_sessionmaker(  # type: ignore[attr-defined]
        make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    )

    out = aws.act(NAME, {"sources": ["s3", "ingested"]}, env=env).output

    _assert_seed_figures(out)
    assert _unread(out, "ingested") == (
        "SourceUnavailable: the ingested CloudTrail source could not read Riposte's database: "
        "no such table: alerts"
    )


def test_lookup_events_throttled_leaves_the_history_to_the_trails_bucket(
    aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LookupEvents answers ThrottlingException (Stubber; moto has no LookupEvents).

    The Stubber answers before botocore's retries could run and the code is not one Riposte
    retries itself, so the error reaches the step as it would once the retries ran out.
    """
    _seed_bucket(aws, ct.seeded_history())
    aws.settings = aws.settings.model_copy(update={"cloudtrail_bucket": BUCKET})
    stubbed = stub_cloudtrail(aws, monkeypatch, principal_history, _alert())
    stubbed.client("cloudtrail", region="us-east-2")
    stubbed.stubs["us-east-2"].add_client_error(
        "lookup_events", service_error_code="ThrottlingException",
        service_message="Rate exceeded", http_status_code=400,
    )

    def client(service: str, *, account: str | None = None, region: str | None = None) -> Client:
        if service == "cloudtrail":
            return stubbed.client(service, account=account, region=region)
        return stubbed.real_client(service, account=account, region=region)

    monkeypatch.setattr(stubbed.env.aws, "client", client)

    out = aws.act(NAME, {"sources": ["lookup_events", "s3"]}, env=stubbed.env).output

    stubbed.stubs["us-east-2"].assert_no_pending_responses()
    _assert_seed_figures(out)
    assert out["read"] == ["s3"]
    assert _unread(out, "lookup_events") == "ThrottlingException: LookupEvents: Rate exceeded"


def test_no_readable_source_fails_the_step_naming_each_source(aws: AwsSandbox) -> None:
    aws.settings = aws.settings.model_copy(update={"cloudtrail_sources": ["s3", "ingested"]})

    with pytest.raises(ActionError) as error:
        aws.act(NAME, {}, env=aws.env(alert=_alert()))

    assert error.value.code == "SourcesUnreadable"
    assert error.value.message.startswith("no CloudTrail source could be read: s3: ")
    assert "s3: SourceUnavailable: the s3 CloudTrail source needs RIPOSTE_CLOUDTRAIL_BUCKET" in (
        error.value.message
    )
    assert "; ingested: SourceUnavailable: the ingested CloudTrail source reads" in (
        error.value.message
    )
    assert error.value.retryable is False  # neither clears up by itself


# Findings drawn from the principal's history (the others do not read it).
FROM_HISTORY = {
    "event_time.off_hours", "event_time.seen_at_this_hour", "event_name.cadence",
    "source_ip.first_seen", "source_ip.location", "user_agent.seen_before",
    "principal.sign_in_failures", "principal.mfa", "principal.recent_changes",
    "instances.touched_before", "instances.stopped_before", "instances.recent_changes",
}


def test_the_findings_drawn_from_the_history_name_the_source_not_read(aws: AwsSandbox) -> None:
    _seed_bucket(aws, ct.seeded_history())
    aws.settings = aws.settings.model_copy(
        update={"cloudtrail_bucket": BUCKET, "cloudtrail_sources": ["s3", "ingested"]}
    )
    history = aws.act(NAME, {}, env=aws.env(mode="dry_run", alert=_alert())).output

    assessed = aws.act("investigation.assess", {"history": history},
                       env=aws.env(mode="dry_run", alert=_alert())).output
    narrated = aws.act("investigation.narrate", {
        key: assessed[key] for key in ("findings", "open_questions", "verdict")
    }, mode="dry_run").output

    unread = {"ingested": history["failed"]["ingested"]}
    findings = {f["id"]: f for f in assessed["findings"]}
    marked = {i for i, f in findings.items() if "unread_sources" in f["evidence"]}
    assert marked == FROM_HISTORY & set(findings)
    assert {"principal.sign_in_failures", "principal.mfa", "event_time.off_hours"} <= marked
    for finding_id in marked:
        assert findings[finding_id]["evidence"]["unread_sources"] == unread
        assert findings[finding_id]["answer"].endswith(
            " The history may be incomplete: the CloudTrail source ingested could not be read."
        )
    # What the alert itself says is not drawn from the history, and says nothing of it.
    assert "unread_sources" not in findings["event.what_happened"]["evidence"]
    # The night's failed sign-ins were in the bucket: the answer still has them.
    assert findings["principal.sign_in_failures"]["evidence"]["failures"] == 9
    said = [s for s in narrated["sentences"] if "may be incomplete" in s["text"]]
    assert [s["text"] for s in said] == [
        f"The history of {ct.USER} may be incomplete: the CloudTrail source ingested could "
        "not be read."
    ]
    assert set(said[0]["findings"]) == marked
