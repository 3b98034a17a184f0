"""CloudTrail records for history tests, in the shape a trail's log files hold them.

``seeded_history()`` is the seed article's case: Roboman1 works 09:00-17:00 UTC for a week
from one office address; on the night of the alert, from an address never seen, nine failed
console sign-ins, one success without MFA, a policy attached to the user by another admin,
then TerminateInstances on two instances (the alert's event). One instance was stopped once,
by someone else, three days before.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT = "123456789012"
USER = "Roboman1"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/Development/{USER}"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/admin"
OFFICE_IP = "198.51.100.10"
OFFICE_AGENT = "aws-cli/2.15.0 Python/3.11"
NIGHT_IP = "180.163.251.231"
CONSOLE_AGENT = "console.ec2.amazonaws.com"
INSTANCES = ["i-2oc7w12", "i-eob7w13"]
ALERT_TIME = datetime(2020, 11, 6, 3, 21, 39, tzinfo=UTC)
SIGN_IN_FAILURES_AT = datetime(2020, 11, 6, 3, 2, 10, tzinfo=UTC)
SIGN_IN_AT = datetime(2020, 11, 6, 3, 2, 23, tzinfo=UTC)
STOPPED_AT = datetime(2020, 11, 3, 11, 0, 0, tzinfo=UTC)
POLICY_AT = datetime(2020, 11, 6, 3, 10, 0, tzinfo=UTC)

_ids = itertools.count(1)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def user_identity(arn: str = USER_ARN, *, key: str = "AKIAEXAMPLEROBOMAN1") -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": arn,
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "userName": arn.rsplit("/", 1)[-1],
    }


def record(
    moment: datetime,
    name: str = "DescribeInstances",
    *,
    source: str = "ec2.amazonaws.com",
    identity: dict[str, Any] | None = None,
    ip: str = OFFICE_IP,
    agent: str = OFFICE_AGENT,
    region: str = "us-east-2",
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One CloudTrail record with a fresh eventID."""
    return {
        "eventVersion": "1.08",
        "userIdentity": identity or user_identity(),
        "eventTime": stamp(moment),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": agent,
        "requestParameters": request,
        "responseElements": response,
        "eventID": f"00000000-0000-4000-8000-{next(_ids):012d}",
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
        **fields,
    }


def console_login(moment: datetime, *, success: bool, mfa: bool, ip: str) -> dict[str, Any]:
    identity = user_identity()
    if not success:
        del identity["arn"]  # a failed sign-in names the user only
    extra: dict[str, Any] = {} if success else {"errorMessage": "Failed authentication"}
    return record(
        moment,
        "ConsoleLogin",
        source="signin.amazonaws.com",
        identity=identity,
        ip=ip,
        agent="Mozilla/5.0",
        region="us-east-1",
        response={"ConsoleLogin": "Success" if success else "Failure"},
        additionalEventData={"MFAUsed": "Yes" if mfa else "No"},
        eventType="AwsConsoleSignIn",
        **extra,
    )


def daytime_week(end: datetime = ALERT_TIME) -> list[dict[str, Any]]:
    """One call an hour at :15, 09:00-17:00 UTC, on each of the 7 days of the week before ``end``.

    With the seed's alert (03:21) that is 56 calls, from 30 October to 5 November.
    """
    first = (end - timedelta(days=7)).date()
    return [
        record(datetime(day.year, day.month, day.day, hour, 15, tzinfo=UTC))
        for day in (first + timedelta(days=n) for n in range(7))
        for hour in range(9, 17)
    ]


def terminate(moment: datetime = ALERT_TIME) -> dict[str, Any]:
    items = [{"instanceId": i} for i in INSTANCES]
    return record(
        moment,
        "TerminateInstances",
        ip=NIGHT_IP,
        agent=CONSOLE_AGENT,
        request={"instancesSet": {"items": items}},
        response={
            "instancesSet": {
                "items": [
                    {"instanceId": i, "currentState": {"code": 32, "name": "shutting-down"},
                     "previousState": {"code": 16, "name": "running"}}
                    for i in INSTANCES
                ]
            }
        },
    )


def seeded_history() -> list[dict[str, Any]]:
    """The week and the night of the seed's case (see the module doc); the alert's event last."""
    failures = [
        console_login(SIGN_IN_FAILURES_AT + timedelta(seconds=n), success=False, mfa=False,
                      ip=NIGHT_IP)
        for n in range(9)
    ]
    return [
        *daytime_week(),
        record(
            STOPPED_AT,
            "StopInstances",
            identity=user_identity(ADMIN_ARN, key="AKIAEXAMPLEADMIN0001"),
            request={"instancesSet": {"items": [{"instanceId": INSTANCES[0]}]}},
        ),
        *failures,
        console_login(SIGN_IN_AT, success=True, mfa=False, ip=NIGHT_IP),
        record(
            POLICY_AT,
            "AttachUserPolicy",
            source="iam.amazonaws.com",
            identity=user_identity(ADMIN_ARN, key="AKIAEXAMPLEADMIN0001"),
            region="us-east-1",
            ip="203.0.113.5",
            request={"userName": USER, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        ),
        terminate(),
    ]
