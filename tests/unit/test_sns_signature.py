"""Parsing SNS HTTP(S) messages and verifying their signatures."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sns import (
    CertificateStore,
    SnsMessageInvalid,
    SnsSignatureInvalid,
    parse_sns_message,
    topic_allowed,
    verify,
)
from tests.sns_keys import (
    CERT_URL,
    TOPIC_ARN,
    confirmation,
    default_identity,
    notification,
    other_identity,
    sign,
)


def fetch_default_certificate(url: str) -> bytes:
    return default_identity().certificate_pem


@pytest.fixture()
def store() -> CertificateStore:
    return CertificateStore(fetch=fetch_default_certificate)


def body(fields: dict[str, Any]) -> str:
    # SNS pretty-prints its bodies; the signature is over values, not over the JSON text.
    return json.dumps(fields, indent=2)


SIGNED_SHAPES = {
    "notification-with-subject": notification(),
    "notification-without-subject": {k: v for k, v in notification().items() if k != "Subject"},
    "notification-subject-null": notification(Subject=None),
    "notification-subject-empty": notification(Subject=""),
    "notification-unicode": notification(Message="Alarm \u00e9t\u00e9 \u2603 \U0001f525\r\n\t"),
    "subscription-confirmation": confirmation(),
    "unsubscribe-confirmation": confirmation("UnsubscribeConfirmation"),
}


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("shape", SIGNED_SHAPES)
def test_message_signed_by_the_certificate_key_verifies(
    shape: str, version: str, store: CertificateStore
) -> None:
    message = parse_sns_message(body(sign(SIGNED_SHAPES[shape], version=version)))

    verify(message, store)


def test_string_to_sign_matches_aws_documented_notification_example() -> None:
    # The example in docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html.
    message = parse_sns_message(
        body(
            {
                "Type": "Notification",
                "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
                "TopicArn": "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P",
                "Subject": "My subject",
                "Message": "My Test Message",
                "Timestamp": "2019-01-31T04:37:04.321Z",
                "SignatureVersion": "1",
                "Signature": "",
                "SigningCertURL": CERT_URL,
                "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
            }
        )
    )

    assert message.string_to_sign() == (
        b"Message\nMy Test Message\n"
        b"MessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\n"
        b"Subject\nMy subject\n"
        b"Timestamp\n2019-01-31T04:37:04.321Z\n"
        b"TopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\n"
        b"Type\nNotification\n"
    )


def test_string_to_sign_of_a_confirmation_has_url_and_token_and_no_subject() -> None:
    fields = confirmation(Subject="never signed for confirmations")
    message = parse_sns_message(body(sign(fields)))

    signed_keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]

    assert message.string_to_sign() == "".join(
        f"{key}\n{fields[key]}\n" for key in signed_keys
    ).encode("utf-8")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", '{"AlarmName":"cpu-high","NewStateValue":"OK"}\nsecond line'),
        ("TopicArn", "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"),
        ("Subject", "OK: cpu-high"),
        ("Subject", None),
        ("Timestamp", "2024-05-02T00:54:06.656Z"),
        ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf325"),
    ],
)
@pytest.mark.parametrize("version", ["1", "2"])
def test_tampered_notification_fails(
    field: str, value: str | None, version: str, store: CertificateStore
) -> None:
    fields = sign(notification(), version=version)
    fields[field] = value

    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        verify(parse_sns_message(body(fields)), store)


def test_subject_added_after_signing_fails(store: CertificateStore) -> None:
    fields = sign(SIGNED_SHAPES["notification-without-subject"])
    fields["Subject"] = "injected"

    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        verify(parse_sns_message(body(fields)), store)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("SubscribeURL", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&x=1"),
        ("Token", "0000"),
        ("TopicArn", "arn:aws:sns:us-east-1:123456789012:other"),
        ("Type", "UnsubscribeConfirmation"),
    ],
)
def test_tampered_confirmation_fails(field: str, value: str, store: CertificateStore) -> None:
    fields = sign(confirmation())
    fields[field] = value

    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        verify(parse_sns_message(body(fields)), store)


@pytest.mark.parametrize("version", ["1", "2"])
def test_signature_made_with_another_key_fails(version: str, store: CertificateStore) -> None:
    fields = sign(notification(), other_identity(), version=version)

    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        verify(parse_sns_message(body(fields)), store)


def test_signature_of_one_version_presented_as_the_other_fails(store: CertificateStore) -> None:
    fields = sign(notification(), version="1")
    fields["SignatureVersion"] = "2"

    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        verify(parse_sns_message(body(fields)), store)


@pytest.mark.parametrize("version", ["3", "", "01", "1 "])
def test_unknown_signature_version_is_refused(version: str, store: CertificateStore) -> None:
    fields = sign(notification())
    fields["SignatureVersion"] = version

    with pytest.raises(SnsSignatureInvalid, match="SignatureVersion .* is not supported"):
        verify(parse_sns_message(body(fields)), store)


@pytest.mark.parametrize("signature", ["not base64!", "abc", "YWJj*"])
def test_signature_that_is_not_base64_is_refused(signature: str, store: CertificateStore) -> None:
    fields = sign(notification())
    fields["Signature"] = signature

    with pytest.raises(SnsSignatureInvalid, match="not base64"):
        verify(parse_sns_message(body(fields)), store)


def test_fields_aws_adds_are_kept() -> None:
    message = parse_sns_message(body(sign(notification())))

    assert message.model_extra == {
        "MessageAttributes": {"severity": {"Type": "String", "Value": "high"}}
    }
    assert message.topic_arn == TOPIC_ARN
    assert message.type == "Notification"


def test_body_may_be_utf8_bytes(store: CertificateStore) -> None:
    fields = sign(notification(Message="d\u00e9j\u00e0 vu"))

    verify(parse_sns_message(body(fields).encode("utf-8")), store)


def _without(fields: dict[str, Any], key: str) -> str:
    return json.dumps({k: v for k, v in fields.items() if k != key})


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[]", "must be a JSON object, got list"),
        ('"Notification"', "must be a JSON object, got str"),
        ("null", "must be a JSON object, got NoneType"),
        ("[" * 100_000, "not JSON"),
        ("{}", "field 'Type' is missing"),
        (_without(sign(notification()), "MessageId"), "field 'MessageId' is missing"),
        (_without(sign(notification()), "Signature"), "field 'Signature' is missing"),
        (_without(sign(notification()), "SigningCertURL"), "field 'SigningCertURL' is missing"),
        (_without(sign(confirmation()), "Token"), "SubscriptionConfirmation message needs Token"),
        (
            _without(sign(confirmation("UnsubscribeConfirmation")), "SubscribeURL"),
            "UnsubscribeConfirmation message needs SubscribeURL",
        ),
        (json.dumps(sign(notification(Type="Notice"))), "field 'Type'"),
        (json.dumps(sign(notification(Message=42))), "field 'Message'"),
        (json.dumps(sign(notification(Subject=["a"]))), "field 'Subject'"),
        (json.dumps(sign(notification(MessageId=""))), "field 'MessageId'"),
        (json.dumps({**sign(notification()), "SignatureVersion": 1}), "field 'SignatureVersion'"),
        (json.dumps({**sign(notification()), "Signature": "YWJj\x00"}),
         "text at Signature holds a NUL"),
        (json.dumps(sign(notification(Timestamp="2024-05-02"))),
         "field 'Timestamp': '2024-05-02' has no time zone"),
        (json.dumps(sign(notification(Timestamp="soon"))),
         "field 'Timestamp': 'soon' is not an ISO 8601 time"),
    ],
)
def test_malformed_body_is_invalid_and_names_the_problem(raw: str | bytes, names: str) -> None:
    with pytest.raises(SnsMessageInvalid, match=names):
        parse_sns_message(raw)


@pytest.mark.parametrize(
    ("topic", "patterns", "allowed"),
    [
        (TOPIC_ARN, [TOPIC_ARN], True),
        (TOPIC_ARN, ["arn:aws:sns:us-east-1:123456789012:*"], True),
        (TOPIC_ARN, ["arn:aws:sns:*:123456789012:riposte-*"], True),
        (TOPIC_ARN, ["arn:aws:sns:us-east-1:123456789012:riposte-alert?"], True),
        (TOPIC_ARN, [], False),
        (TOPIC_ARN, ["arn:aws:sns:us-east-1:999999999999:*"], False),
        (TOPIC_ARN, ["arn:aws:sns:us-east-1:123456789012:RIPOSTE-ALERTS"], False),
        (TOPIC_ARN, ["arn:aws:sns:us-east-1:123456789012:riposte"], False),
    ],
)
def test_topic_allow_list_matches_with_wildcards(
    topic: str, patterns: list[str], allowed: bool
) -> None:
    assert topic_allowed(topic, patterns) is allowed


# -- random and mutated bodies ------------------------------------------------------------------

SNS_KEYS = [
    "Type",
    "MessageId",
    "TopicArn",
    "Subject",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "SubscribeURL",
    "Token",
    "UnsubscribeURL",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
sns_like_values = json_values | st.sampled_from(
    [
        "Notification",
        "SubscriptionConfirmation",
        "UnsubscribeConfirmation",
        "1",
        "2",
        CERT_URL,
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "bm90IGEgc2lnbmF0dXJl",
    ]
)


# One store for every example: its cache is shared as it is in a running service.
SHARED_STORE = CertificateStore(fetch=fetch_default_certificate)


def _only_sns_errors(raw: str) -> None:
    try:
        verify(parse_sns_message(raw), SHARED_STORE)
    except (SnsMessageInvalid, SnsSignatureInvalid):
        pass


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(SNS_KEYS) | st.text(max_size=8), sns_like_values))
def test_random_bodies_raise_only_sns_errors(document: dict[str, Any]) -> None:
    _only_sns_errors(json.dumps(document))


@settings(max_examples=300)
@given(
    shape=st.sampled_from(sorted(SIGNED_SHAPES)),
    key=st.sampled_from(SNS_KEYS),
    value=sns_like_values,
    drop=st.booleans(),
)
def test_mutated_signed_bodies_raise_only_sns_errors(
    shape: str, key: str, value: Any, drop: bool
) -> None:
    fields = copy.deepcopy(sign(SIGNED_SHAPES[shape]))
    if drop:
        fields.pop(key, None)
    else:
        fields[key] = value
    _only_sns_errors(json.dumps(fields))


# -- a real message signed by Amazon SNS --------------------------------------------------------
# Both the messages and the certificate are the fixtures of AWS's own validator,
# aws/aws-php-sns-message-validator tests/FunctionalValidationsTest.php: four notifications
# published on 2022-07-28 to topics in us-east-2, and the SNS signing certificate served at their
# SigningCertURL (CN sns.amazonaws.com, issued by Amazon, valid 2021-09-07 to 2022-08-17).

AWS_CERT_NAME = "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
AWS_CERT_URL = f"https://sns.us-east-2.amazonaws.com/{AWS_CERT_NAME}"
AWS_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIF1zCCBL+gAwIBAgIQB9pYWG3Mi7xej22g9pobJTANBgkqhkiG9w0BAQsFADBG
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRUwEwYDVQQLEwxTZXJ2ZXIg
Q0EgMUIxDzANBgNVBAMTBkFtYXpvbjAeFw0yMTA5MDcwMDAwMDBaFw0yMjA4MTcy
MzU5NTlaMBwxGjAYBgNVBAMTEXNucy5hbWF6b25hd3MuY29tMIIBIjANBgkqhkiG
9w0BAQEFAAOCAQ8AMIIBCgKCAQEAutFqueT3XgP13udzxE6UpbdjOtVO5DwoMpSM
iDNMnGzF1TYH5/R2LPUOBeTB0SkKnR4kpNcUZhicpGD4aKciz/GEZ6wu65xncfT9
H/KBOQwoXYTuClHwp6fYpGzcGFaFoEYMnijL/o4qmTSd+ukglQUgKpsDw4ofw6rU
m2CttJo+GQSNQ9NfGR1h/0J+zsApkeSYrXRx5wNlu87z8os1C/6PBrUHwt3xXeaf
Xzfwut8aRRYsS8BySOA9DAgLfNHlfdQCjKPXKrG/ussgReyWD6n/HH+j7Uha3xos
TzQqJifcxlTq6MxWdPR6fDaJNvqw6DOE7UjUNxHguXHlVfxhlQIDAQABo4IC6TCC
AuUwHwYDVR0jBBgwFoAUWaRmBlKge5WSPKOUByeWdFv5PdAwHQYDVR0OBBYEFAqz
C+vyouneE7mWWLbi9i0UsWUbMBwGA1UdEQQVMBOCEXNucy5hbWF6b25hd3MuY29t
MA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIw
OwYDVR0fBDQwMjAwoC6gLIYqaHR0cDovL2NybC5zY2ExYi5hbWF6b250cnVzdC5j
b20vc2NhMWIuY3JsMBMGA1UdIAQMMAowCAYGZ4EMAQIBMHUGCCsGAQUFBwEBBGkw
ZzAtBggrBgEFBQcwAYYhaHR0cDovL29jc3Auc2NhMWIuYW1hem9udHJ1c3QuY29t
MDYGCCsGAQUFBzAChipodHRwOi8vY3J0LnNjYTFiLmFtYXpvbnRydXN0LmNvbS9z
Y2ExYi5jcnQwDAYDVR0TAQH/BAIwADCCAX0GCisGAQQB1nkCBAIEggFtBIIBaQFn
AHYAKXm+8J45OSHwVnOfY6V35b5XfZxgCvj5TV0mXCVdx4QAAAF7vfDVkQAABAMA
RzBFAiEA2XfHuy36aqRFiaL8c3md2mH451go8707+fRE0pEdSRACIE/g5FXTUXUZ
PFcmOhm9TZ+uMY1i4CIQ/CKVWln6C3t+AHYAUaOw9f0BeZxWbbg3eI8MpHrMGyfL
956IQpoN/tSLBeUAAAF7vfDVjAAABAMARzBFAiBF1MhhFP0+FQt3daDFfMYoWwnr
muTInrjNpwfzlvQBugIhAPYadFzr+LaxSJoiZEbEHBvTts7bT0M3eCQONA2O7w6n
AHUAQcjKsd8iRkoQxqE6CUKHXk4xixsD6+tLx2jwkGKWBvYAAAF7vfDVdAAABAMA
RjBEAiAtPapmFAuA71ih4NoSd5hJelzAltNQpxDMcDfDyHyU8gIgWxmaa6+2KbBu
9xdv379zvnJACFR7jc+4asl08Dn4aagwDQYJKoZIhvcNAQELBQADggEBAA54QX0u
oFWXfMmv02CGZv4NWo5TapyeeixQ2kKpZHRdVZjxZrw+hoF6HD7P3kGjH8ztyJll
tDxB0qgMltbPhQdScwhA6iTgoaBYqEUC/VHKd4PmmPT6yIsM36NBZVmkGlzl5uNo
/dBgBaG0SsVJnhr5zro3c2quC7n6fVGEZhf/UgQwRnnvThnvbNKguglDMq4uEqv8
njKyleht+glkcmXO0m9qLKt6BOS0amy6U2GlAwRn0Wx02ndJtnRCSC6kPuRWK/SQ
FEjB7gCK4hdKaAOuWdZpI55vF6ifOeM8toC3g7ofO8qLTnJupAG+ZitY5J3cvHWr
HqOUdKigPDHYLRo=
-----END CERTIFICATE-----
"""


