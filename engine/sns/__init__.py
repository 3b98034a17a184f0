"""Amazon SNS HTTP(S) messages: parse them, verify their signatures, admit their topics and times.

Usage (the endpoint runs this off the event loop: fetching a certificate blocks)::

    store = CertificateStore(cert_dir=settings.sns_cert_dir)   # one per process
    message = parse_sns_message(body)          # SnsMessageInvalid -> 400
    verify(message, store)                     # SnsSignatureInvalid -> 403
    admit(message, topics=topics, max_age=max_age, now=now)   # SnsMessageRefused -> 403
    if message.type == "SubscriptionConfirmation":
        confirm(check_aws_url(message.subscribe_url))
"""

from engine.sns.admission import MAX_CLOCK_AHEAD, admit
from engine.sns.certificates import (
    CertificateStore,
    FetchCertificate,
    certificate_file_name,
    check_aws_url,
    check_certificate_url,
    fetch_certificate_over_https,
)
from engine.sns.errors import (
    SnsMessageInvalid,
    SnsMessageRefused,
    SnsReplayRefused,
    SnsSignatureInvalid,
    SnsTopicRefused,
    SnsUrlRefused,
)
from engine.sns.messages import SnsMessage, SnsMessageType, parse_sns_message, topic_allowed
from engine.sns.signature import verify
from engine.sns.subscriptions import (
    ConfirmSubscription,
    SubscriptionNotConfirmed,
    confirm_subscription_over_https,
)

__all__ = [
    "MAX_CLOCK_AHEAD",
    "CertificateStore",
    "ConfirmSubscription",
    "FetchCertificate",
    "SnsMessage",
    "SnsMessageInvalid",
    "SnsMessageRefused",
    "SnsMessageType",
    "SnsReplayRefused",
    "SnsSignatureInvalid",
    "SnsTopicRefused",
    "SnsUrlRefused",
    "SubscriptionNotConfirmed",
    "admit",
    "certificate_file_name",
    "check_aws_url",
    "check_certificate_url",
    "confirm_subscription_over_https",
    "fetch_certificate_over_https",
    "parse_sns_message",
    "topic_allowed",
    "verify",
]
