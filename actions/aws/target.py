"""Where an AWS action acts: the account and region, defaulting to the alert's."""

from __future__ import annotations

from pydantic import Field

from actions.aws.clients import Client
from actions.base import ActionContext, ActionInput


class AwsInput(ActionInput):
    """Base of every AWS action's input: the account and region it acts in."""

    account: str | None = Field(
        default=None,
        description="Account to act in; default: the alert's account, else Riposte's own.",
    )
    region: str | None = Field(
        default=None, description="Region to act in; default: the alert's, else RIPOSTE_AWS_REGION."
    )


def client(ctx: ActionContext, params: AwsInput, service: str) -> Client:
    """A client for ``service`` in the account and region the step acts in."""
    account = params.account or ctx.alert.get("account") or None
    region = params.region or ctx.alert.get("region") or None
    return ctx.aws.client(service, account=account, region=region)