def _aws_notification(
    message_id: str, topic: str, subscription: str, timestamp: str, version: str, signature: str
) -> dict[str, str]:
    topic_arn = f"arn:aws:sns:us-east-2:295079676684:publish-and-verify-{topic}"
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": "Hello world",
        "Timestamp": timestamp,
        "SignatureVersion": version,
        "Signature": signature,
        "SigningCertURL": AWS_CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={topic_arn}:{subscription}",
    }


AWS_SIGNED_NOTIFICATIONS = {
    "v1-without-subject": _aws_notification(
        "792cda85-518f-5dd3-9163-81d851212f3a",
        "892f85fe-4836-424d-8188-ab85bef0f362",
        "2296bc94-7992-4be1-b15f-b97229b5c1d8",
        "2022-07-28T21:23:58.317Z",
        "1",
        "ghtf+deOBAzHJJZ6s6CdRLfTQAlcGzq9naoFM1wi0CJiq//uVRuZnamrkWNF0fhouMFvuLVRwcz8PZLUMSfnmd5Vp"
        "dTKpTyiKmy1qJAZXma0w+yi7G+I33hD1Jyk1Nbym2n0kqp3fVu2aoooiN2ZeLAT2bH0/BtjLSfN1yAOKNoprco4q"
        "V9gGUZinXJdj9a1YdNhDR2jKi33ldlsVtEXAtiaDklGEk7DgRKX38GerBPiLg3FdtgY6KC7cdeGpU/dGK+4hjc83"
        "Ive1HoFkAwqhpgInM2sMytBosoiXfCmOKmU4xeGD0gHDNZTlJUJQDlzw8Eag0H9f/5zXF9d3uy0YQ==",
    ),
    "v2-without-subject": _aws_notification(
        "17dea24b-55c2-540b-8362-f916557af765",
        "62674b1d-4295-426b-88e7-5fb75652a04e",
        "ad7d16e3-0a7c-46aa-b23e-ffaf02250cbe",
        "2022-07-28T21:24:08.324Z",
        "2",
        "CXVqp9PfZAL+4JHS3Zxo1PFbQsvnOjvmYhtIf17TWpwc+iIVas8kZ8GopuzVzVMdatE7rCl/O4P91Zp05Dwz8lk8d"
        "Lhfp8gSu3Njlzxlyrmzo9x3va3Jb7zFnedgS2GKnZWHGBdwTXho+TosNUE+3e10OMSlwN5XGDwX7+R3WL+rn+AXm"
        "FAqp3alg27sYa55h1dLE9cGszGPjScPdtF3BmZsUDMx9wSdNKsCk+vSvE8yBjnCmUl7laSFj3LzPVrlSwgNYCF3k"
        "YnNAkah7NplK4SFhJYLwS0HCVCQJKa8rVbQLf9cBTu60U402mrgy0bN8xWoyimzbYbrOMJjalqkUg==",
    ),
    "v1-with-subject": {
        **_aws_notification(
            "11405cc3-9ac7-56d5-b45d-079e8f7a8edf",
            "6e11fed2-fcdf-4c52-9dc4-36ef43f37f84",
            "adb318c3-2234-4c56-905d-c324cf0df874",
            "2022-07-28T22:53:49.654Z",
            "1",
            "AItkS26d8yvnIKJevdirIPW7eM/yKbZy3/CF2EreCHmXWB3etWaV5Fb7SYpGABMpugpDZzNyGY1wCVWaopDoQ+7"
            "Q/kI2TpDu8bw1eExbi8U3kduvc/2m2fIrI4gDEY8/v3nzoLcr8pPodqMzrX6SzQou4klfaqbNK+rFmH0LVf2Q1"
            "VyOROODoSXmo4jg2Yu12jfxccBl96Drr/ihq4MJ4OcrWh6UzXXlVYjJHx2Ui4anNwNEb+Z4C2CAF1DjQUbhDta"
            "oajDBPY+4d9C1OwbqwQpXsd6tyVcI9nFyEsVK8lfnAV+/3GZQcdXHbIUYBRGcBa4X5TlWJku5nDH2ERtHHw==",
        ),
        "Subject": "Hello world",
    },
    "v2-with-subject": {
        **_aws_notification(
            "4504e649-d933-5aa9-8199-bd14ccf05f0b",
            "530b26da-0687-4fe4-9f71-780bad3181e2",
            "db0ad2ad-03d1-48ca-a5da-51f317800a57",
            "2022-07-28T22:53:55.086Z",
            "2",
            "cETcSvmmkt+My05qCLKexyl0+RyG83mSryKPqTfS+tYcxDJWVcjPJAr+qdpElzVaBl1aTGYVWMY64i9JqZ/JES8"
            "pylNj8LGvdhuNQKO59/WCoIimZAsNhn0xEgOeeDU+W/0BU4sdpCGMNjo0S/FuIiWaRe4E0YWRVrxeQevaQ70euD"
            "dfWgd5v1eCKQz8b367b9XBmMztL/CWUFI6YaKK/MV21eyvJe3Y7CtVYiOKEYiAZnAEkynK7gUGO5TsgDjGNYhj6"
            "U3xYsWgI03bmioSl7kdFSUj+AZ7ugas5fghqxgoDsdfqsjMYKRm5KKHQWsgzI619yIzpNKUiSMHxdZXpQ==",
        ),
        "Subject": "Hello world",
    },
}
WHILE_AWS_CERTIFICATE_WAS_VALID = datetime(2022, 7, 29, tzinfo=UTC)


