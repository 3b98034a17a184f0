"""``engine.normalize.files``: an alert file of any form gives what its webhook would store."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.schemas import AlertIn
from engine.alerts import NormalizedAlert
from engine.normalize import (
    normalize_cloudtrail,
    normalize_eventbridge_delivery,
    normalize_guardduty_finding,
    normalize_securityhub_finding,
    normalize_sns_message,
)
from engine.normalize.files import AlertFileInvalid, alerts_in_document, read_alert_file
from tests.samples import SAMPLES, load, names


def generic(body: dict[str, Any]) -> NormalizedAlert:
    return AlertIn.model_validate(body).normalized()


# The endpoint (or the event's own normalizer) each sample is meant for: the oracle.
ORACLES: dict[str, Callable[[Any], list[NormalizedAlert]]] = {
    "cloudtrail": normalize_cloudtrail,
    "seed": normalize_cloudtrail,
    "cloudwatch": normalize_eventbridge_delivery,
    "securityhub_event": normalize_eventbridge_delivery,
    "securityhub_finding": lambda doc: [normalize_securityhub_finding(doc)],
    "sns": lambda doc: normalize_sns_message("Notification", doc),
    "guardduty_get": lambda doc: [normalize_guardduty_finding(f) for f in doc["Findings"]],
    "guardduty": normalize_eventbridge_delivery,
}


def oracle(sample: str) -> Callable[[Any], list[NormalizedAlert]]:
    return next(normalize for prefix, normalize in sorted(ORACLES.items(), reverse=True)
                if sample.startswith(prefix))


@pytest.mark.parametrize("sample", names())
def test_every_sample_gives_what_its_endpoint_makes_of_it(sample: str) -> None:
    document = load(sample)
    assert alerts_in_document(document, generic=generic) == oracle(sample)(document)


def test_a_gzipped_log_file_and_an_array_of_events_are_read(tmp_path: Path) -> None:
    log = tmp_path / "trail.json.gz"
    log.write_bytes(gzip.compress((SAMPLES / "seed_terminate_instances.json").read_bytes()))
    events = [load("guardduty_ec2_ssh_brute_force"), load("cloudwatch_alarm_single_metric")]
    array = tmp_path / "events.json"
    array.write_text(json.dumps(events), encoding="utf-8")

    assert read_alert_file(log, generic=generic) == normalize_cloudtrail(
        load("seed_terminate_instances")
    )
    assert read_alert_file(array, generic=generic) == normalize_eventbridge_delivery(events)


def test_a_generic_alert_and_a_normalized_one_are_read_as_the_api_reads_them() -> None:
    body = {"title": "disk full", "severity": "HIGH", "source": "nagios"}
    [alert] = alerts_in_document(body, generic=generic)
    assert alert == generic(body)
    assert alerts_in_document(json.loads(alert.model_dump_json()), generic=generic) == [alert]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x1f\x8bnot gzip", "not a readable gzip file"),
        (b'{"a": NaN}', "not JSON Riposte reads"),
        (b'"text"', "an alert file holds a JSON object or an array of them"),
        (b'{"severity": 5}', "read as a POST /v1/alerts body: title: Field required"),
        (b"[]", "holds no event to rehearse"),
    ],
)
def test_a_file_that_holds_no_alert_is_named_with_why(
    tmp_path: Path, body: bytes, message: str
) -> None:
    path = tmp_path / "alert.json"
    path.write_bytes(body)
    with pytest.raises(AlertFileInvalid) as raised:
        read_alert_file(path, generic=generic)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
