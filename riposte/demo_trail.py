"""CloudTrail as the demo's account writes it: records, EventBridge events, trail log files.

Records have the shape CloudTrail gives them (``eventVersion`` 1.08, ``userIdentity``,
``additionalEventData`` of console sign-ins, ``responseElements`` of TerminateInstances), so they
go through the same normalizers, threshold triggers and history readers as real ones.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Record = dict[str, Any]

CONSOLE_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0"
EC2_CONSOLE_AGENT = "console.ec2.amazonaws.com"
CLI_AGENT = "aws-cli/2.17.4 md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 lang/python#3.11.9"
SIGN_IN_REGION = "us-east-1"  # console sign-ins are global events, recorded in us-east-1
# CloudTrail writes a log file within about five minutes of its events.
DELIVERY_DELAY = timedelta(minutes=5)
DETAIL_TYPES = {
    "AwsApiCall": "AWS API Call via CloudTrail",
    "AwsConsoleSignIn": "AWS Console Sign In via CloudTrail",
}


@dataclass(frozen=True)
class Caller:
    """Who makes a call: an IAM user of the account, from an address, with or without MFA."""

    account: str
    user: str
    arn: str
    principal_id: str
    ip: str
    mfa: bool
    access_key: str
    agent: str = CLI_AGENT

    def identity(self, *, console_session: str | None = None) -> dict[str, Any]:
        """The ``userIdentity`` of a call; a console session signs with temporary keys."""
        identity: dict[str, Any] = {
            "type": "IAMUser",
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account,
            "accessKeyId": self.access_key,
            "userName": self.user,
        }
        if console_session is not None:
            identity["accessKeyId"] = _session_key(self.arn, console_session)
            identity["sessionContext"] = {
                "sessionIssuer": {},
                "attributes": {"mfaAuthenticated": "true" if self.mfa else "false"},
            }
        return identity


def stamp(moment: datetime) -> str:
    """A time as CloudTrail writes it: ``2020-11-06T03:21:39Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_call(
    caller: Caller,
    moment: datetime,
    name: str,
    *,
    source: str = "ec2.amazonaws.com",
    region: str,
    console: bool = False,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    read_only: bool = True,
) -> Record:
    """One API call made by ``caller`` (from the console, one session a day, or the CLI)."""
    session = f"{caller.ip}/{moment:%Y-%m-%d}" if console else None
    return {
        "eventVersion": "1.08",
        "userIdentity": caller.identity(console_session=session),
        "eventTime": stamp(moment),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": caller.ip,
        "userAgent": EC2_CONSOLE_AGENT if console else caller.agent,
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": caller.account,
        "eventCategory": "Management",
    }


def console_sign_in(caller: Caller, moment: datetime, *, succeeded: bool) -> Record:
    """A console sign-in; a failed one names the user but carries no ARN, as CloudTrail's."""
    identity: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": caller.principal_id,
        "accountId": caller.account,
        "accessKeyId": "",
        "userName": caller.user,
    }
    if succeeded:
        identity["arn"] = caller.arn
    record: Record = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": stamp(moment),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": SIGN_IN_REGION,
        "sourceIPAddress": caller.ip,
        "userAgent": CONSOLE_AGENT,
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if succeeded else "Failure"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if caller.mfa and succeeded else "No",
        },
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": caller.account,
        "eventCategory": "Management",
    }
    if not succeeded:
        record["errorMessage"] = "Failed authentication"
    return record


def terminate_instances(
    caller: Caller, moment: datetime, answer: dict[str, Any], *, region: str, console: bool
) -> Record:
    """The record of a TerminateInstances call, from EC2's own answer to it."""
    items = answer["TerminatingInstances"]
    return api_call(
        caller,
        moment,
        "TerminateInstances",
        region=region,
        console=console,
        read_only=False,
        request={"instancesSet": {"items": [{"instanceId": i["InstanceId"]} for i in items]}},
        response={
            "requestId": str(uuid.uuid4()),
            "instancesSet": {
                "items": [
                    {
                        "instanceId": i["InstanceId"],
                        "currentState": {"code": i["CurrentState"]["Code"],
                                         "name": i["CurrentState"]["Name"]},
                        "previousState": {"code": i["PreviousState"]["Code"],
                                          "name": i["PreviousState"]["Name"]},
                    }
                    for i in items
                ]
            },
        },
    )


