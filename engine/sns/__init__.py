"""Amazon SNS HTTP(S) messages: parse them, verify their signatures, allow-list their topics.

Usage (the endpoint runs this off the event loop: fetching a certificate blocks)::

    store = CertificateStore(cert_dir=settings.sns_cert_dir)   # one per process
    message = parse_sns_message(body)          # SnsMessageInvalid -> 400
    verify(message, store)                     # SnsSignatureInvalid -> 403
    if message.type == "SubscriptionConfirmation" and topic_allowed(message.topic_arn, topics):
        confirm(check_aws_url(message.subscribe_url))
"""

from engine.sns.certificates import (
    CertificateStore,
    FetchCertificate,
    certificate_file_name,
    check_aws_url,
    check_certificate_url,
    fetch_certificate_over_https,
)
from engine.sns.errors import SnsMessageInvalid, SnsSignatureInvalid, SnsUrlRefused
from engine.sns.messages import SnsMessage, SnsMessageType, parse_sns_message, topic_allowed
from engine.sns.signature import verify
from engine.sns.subscriptions import (
    ConfirmSubscription,
    SubscriptionNotConfirmed,
    confirm_subscription_over_https,
)

__all__ = [
    "CertificateStore",
    "ConfirmSubscription",
    "FetchCertificate",
    "SnsMessage",
    "SnsMessageInvalid",
    "SnsMessageType",
    "SnsSignatureInvalid",
    "SnsUrlRefused",
    "SubscriptionNotConfirmed",
    "certificate_file_name",
    "check_aws_url",
    "check_certificate_url",
    "confirm_subscription_over_https",
    "fetch_certificate_over_https",
    "parse_sns_message",
    "topic_allowed",
    "verify",
]
