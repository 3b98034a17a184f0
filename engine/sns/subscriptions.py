"""Confirm an SNS subscription by visiting its SubscribeURL."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from engine.sns.certificates import check_aws_url

CONFIRM_TIMEOUT_SECONDS = 5.0

ConfirmSubscription = Callable[[str], None]


class SubscriptionNotConfirmed(Exception):
    """SNS did not accept the visit of a SubscribeURL (the sender may try again)."""


def confirm_subscription_over_https(url: str) -> None:
    """GET a SubscribeURL that check_aws_url accepted; raise SubscriptionNotConfirmed on failure."""
    check_aws_url(url)
    try:
        # No redirects: a redirect could leave the SNS host the URL rule vouched for.
        response = httpx.get(url, timeout=CONFIRM_TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise SubscriptionNotConfirmed(f"could not visit SubscribeURL {url!r}: {exc}") from exc
    if response.status_code != 200:
        raise SubscriptionNotConfirmed(
            f"visiting SubscribeURL {url!r} answered HTTP {response.status_code}"
        )
