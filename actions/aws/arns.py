"""Take ARNs apart with botocore's ``ArnParser``: the one place actions read an ARN's fields."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.utils import ArnParser, InvalidArnException

from actions.errors import ActionError

_PARSER = ArnParser()


@dataclass(frozen=True)
class Arn:
    """The six fields of an ARN; ``resource`` keeps any ``:`` and ``/`` it holds."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(value: str) -> Arn | None:
    """Read ``arn:partition:service:region:account:resource``; ``None`` if ``value`` is not one."""
    if not value.startswith("arn:"):
        return None
    try:
        return Arn(**_PARSER.parse_arn(value))
    except InvalidArnException:
        return None


def arn_fields(value: str) -> Arn:
    """Read an ARN that must be one (AWS's answers, validated inputs); else ``InvalidArn``."""
    parsed = parse_arn(value)
    if parsed is None:
        raise ActionError("InvalidArn", f"{value!r} is not an ARN", retryable=False)
    return parsed


def account_of(arn: str) -> str:
    """Return the account id in an ARN (``aws`` for an AWS-managed policy)."""
    return arn_fields(arn).account


def partition_of(arn: str) -> str:
    """Return the partition in an ARN (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    return arn_fields(arn).partition
