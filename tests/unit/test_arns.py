"""ARNs read with botocore's ArnParser: the fields actions take from principals and topics."""

from __future__ import annotations

import pytest

from actions.aws.arns import Arn, account_of, arn_fields, parse_arn, partition_of
from actions.base import ActionError


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("arn:aws:iam::123456789012:user/Development/Roboman1",
         Arn("aws", "iam", "", "123456789012", "user/Development/Roboman1")),
        ("arn:aws-cn:sts::123456789012:assumed-role/Deployer/i-0abc",
         Arn("aws-cn", "sts", "", "123456789012", "assumed-role/Deployer/i-0abc")),
        # The resource keeps its own colons (a log group, a topic subscription).
        ("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/x:*",
         Arn("aws", "logs", "us-east-1", "123456789012", "log-group:/aws/lambda/x:*")),
        ("arn:aws:iam::aws:policy/AWSDenyAll", Arn("aws", "iam", "", "aws", "policy/AWSDenyAll")),
    ],
)
def test_an_arn_is_read_field_by_field(text: str, fields: Arn) -> None:
    assert parse_arn(text) == fields
    assert (account_of(text), partition_of(text)) == (fields.account, fields.partition)


@pytest.mark.parametrize("text", ["", "alice", "arn:aws:iam::123", "aws:iam::1:user/x:y"])
def test_what_is_not_an_arn_is_said_so(text: str) -> None:
    assert parse_arn(text) is None
    with pytest.raises(ActionError) as refused:
        arn_fields(text)
    assert refused.value.code == "InvalidArn"
    assert refused.value.message == f"{text!r} is not an ARN"