def eventbridge_event(record: Record) -> dict[str, Any]:
    """The event an EventBridge rule on CloudTrail delivers for ``record``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPES[record["eventType"]],
        "source": "aws." + record["eventSource"].split(".", 1)[0],
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    }


def log_files(records: Iterable[Record], *, prefix: str = "") -> dict[str, bytes]:
    """Trail log files holding ``records``: key → gzip JSON, one file per region and day.

    Keys are CloudTrail's: ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
    <account>_CloudTrail_<region>_<written>_<unique>.json.gz``, written five minutes after
    the file's last event.
    """
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        day = record["eventTime"][:10]
        groups[(record["recipientAccountId"], record["awsRegion"], day)].append(record)
    head = prefix.strip("/") + "/" if prefix.strip("/") else ""
    files: dict[str, bytes] = {}
    for (account, region, _day), members in sorted(groups.items()):
        members.sort(key=lambda r: r["eventTime"])
        last = datetime.fromisoformat(members[-1]["eventTime"].replace("Z", "+00:00"))
        written = last + DELIVERY_DELAY
        unique = hashlib.sha256(json.dumps(members[0]["eventID"]).encode()).hexdigest()[:16]
        key = (
            f"{head}AWSLogs/{account}/CloudTrail/{region}/{written:%Y/%m/%d}/"
            f"{account}_CloudTrail_{region}_{written:%Y%m%dT%H%MZ}_{unique}.json.gz"
        )
        files[key] = gzip.compress(json.dumps({"Records": members}).encode())
    return files


def _session_key(arn: str, session: str) -> str:
    """The temporary key id of a console session (ASIA…): one per principal and session."""
    return "ASIA" + hashlib.sha256(f"{arn} {session}".encode()).hexdigest().upper()[:16]


def working_week(
    user: Caller,
    colleague: Caller,
    *,
    first_hour: int,
    hours: int,
    days: int,
    region: str,
    now: datetime,
) -> list[Record]:
    """``days`` days of ``user``'s work before ``now`` (an hour of margin), oldest first.

    Every day from ``first_hour`` (UTC) for ``hours`` hours: a console sign-in, then three calls
    an hour (EC2 from the console or the CLI, metrics, logs, S3), and every other day the
    termination of one development instance; the colleague signs in from the same address.
    The same week every time for a given ``now``.
    """
    records: list[Record] = []
    for days_ago in range(days, 0, -1):
        day = (now - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0, microsecond=0)
        pick = random.Random(days_ago)
        for offset in range(hours):
            hour = day + timedelta(hours=first_hour + offset)
            if offset == 0:
                records.append(console_sign_in(user, hour + timedelta(minutes=2),
                                               succeeded=True))
                records.append(api_call(colleague, hour + timedelta(minutes=9),
                                        "DescribeInstances", region=region))
            for _ in range(3):
                name, source = pick.choice(_ROUTINE_CALLS)
                moment = hour + timedelta(minutes=pick.randrange(5, 60))
                console = source == "ec2.amazonaws.com" and pick.random() < 0.5
                records.append(api_call(user, moment, name, source=source, region=region,
                                        console=console))
            if offset == 5 and days_ago % 2 == 0:
                records.append(_dev_termination(user, hour + timedelta(minutes=30), region,
                                                days_ago))
    cutoff = stamp(now - timedelta(hours=1))
    return sorted((r for r in records if r["eventTime"] < cutoff), key=lambda r: r["eventTime"])


_ROUTINE_CALLS = (
    ("DescribeInstances", "ec2.amazonaws.com"),
    ("DescribeInstanceStatus", "ec2.amazonaws.com"),
    ("DescribeSecurityGroups", "ec2.amazonaws.com"),
    ("GetMetricData", "monitoring.amazonaws.com"),
    ("ListBuckets", "s3.amazonaws.com"),
    ("DescribeLogGroups", "logs.amazonaws.com"),
)


def _dev_termination(caller: Caller, moment: datetime, region: str, days_ago: int) -> Record:
    """The usual cadence: one development instance terminated now and then."""
    answer = {"TerminatingInstances": [{
        "InstanceId": f"i-0de{days_ago:014x}",
        "CurrentState": {"Code": 32, "Name": "shutting-down"},
        "PreviousState": {"Code": 16, "Name": "running"},
    }]}
    return terminate_instances(caller, moment, answer, region=region, console=False)
