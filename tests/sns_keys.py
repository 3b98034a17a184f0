"""A throwaway RSA key and self-signed certificate that sign messages the way Amazon SNS does.

The string to sign is built here from AWS's documented key lists, independently of engine.sns, so
that a mistake in the engine's canonical string makes the signature tests fail.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_FILE_NAME = "SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
CERT_URL = f"https://sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:riposte-alerts"

# docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html, step "string to sign".
_NOTIFICATION_KEYS = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
_CONFIRMATION_KEYS = [
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
]


@dataclass(frozen=True)
class SigningIdentity:
    """A private key and the PEM certificate that carries its public half."""

    key: rsa.RSAPrivateKey
    certificate_pem: bytes


def make_identity(
    *,
    common_name: str = "sns.amazonaws.com",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> SigningIdentity:
    """Create a fresh key and a self-signed certificate for it."""
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return SigningIdentity(key, certificate.public_bytes(serialization.Encoding.PEM))


@functools.cache
def default_identity() -> SigningIdentity:
    """Return one identity shared by the whole test session (key generation is slow)."""
    return make_identity()


@functools.cache
def other_identity() -> SigningIdentity:
    """Return a second identity, for signatures made with the wrong key."""
    return make_identity()


def string_to_sign(fields: dict[str, Any]) -> bytes:
    """Return the bytes SNS signs for a message, per AWS's documented key lists."""
    notification = fields["Type"] == "Notification"
    keys = _NOTIFICATION_KEYS if notification else _CONFIRMATION_KEYS
    lines = [f"{key}\n{fields[key]}\n" for key in keys if fields.get(key) is not None]
    return "".join(lines).encode("utf-8")


def sign(
    fields: dict[str, Any],
    identity: SigningIdentity | None = None,
    *,
    version: str = "2",
    cert_url: str = CERT_URL,
) -> dict[str, Any]:
    """Return fields plus SignatureVersion, SigningCertURL and a Signature as SNS adds them."""
    identity = identity or default_identity()
    algorithm: hashes.HashAlgorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = identity.key.sign(string_to_sign(fields), padding.PKCS1v15(), algorithm)
    return {
        **fields,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode("ascii"),
        "SigningCertURL": cert_url,
    }


def sns_timestamp(moment: datetime | None = None) -> str:
    """Return a time as SNS writes its Timestamp (UTC, milliseconds, Z); now by default."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notification(**overrides: Any) -> dict[str, Any]:
    """Return the unsigned fields of a Notification shaped like AWS's documented example.

    Its Timestamp is now, as in a delivery SNS is making (Riposte refuses old ones as replays).
    """
    fields: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC_ARN,
        "Subject": 'ALARM: "cpu-high" in US East (N. Virginia)',
        "Message": '{"AlarmName":"cpu-high","NewStateValue":"ALARM"}\nsecond line',
        "Timestamp": sns_timestamp(),
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={TOPIC_ARN}:c9135db0-26c4-47ec-8998-413945fb5a96",
        "MessageAttributes": {"severity": {"Type": "String", "Value": "high"}},
    }
    fields.update(overrides)
    return fields


def confirmation(kind: str = "SubscriptionConfirmation", **overrides: Any) -> dict[str, Any]:
    """Return the unsigned fields of a (Un)subscribeConfirmation shaped like AWS's example,
    timestamped now."""
    token = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb"
    fields: dict[str, Any] = {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": token,
        "TopicArn": TOPIC_ARN,
        "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={TOPIC_ARN}&Token={token}",
        "Timestamp": sns_timestamp(),
    }
    fields.update(overrides)
    return fields