@pytest.fixture()
def aws_cert_dir(tmp_path: Path) -> Path:
    (tmp_path / AWS_CERT_NAME).write_text(AWS_CERTIFICATE)
    return tmp_path


@pytest.mark.parametrize("name", AWS_SIGNED_NOTIFICATIONS)
def test_real_aws_notification_verifies_against_the_pinned_aws_certificate(
    name: str, aws_cert_dir: Path
) -> None:
    store = CertificateStore(cert_dir=aws_cert_dir, clock=lambda: WHILE_AWS_CERTIFICATE_WAS_VALID)

    verify(parse_sns_message(body(AWS_SIGNED_NOTIFICATIONS[name])), store)


@pytest.mark.parametrize("name", AWS_SIGNED_NOTIFICATIONS)
def test_real_aws_notification_with_a_changed_message_fails(name: str, aws_cert_dir: Path) -> None:
    store = CertificateStore(cert_dir=aws_cert_dir, clock=lambda: WHILE_AWS_CERTIFICATE_WAS_VALID)
    fields = {**AWS_SIGNED_NOTIFICATIONS[name], "Message": "Hello world!"}

    with pytest.raises(SnsSignatureInvalid, match="does not match"):
        verify(parse_sns_message(body(fields)), store)


def test_real_aws_certificate_is_refused_today_because_it_expired(aws_cert_dir: Path) -> None:
    store = CertificateStore(cert_dir=aws_cert_dir)

    with pytest.raises(SnsSignatureInvalid, match="expired on 2022-08-17"):
        verify(parse_sns_message(body(AWS_SIGNED_NOTIFICATIONS["v2-with-subject"])), store)
