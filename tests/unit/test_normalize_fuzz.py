"""Random JSON and mutated real samples make normalizers raise nothing but UnsupportedPayload.

Hostile JSON text (lone surrogates, NULs, huge numbers, NaN/Infinity, deep nesting) is read as
the webhooks read it (engine.delivery_json) and then normalized, or carried as an SNS Message:
either it is refused, or every alert made of it is storable in both databases.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.alerts import NormalizedAlert
from engine.delivery_json import MalformedJson, UnstorableText, parse_delivery_json
from engine.normalize import (
    UnsupportedPayload,
    normalize_cloudtrail,
    normalize_eventbridge_delivery,
    normalize_guardduty_finding,
    normalize_securityhub_finding,
    normalize_sns_message,
)
from tests.hostile_json import hostile_texts
from tests.samples import load, names

# Keys the normalizers look for, so random objects reach past the first check.
KEYS = [
    "Records",
    "eventName",
    "eventSource",
    "eventID",
    "eventTime",
    "eventType",
    "userIdentity",
    "type",
    "userName",
    "arn",
    "accountId",
    "accessKeyId",
    "sessionContext",
    "sessionIssuer",
    "invokedBy",
    "onBehalfOf",
    "requestParameters",
    "responseElements",
    "instancesSet",
    "items",
    "instanceId",
    "currentState",
    "previousState",
    "name",
    "additionalEventData",
    "MFAUsed",
    "resources",
    "ARN",
    "detail-type",
    "detail",
    "source",
    "id",
    "account",
    "region",
    "findings",
    "Id",
    "UpdatedAt",
    "Types",
    "Severity",
    "Label",
    "Normalized",
    "Resources",
    "Type",
    "Tags",
    "Details",
    "AwsIamAccessKey",
    "ProductFields",
    "severity",
    "resource",
    "instanceDetails",
    "accessKeyDetails",
    "s3BucketDetails",
    "service",
    "action",
    "alarmName",
    "state",
    "value",
    "configuration",
    "metrics",
    "metricStat",
    "metric",
    "dimensions",
    "InstanceId",
    "Type",
    "Message",
    "MessageId",
    "TopicArn",
    "Subject",
    "AlarmName",
    "NewStateValue",
    "Trigger",
    "Dimensions",
    "AlarmArn",
    "recipientAccountId",
    "awsRegion",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "",
            " ",
            "arn:aws:ec2:us-east-1:1:instance/i-1",
            "arn:",
            "Notification",
            "GuardDuty Finding",
            "AWS API Call via CloudTrail",
            "ALARM",
            "i-1",
            "Security Hub Findings - Imported",
            "AssumedRole",
            "Yes",
            "${x}",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)
SAMPLES = {name: load(name) for name in names()}


def _sns(body: object) -> list[NormalizedAlert]:
    return normalize_sns_message(None, body)


def _sns_wrapping(body: object) -> list[NormalizedAlert]:
    envelope = {
        "Type": "Notification",
        "MessageId": "m",
        "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Subject": None,
        "Message": json.dumps(body, allow_nan=True),
    }
    return normalize_sns_message("Notification", envelope)


NORMALIZERS: list[Callable[[Any], Any]] = [
    normalize_eventbridge_delivery,
    normalize_cloudtrail,
    _sns,
    _sns_wrapping,
    normalize_guardduty_finding,
    normalize_securityhub_finding,
]


def _only_unsupported(payload: object, *, storable: bool = False) -> None:
    for normalize in NORMALIZERS:
        try:
            alerts = normalize(payload)
        except UnsupportedPayload:
            continue
        if isinstance(alerts, NormalizedAlert):
            alerts = [alerts]
        for alert in alerts:
            alert.model_dump_json()  # storable as JSON
            NormalizedAlert.model_validate(alert.model_dump())
            if storable:
                _assert_storable(alert)


def _assert_storable(alert: NormalizedAlert) -> None:
    """What both databases store: finite numbers, and UTF-8 text without NUL in every string."""
    dumped = alert.model_dump(mode="json")
    json.dumps(dumped, allow_nan=False)
    stack: list[Any] = [dumped]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack += [*value.keys(), *value.values()]
        elif isinstance(value, list):
            stack += value
        elif isinstance(value, str):
            assert "\x00" not in value
            value.encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_random_json_never_raises_anything_but_unsupported(payload: object) -> None:
    """Any JSON value whatever, with keys the normalizers know."""
    _only_unsupported(payload)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_samples(draw: st.DrawFn) -> object:
    """A real sample with a few values replaced by random JSON or removed."""
    sample = copy.deepcopy(SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))])
    if draw(st.booleans()) and isinstance(sample, dict) and isinstance(sample.get("detail"), dict):
        sample["detail"].setdefault(
            "findings", [copy.deepcopy(SAMPLES["securityhub_finding_afsbp_iam_8"])]
        )
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(sample)
        path = draw(st.sampled_from(paths))
        if not path:
            sample = draw(JSON)
            continue
        parent = sample
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return sample


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_samples())
def test_mutated_samples_never_raise_anything_but_unsupported(payload: object) -> None:
    """Every stored sample, with values replaced by random JSON or deleted."""
    _only_unsupported(payload)


def test_every_unmutated_sample_normalizes() -> None:
    """Each stored sample gives alerts through at least one normalizer (none is dead weight)."""
    for name, sample in SAMPLES.items():
        produced = []
        for normalize in NORMALIZERS:
            try:
                result = normalize(copy.deepcopy(sample))
            except UnsupportedPayload:
                continue
            produced += result if isinstance(result, list) else [result]
        assert produced, name


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_texts)
def test_hostile_json_is_refused_at_the_door_or_normalized_into_storable_alerts(
    text: str,
) -> None:
    """Surrogates, NULs, huge numbers, NaN/Infinity and deep nesting inside a real sample."""
    try:
        payload = parse_delivery_json(text)
    except (MalformedJson, UnstorableText):
        pass
    else:
        _only_unsupported(payload, storable=True)
    # The same text as the Message of an SNS notification: the normalizer reads it itself.
    envelope = {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                "Subject": None, "Message": text}
    try:
        alerts = normalize_sns_message("Notification", envelope)
    except UnsupportedPayload:
        return
    for alert in alerts:
        _assert_storable(alert)
