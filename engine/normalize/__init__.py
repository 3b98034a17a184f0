"""Turn what AWS sends into ``NormalizedAlert``s: pure functions, no I/O.

One module per source (``cloudtrail``, ``securityhub``, ``guardduty``, ``cloudwatch``,
``eventbridge``, ``sns``); ``payload`` holds the defensive readers and documents the keys of
``details``. Every function here raises nothing but ``UnsupportedPayload`` (a ``ValueError``) and
only for input that is not the shape it reads; unknown EventBridge detail-types and unparseable
SNS messages become generic alerts instead.
"""

from engine.normalize.cloudtrail import (
    normalize_cloudtrail,
    normalize_cloudtrail_file,
    normalize_cloudtrail_record,
)
from engine.normalize.eventbridge import normalize_eventbridge, normalize_eventbridge_delivery
from engine.normalize.guardduty import guardduty_score, normalize_guardduty_finding
from engine.normalize.payload import UnsupportedPayload
from engine.normalize.securityhub import normalize_securityhub_finding
from engine.normalize.sns import normalize_sns_message

__all__ = [
    "UnsupportedPayload",
    "guardduty_score",
    "normalize_cloudtrail",
    "normalize_cloudtrail_file",
    "normalize_cloudtrail_record",
    "normalize_eventbridge",
    "normalize_eventbridge_delivery",
    "normalize_guardduty_finding",
    "normalize_securityhub_finding",
    "normalize_sns_message",
]
